"""The auction lifecycle: create, start, ending notice, close.

Each transition is claimed by a conditional UPDATE (or ``SKIP LOCKED`` for the close),
so two beat runs or two workers never both announce it; the parties are told through
``events`` in the same transaction, the real-time event published last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from users.models import User

from ..errors import AuctionError
from ..models import Auction, AuctionItem, AuctionStatus, Bid, BidStatus
from ..rules import Settlement, rules_for
from .events import (
    amount_text,
    auction_topic,
    base_context,
    bidder_pseudonym,
    human_duration,
    money,
    notify_user,
    publish_event,
    publish_status,
    watchers,
    watchers_and_bidders,
)


@transaction.atomic
def auction_create(
    *,
    seller: User,
    title: str,
    auction_type: str,
    starts_at: datetime,
    ends_at: datetime,
    starting_price: Decimal | int | str = 0,
    reserve_price: Decimal | int | str | None = None,
    min_increment: Decimal | int | str = 1,
    bid_increment: Decimal | int | str | None = None,
    extension_seconds: int | None = None,
    currency: str = "USD",
    description: str = "",
    items: Iterable[dict[str, Any]] = (),
) -> Auction:
    """A scheduled auction (the lifecycle task starts it at ``starts_at``)."""
    if ends_at <= starts_at:
        raise AuctionError(
            "AUCTION_DATES_INVALID", "ends_at must be after starts_at", field="ends_at"
        )
    auction = Auction.objects.create(
        seller=seller,
        title=title,
        description=description,
        auction_type=auction_type,
        status=AuctionStatus.SCHEDULED,
        currency=currency,
        starting_price=Decimal(str(starting_price)),
        reserve_price=None if reserve_price is None else Decimal(str(reserve_price)),
        min_increment=Decimal(str(min_increment)),
        bid_increment=None if bid_increment is None else Decimal(str(bid_increment)),
        extension_seconds=extension_seconds,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    for item in items:
        AuctionItem.objects.create(auction=auction, **item)
    return auction


@transaction.atomic
def auction_start(*, auction_id: Any, now: datetime | None = None) -> bool:
    """Start a scheduled auction whose time has come; True if this call started it.

    A conditional UPDATE claims the transition, so two beat runs (or two workers)
    never both announce it.
    """
    now = now or timezone.now()
    started = Auction.objects.filter(
        pk=auction_id, status=AuctionStatus.SCHEDULED, starts_at__lte=now, ends_at__gt=now
    ).update(status=AuctionStatus.ACTIVE, updated_at=now)
    if not started:
        return False
    auction = Auction.objects.get(pk=auction_id)
    context = base_context(auction, None)
    for user in watchers(auction):
        notify_user(
            user,
            template_key="auction_started",
            context=context,
            channels=["in_app", "email"],
            category="auction",
            priority="normal",
            idempotency_key=f"auction:{auction.pk}:started:{user.pk}",
            auction=auction,
        )
    # last: publishing takes the platform's event-ordering lock until this commits
    publish_status(
        auction, AuctionStatus.SCHEDULED, AuctionStatus.ACTIVE, ends_at=auction.ends_at.isoformat()
    )
    return True


def auctions_start_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = Auction.objects.filter(
        status=AuctionStatus.SCHEDULED, starts_at__lte=now, ends_at__gt=now
    ).values_list("pk", flat=True)
    return sum(auction_start(auction_id=pk, now=now) for pk in list(ids))


@transaction.atomic
def auction_send_ending_notice(*, auction_id: Any, now: datetime | None = None) -> bool:
    """Warn watchers and bidders that the auction ends soon — once per auction.

    ``ending_notice_sent_at`` is claimed with a conditional UPDATE; a penny auction
    whose end moves later after the notice does not get a second one.
    """
    now = now or timezone.now()
    window = timedelta(seconds=settings.NP_AUCTION_ENDING_NOTICE_SECONDS)
    claimed = Auction.objects.filter(
        pk=auction_id,
        status=AuctionStatus.ACTIVE,
        ending_notice_sent_at__isnull=True,
        ends_at__gt=now,
        ends_at__lte=now + window,
    ).update(ending_notice_sent_at=now, updated_at=now)
    if not claimed:
        return False
    auction = Auction.objects.get(pk=auction_id)
    remaining = human_duration(auction.ends_at - now)
    context = {**base_context(auction, None), "time_remaining": remaining}
    for user in watchers_and_bidders(auction):
        notify_user(
            user,
            template_key="auction_ending",
            context=context,
            channels=["in_app", "push"],
            category="auction",
            priority="urgent",
            idempotency_key=f"auction:{auction.pk}:ending:{user.pk}",
            auction=auction,
        )
    # last: publishing takes the platform's event-ordering lock until this commits
    publish_event(
        event_type="auction_ending",
        category="auction",
        data={
            "auction_id": str(auction.pk),
            "auction_title": auction.title,
            "ends_at": auction.ends_at.isoformat(),
            "time_remaining": remaining,
        },
        visibility="public",
        topics=[auction_topic(auction)],
        auction=auction,
        priority="high",
        correlation_id=f"auction:{auction.pk}",
    )
    return True


def auctions_send_ending_notices(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    window = timedelta(seconds=settings.NP_AUCTION_ENDING_NOTICE_SECONDS)
    ids = Auction.objects.filter(
        status=AuctionStatus.ACTIVE,
        ending_notice_sent_at__isnull=True,
        ends_at__gt=now,
        ends_at__lte=now + window,
    ).values_list("pk", flat=True)
    return sum(auction_send_ending_notice(auction_id=pk, now=now) for pk in list(ids))


@dataclass(frozen=True)
class CloseResult:
    auction: Auction
    settlement: Settlement


@transaction.atomic
def auction_close(*, auction_id: Any, now: datetime | None = None) -> CloseResult | None:
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
    bids = list(auction.bids.select_related("bidder"))
    try:
        settlement = rules_for(auction.auction_type).settle(auction, bids)
    except AuctionError:
        # A type without rules can hold no bids: it closes unsold.
        settlement = Settlement(None, None, reserve_met=False)
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

    winner_name = bidder_pseudonym(auction.pk, winning.bidder_id) if winning else None
    if winning is None:
        nobody = "no winner (reserve not met)" if bids else "no winner (no bids)"
    base = base_context(auction, winning.item if winning else None)
    recipients = {u.pk: u for u in watchers_and_bidders(auction)}
    recipients.setdefault(auction.seller_id, auction.seller)
    for user in recipients.values():
        shown: str | None
        if winning is None:
            shown = nobody
        elif user.pk == winning.bidder_id:
            shown = "you"
        else:
            shown = winner_name
        notify_user(
            user,
            template_key="auction_ended",
            context={
                **base,
                "winner": shown,
                "amount": amount_text(settlement.price, auction.currency),
            },
            channels=["in_app", "email"],
            category="auction",
            priority="normal",
            idempotency_key=f"auction:{auction.pk}:ended:{user.pk}",
            auction=auction,
        )
    # last: publishing takes the platform's event-ordering lock until this commits, so
    # no other publish waits for the loop above (10,000 watchers: seconds)
    publish_status(
        auction,
        old_status,
        AuctionStatus.COMPLETED,
        winner=winner_name,
        final_price=money(settlement.price),
        reserve_met=settlement.reserve_met,
        bid_count=len(bids),
    )
    return CloseResult(auction, settlement)


def auctions_close_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = Auction.objects.filter(
        status__in=[AuctionStatus.ACTIVE, AuctionStatus.SCHEDULED], ends_at__lte=now
    ).values_list("pk", flat=True)
    return sum(auction_close(auction_id=pk, now=now) is not None for pk in list(ids))
