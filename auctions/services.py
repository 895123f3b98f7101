"""Write paths for auctions: bidding, the lifecycle (start, ending notice, close) and
watching.

Bids on one auction are serialised by ``SELECT ... FOR UPDATE`` on the auction row:
each bid reads the current price, checks the type's rules (``auctions.rules``) and
writes within the lock, so of two simultaneous bids of the same amount exactly one is
accepted and the other is told it is too low.

Every event is told twice, in the same transaction as the change: as notifications to
the parties through the delivery pipeline (``deliveries.services.notify``, idempotent
on keys derived from the bid / auction ids, sent after commit) and as a
``real_time_events`` row on the topic ``auction.<id>`` (``realtime.services.publish``,
fanned out after commit). Public events never name a bidder: they carry a per-auction
pseudonym, never an email or a user id, and sealed amounts never appear before the end.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from users.models import User

from . import errors
from .errors import AuctionError
from .models import Auction, AuctionItem, AuctionStatus, AuctionWatcher, Bid, BidStatus
from .rules import BidOutcome, Settlement, parse_amount, rules_for
from .selectors import auction_visible

logger = logging.getLogger(__name__)


# --- helpers -------------------------------------------------------------------------


def auction_topic(auction: Auction | Any) -> str:
    auction_id = auction.pk if isinstance(auction, Auction) else auction
    return f"auction.{auction_id}"


def bidder_pseudonym(auction_id: Any, user_id: Any) -> str:
    """A stable name for a bidder within one auction that reveals nothing about them.

    Keyed with SECRET_KEY and salted per auction, so the same person is "Bidder 3fa2c1"
    in one auction and someone else entirely in the next: watchers can follow a
    bidding war without learning who is in it or linking bidders across auctions.
    """
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"auction-bidder:{auction_id}:{user_id}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"Bidder {digest[:6]}"


def _money(value: Decimal | None) -> str | None:
    # Strings, not floats: event and template data are JSON, and money must not round.
    return None if value is None else f"{value:.2f}"


def _amount_text(value: Decimal | None, currency: str) -> str:
    """An amount as people read it in a message, e.g. "150.00 USD"."""
    return "" if value is None else f"{value:.2f} {currency}"


def _human_duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 3600:
        hours, rest = divmod(seconds, 3600)
        minutes = rest // 60
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{seconds} s"


def _notify(recipient: User, **kwargs: Any) -> None:
    """Hand one notification to the pipeline inside a savepoint.

    A notification that cannot be composed (a missing template, say) must not undo
    the bid that caused it: the pipeline's own bad-input error is logged and the
    savepoint rolled back; anything else is a bug and propagates.
    """
    from deliveries.errors import NotifyError
    from deliveries.services import notify

    try:
        with transaction.atomic():
            notify(recipient, **kwargs)
    except NotifyError as exc:
        logger.error(
            "notification %s to user %s not created: %s",
            kwargs.get("template_key"), recipient.pk, exc,
        )


def _publish(**kwargs: Any) -> None:
    from realtime.services import publish

    publish(**kwargs)


def _item_title(auction: Auction, item: AuctionItem | None) -> str:
    if item is not None:
        return item.title
    first = auction.items.order_by("created_at").first()
    return first.title if first is not None else auction.title


def _base_context(auction: Auction, item: AuctionItem | None) -> dict[str, Any]:
    return {
        "auction_title": auction.title,
        "item_title": _item_title(auction, item),
        "currency": auction.currency,
        "extension_seconds": auction.extension_seconds or 0,
    }


# --- creating and watching -----------------------------------------------------------


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
        raise AuctionError("AUCTION_DATES_INVALID", "ends_at must be after starts_at", field="ends_at")
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


def _not_found() -> AuctionError:
    return AuctionError(errors.AUCTION_NOT_FOUND, "no such auction", field="auction_id", status=404)


def _get_auction(auction_id: Any, *, viewer: User) -> Auction:
    """The auction, or 404 when there is none or ``viewer`` may not see it (a draft)."""
    try:
        auction = Auction.objects.get(pk=auction_id)
    except (Auction.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _not_found() from None
    if not auction_visible(auction, viewer):
        raise _not_found()
    return auction


def auction_watch(*, auction_id: Any, user: User) -> AuctionWatcher:
    """Watch an auction (idempotent): watchers hear it start, near its end and end."""
    auction = _get_auction(auction_id, viewer=user)
    watcher, _ = AuctionWatcher.objects.get_or_create(auction=auction, user=user)
    return watcher


def auction_unwatch(*, auction_id: Any, user: User) -> bool:
    """Stop watching; True if the user was watching."""
    auction = _get_auction(auction_id, viewer=user)
    deleted, _ = AuctionWatcher.objects.filter(auction=auction, user=user).delete()
    return deleted > 0


# --- bidding -------------------------------------------------------------------------


@transaction.atomic
def bid_place(
    *, auction_id: Any, bidder: User, amount: Decimal | int | str, item: AuctionItem | Any = None
) -> Bid:
    """Place a bid under the auction type's rules, or raise ``AuctionError``.

    400-class errors name the field at fault (``amount``, ``item``, ``bidder``,
    ``auction_type``); an auction that is not running is a 409.
    """
    value = parse_amount(amount)
    try:
        auction = Auction.objects.select_for_update().get(pk=auction_id)
    except (Auction.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _not_found() from None
    if not auction_visible(auction, bidder):
        raise _not_found()  # a draft: not even its existence is told
    rules = rules_for(auction.auction_type)
    if auction.seller_id == bidder.pk:
        raise AuctionError(
            errors.SELLER_CANNOT_BID, "sellers cannot bid on their own auction", field="bidder"
        )
    now = timezone.now()
    if auction.status != AuctionStatus.ACTIVE or now < auction.starts_at:
        raise AuctionError(
            errors.AUCTION_NOT_ACTIVE,
            f"the auction is not accepting bids (status {auction.status})",
            status=409,
        )
    if now >= auction.ends_at:
        raise AuctionError(errors.AUCTION_ENDED, "the auction has ended", status=409)
    item_obj = _resolve_item(auction, item)

    leading = None
    bidder_has_bid = False
    if rules.sealed:
        bidder_has_bid = auction.bids.filter(bidder=bidder).exists()
    else:
        leading = (
            auction.bids.filter(status=BidStatus.LEADING).select_related("bidder").first()
        )
    outcome = rules.check(
        auction, value, bidder_id=bidder.pk, leading=leading, bidder_has_bid=bidder_has_bid
    )

    bid = Bid.objects.create(
        auction=auction, item=item_obj, bidder=bidder, amount=value,
        status=outcome.status, placed_at=now,
    )
    if outcome.displaced is not None:
        Bid.objects.filter(pk=outcome.displaced.pk).update(status=BidStatus.OUTBID)
    previous_price = auction.current_price
    auction.bid_count += 1
    if outcome.new_price is not None:
        auction.current_price = outcome.new_price
    auction.ends_at = auction.ends_at + outcome.extend_by
    auction.save(update_fields=["bid_count", "current_price", "ends_at", "updated_at"])

    _emit_bid_events(auction, bid, outcome, previous_price, sealed=rules.sealed)
    return bid


def _resolve_item(auction: Auction, item: AuctionItem | Any) -> AuctionItem | None:
    if item is None or item == "":
        return None
    item_id = item.pk if isinstance(item, AuctionItem) else item
    try:
        return AuctionItem.objects.get(pk=item_id, auction=auction)
    except (AuctionItem.DoesNotExist, ValueError, TypeError, ValidationError):
        raise AuctionError(
            errors.ITEM_NOT_IN_AUCTION, "the item does not belong to this auction", field="item"
        ) from None


def _emit_bid_events(
    auction: Auction, bid: Bid, outcome: BidOutcome, previous_price: Decimal | None,
    *, sealed: bool,
) -> None:
    bidder = bid.bidder
    pseudonym = bidder_pseudonym(auction.pk, bidder.pk)
    context = {**_base_context(auction, bid.item), "bidder": pseudonym}
    key = f"bid:{bid.pk}"
    links = {"auction": auction, "bid": bid, "item": bid.item}

    # To the bidder: their own amount is theirs to see, sealed or not.
    _notify(
        bidder, template_key="bid_placed", context={**context, "amount": _amount_text(bid.amount, auction.currency)},
        channels=["in_app"], category="bid", priority="normal",
        idempotency_key=f"{key}:bid_placed", **links,
    )
    if not sealed:
        # Open auctions: the seller hears of every bid, the displaced leader is outbid.
        _notify(
            auction.seller, template_key="new_bid",
            context={**context, "amount": _amount_text(bid.amount, auction.currency)},
            channels=["in_app", "push"], category="bid", priority="normal",
            idempotency_key=f"{key}:new_bid", **links,
        )
        displaced = outcome.displaced
        if displaced is not None and displaced.bidder_id != bidder.pk:
            _notify(
                displaced.bidder, template_key="outbid",
                context={**context, "amount": _amount_text(displaced.amount, auction.currency)},
                channels=["in_app", "push", "email"], category="bid", priority="high",
                idempotency_key=f"{key}:outbid", **links,
            )

    data: dict[str, Any] = {
        "auction_id": str(auction.pk),
        "auction_title": auction.title,
        "bidder": pseudonym,
        "bid_count": auction.bid_count,
        "ends_at": auction.ends_at.isoformat(),
        "currency": auction.currency,
    }
    if sealed:
        data["sealed"] = True
    else:
        data.update(
            bid_amount=_money(bid.amount),
            current_price=_money(auction.current_price),
            previous_price=_money(previous_price),
        )
    if outcome.extend_by:
        data["extended_by_seconds"] = int(outcome.extend_by.total_seconds())
    _publish(
        event_type="bid_placed", category="bid", data=data, visibility="authenticated",
        topics=[auction_topic(auction)], priority="high", correlation_id=f"auction:{auction.pk}",
        **links,
    )


# --- lifecycle -----------------------------------------------------------------------


def _watchers(auction: Auction) -> list[User]:
    return list(User.objects.filter(watched_auctions=auction, is_active=True).order_by("pk"))


def _watchers_and_bidders(auction: Auction) -> list[User]:
    return list(
        User.objects.filter(Q(watched_auctions=auction) | Q(bids__auction=auction), is_active=True)
        .distinct()
        .order_by("pk")
    )


def _publish_status(auction: Auction, old: str, new: str, **extra: Any) -> None:
    _publish(
        event_type="auction_status_changed", category="auction",
        data={
            "auction_id": str(auction.pk), "auction_title": auction.title,
            "old_status": old, "new_status": new, **extra,
        },
        visibility="public", topics=[auction_topic(auction)], auction=auction,
        correlation_id=f"auction:{auction.pk}",
    )


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
    context = _base_context(auction, None)
    for user in _watchers(auction):
        _notify(
            user, template_key="auction_started", context=context,
            channels=["in_app", "email"], category="auction", priority="normal",
            idempotency_key=f"auction:{auction.pk}:started:{user.pk}", auction=auction,
        )
    # last: publishing takes the platform's event-ordering lock until this commits
    _publish_status(
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
        pk=auction_id, status=AuctionStatus.ACTIVE, ending_notice_sent_at__isnull=True,
        ends_at__gt=now, ends_at__lte=now + window,
    ).update(ending_notice_sent_at=now, updated_at=now)
    if not claimed:
        return False
    auction = Auction.objects.get(pk=auction_id)
    remaining = _human_duration(auction.ends_at - now)
    context = {**_base_context(auction, None), "time_remaining": remaining}
    for user in _watchers_and_bidders(auction):
        _notify(
            user, template_key="auction_ending", context=context,
            channels=["in_app", "push"], category="auction", priority="urgent",
            idempotency_key=f"auction:{auction.pk}:ending:{user.pk}", auction=auction,
        )
    # last: publishing takes the platform's event-ordering lock until this commits
    _publish(
        event_type="auction_ending", category="auction",
        data={
            "auction_id": str(auction.pk), "auction_title": auction.title,
            "ends_at": auction.ends_at.isoformat(), "time_remaining": remaining,
        },
        visibility="public", topics=[auction_topic(auction)], auction=auction,
        priority="high", correlation_id=f"auction:{auction.pk}",
    )
    return True


def auctions_send_ending_notices(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    window = timedelta(seconds=settings.NP_AUCTION_ENDING_NOTICE_SECONDS)
    ids = Auction.objects.filter(
        status=AuctionStatus.ACTIVE, ending_notice_sent_at__isnull=True,
        ends_at__gt=now, ends_at__lte=now + window,
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
    base = _base_context(auction, winning.item if winning else None)
    recipients = {u.pk: u for u in _watchers_and_bidders(auction)}
    recipients.setdefault(auction.seller_id, auction.seller)
    for user in recipients.values():
        if winning is None:
            shown = nobody
        elif user.pk == winning.bidder_id:
            shown = "you"
        else:
            shown = winner_name
        _notify(
            user, template_key="auction_ended",
            context={
                **base, "winner": shown,
                "amount": _amount_text(settlement.price, auction.currency),
            },
            channels=["in_app", "email"], category="auction", priority="normal",
            idempotency_key=f"auction:{auction.pk}:ended:{user.pk}", auction=auction,
        )
    # last: publishing takes the platform's event-ordering lock until this commits, so
    # no other publish waits for the loop above (10,000 watchers: seconds)
    _publish_status(
        auction, old_status, AuctionStatus.COMPLETED,
        winner=winner_name, final_price=_money(settlement.price),
        reserve_met=settlement.reserve_met, bid_count=len(bids),
    )
    return CloseResult(auction, settlement)


def auctions_close_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = Auction.objects.filter(
        status__in=[AuctionStatus.ACTIVE, AuctionStatus.SCHEDULED], ends_at__lte=now
    ).values_list("pk", flat=True)
    return sum(auction_close(auction_id=pk, now=now) is not None for pk in list(ids))
