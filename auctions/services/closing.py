"""Closing an auction: settle it under its type's rules, mark the bids won/lost, reveal
a committed secret, and tell everyone — ``auction_ended`` to watchers, bidders and the
seller, ``auction_drawn`` to a Chinese winner, ``auction_payment_due`` to everyone who
owes something (all-pay, top-up, penny fees, Chinese entries) — then the
``auction_status_changed`` event, citing the bid, drop-out or clock tick that ended it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from users.models import User

from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionStatus, Bid, BidStatus
from ..rules import Settlement, rules_for
from .chain import correlation, impacts
from .events import (
    amount_text,
    base_context,
    bidder_pseudonym,
    money,
    notify_user,
    notify_users,
    publish_status,
    watchers_and_bidders,
)


@dataclass(frozen=True)
class CloseResult:
    auction: Auction
    settlement: Settlement


@transaction.atomic
def auction_close(
    *, auction_id: Any, now: datetime | None = None, cause: Any = None
) -> CloseResult | None:
    """Close an auction whose end has passed: settle it under its type's rules, mark
    the bids won/lost and announce the result. None if it is not due or another
    process is closing it right now (``SKIP LOCKED``)."""
    now = now or timezone.now()
    auction = (
        Auction.objects.select_for_update(skip_locked=True)
        .filter(
            pk=auction_id,
            status__in=[AuctionStatus.ACTIVE, AuctionStatus.SCHEDULED],
            ends_at__lte=now,
        )
        .first()
    )
    if auction is None:
        return None
    old_status = auction.status
    state = AuctionRuleState.objects.filter(auction_id=auction.pk).first()
    bids = list(auction.bids.select_related("bidder", "item"))
    try:
        settlement = rules_for(auction.auction_type).settle(auction, bids, state)
    except AuctionError:
        settlement = Settlement(None, None, reserve_met=False)  # no rules: no bids
    winning = settlement.winning_bid
    auction.status = AuctionStatus.COMPLETED
    auction.winner = winning.bidder if winning else None
    auction.final_price = settlement.price
    auction.save(update_fields=["status", "winner", "final_price", "updated_at"])
    if winning is not None:
        Bid.objects.filter(pk=winning.pk).update(status=BidStatus.WON)
        auction.bids.exclude(pk=winning.pk).update(status=BidStatus.LOST)
    else:
        auction.bids.update(status=BidStatus.LOST)
    if state is not None:
        AuctionRuleState.objects.filter(pk=state.pk).update(
            clock_due_at=None, revealed_at=now if state.secret else None
        )
    sent = _tell_result(auction, bids, settlement)
    winner_name = bidder_pseudonym(auction.pk, winning.bidder_id) if winning else None
    # last: publishing takes the platform's event-ordering lock until this commits, so
    # no other publish waits for the loop above (10,000 watchers: seconds)
    publish_status(
        auction,
        old_status,
        AuctionStatus.COMPLETED,
        correlation_id=correlation("close", auction.pk),
        causes=[cause] if cause is not None else [],
        expected=impacts(sent),
        winner=winner_name,
        final_price=money(settlement.price),
        reserve_met=settlement.reserve_met,
        bid_count=len(bids),
        payments={bidder_pseudonym(auction.pk, b): money(a)
                  for b, a in settlement.payments.items()},
        proof=settlement.proof or None,
    )
    return CloseResult(auction, settlement)


def _tell_result(auction: Auction, bids: list[Bid], settlement: Settlement) -> list[str]:
    winning = settlement.winning_bid
    winner_name = bidder_pseudonym(auction.pk, winning.bidder_id) if winning else None
    nobody = "no winner (reserve not met)" if bids else "no winner (no bids)"
    base = base_context(auction, winning.item if winning else None)
    recipients: dict[Any, User] = {u.pk: u for u in watchers_and_bidders(auction)}
    recipients.setdefault(auction.seller_id, auction.seller)
    sent: list[str] = []

    def tell(user: User, key: str, context: dict[str, Any], **kw: Any) -> None:
        done = notify_user(user, template_key=key, context=context, auction=auction, **kw)
        if done:
            sent.append(done)

    price_text = amount_text(settlement.price, auction.currency)
    # everyone but the winner reads the same message: one bulk fan-out
    sent += notify_users(
        [u for u in recipients.values() if winning is None or u.pk != winning.bidder_id],
        template_key="auction_ended", context={**base, "winner": winner_name or nobody,
                                               "amount": price_text},
        channels=["in_app", "email"], category="auction", priority="normal",
        idempotency_prefix=f"auction:{auction.pk}:ended", auction=auction)
    if winning is not None and winning.bidder_id in recipients:
        tell(recipients[winning.bidder_id], "auction_ended",
             {**base, "winner": "you", "amount": price_text},
             channels=["in_app", "email"], category="auction", priority="normal",
             idempotency_key=f"auction:{auction.pk}:ended:{winning.bidder_id}")
    if winning is not None and auction.auction_type == "chinese":
        tell(winning.bidder, "auction_drawn", base, channels=["in_app", "email"],
             category="auction", priority="high",
             idempotency_key=f"auction:{auction.pk}:drawn")
    # where losers pay too (all-pay, top-up, penny fees, Chinese entries) everyone who
    # owes anything is told what, the winner included
    owed: dict[Any, Decimal] = dict(settlement.payments)
    if owed and winning is not None and settlement.price:
        owed[winning.bidder_id] = owed.get(winning.bidder_id, Decimal("0.00")) + settlement.price
    by_id = {b.bidder_id: b.bidder for b in bids}
    for bidder_id, amount in owed.items():
        reason = "your winning price" if winning and bidder_id == winning.bidder_id else (
            f"the {auction.get_auction_type_display()} rules")
        if bidder_id in by_id and amount > 0:
            tell(by_id[bidder_id], "auction_payment_due",
                 {**base, "amount": amount_text(amount, auction.currency), "reason": reason},
                 channels=["in_app", "email"], category="auction", priority="high",
                 idempotency_key=f"auction:{auction.pk}:pay:{bidder_id}")
    return sent
