"""Notifications and real-time events for auctions.

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
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from deliveries.errors import NotifyError
from deliveries.services import notify
from realtime.services import publish
from users.models import User

from ..models import Auction, AuctionItem, Bid
from ..rules import BidOutcome

logger = logging.getLogger(__name__)


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


def money(value: Decimal | None) -> str | None:
    # Strings, not floats: event and template data are JSON, and money must not round.
    return None if value is None else f"{value:.2f}"


def amount_text(value: Decimal | None, currency: str) -> str:
    """An amount as people read it in a message, e.g. "150.00 USD"."""
    return "" if value is None else f"{value:.2f} {currency}"


def human_duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 3600:
        hours, rest = divmod(seconds, 3600)
        minutes = rest // 60
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{seconds} s"


def notify_user(recipient: User, **kwargs: Any) -> None:
    """Hand one notification to the pipeline inside a savepoint.

    A notification that cannot be composed (a missing template, say) must not undo
    the bid that caused it: the pipeline's own bad-input error is logged and the
    savepoint rolled back; anything else is a bug and propagates.
    """
    try:
        with transaction.atomic():
            notify(recipient, **kwargs)
    except NotifyError as exc:
        logger.error(
            "notification %s to user %s not created: %s",
            kwargs.get("template_key"),
            recipient.pk,
            exc,
        )


def publish_event(**kwargs: Any) -> None:
    publish(**kwargs)


def _item_title(auction: Auction, item: AuctionItem | None) -> str:
    if item is not None:
        return item.title
    first = auction.items.order_by("created_at").first()
    return first.title if first is not None else auction.title


def base_context(auction: Auction, item: AuctionItem | None) -> dict[str, Any]:
    return {
        "auction_title": auction.title,
        "item_title": _item_title(auction, item),
        "currency": auction.currency,
        "extension_seconds": auction.extension_seconds or 0,
    }


def emit_bid_events(
    auction: Auction,
    bid: Bid,
    outcome: BidOutcome,
    previous_price: Decimal | None,
    *,
    sealed: bool,
) -> None:
    bidder = bid.bidder
    pseudonym = bidder_pseudonym(auction.pk, bidder.pk)
    context = {**base_context(auction, bid.item), "bidder": pseudonym}
    key = f"bid:{bid.pk}"
    links = {"auction": auction, "bid": bid, "item": bid.item}

    # To the bidder: their own amount is theirs to see, sealed or not.
    notify_user(
        bidder,
        template_key="bid_placed",
        context={**context, "amount": amount_text(bid.amount, auction.currency)},
        channels=["in_app"],
        category="bid",
        priority="normal",
        idempotency_key=f"{key}:bid_placed",
        **links,
    )
    if not sealed:
        # Open auctions: the seller hears of every bid, the displaced leader is outbid.
        notify_user(
            auction.seller,
            template_key="new_bid",
            context={**context, "amount": amount_text(bid.amount, auction.currency)},
            channels=["in_app", "push"],
            category="bid",
            priority="normal",
            idempotency_key=f"{key}:new_bid",
            **links,
        )
        displaced = outcome.displaced
        if displaced is not None and displaced.bidder_id != bidder.pk:
            notify_user(
                displaced.bidder,
                template_key="outbid",
                context={**context, "amount": amount_text(displaced.amount, auction.currency)},
                channels=["in_app", "push", "email"],
                category="bid",
                priority="high",
                idempotency_key=f"{key}:outbid",
                **links,
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
            bid_amount=money(bid.amount),
            current_price=money(auction.current_price),
            previous_price=money(previous_price),
        )
    if outcome.extend_by:
        data["extended_by_seconds"] = int(outcome.extend_by.total_seconds())
    publish_event(
        event_type="bid_placed",
        category="bid",
        data=data,
        visibility="authenticated",
        topics=[auction_topic(auction)],
        priority="high",
        correlation_id=f"auction:{auction.pk}",
        **links,
    )


def watchers(auction: Auction) -> list[User]:
    return list(User.objects.filter(watched_auctions=auction, is_active=True).order_by("pk"))


def watchers_and_bidders(auction: Auction) -> list[User]:
    return list(
        User.objects.filter(Q(watched_auctions=auction) | Q(bids__auction=auction), is_active=True)
        .distinct()
        .order_by("pk")
    )


def publish_status(auction: Auction, old: str, new: str, **extra: Any) -> None:
    publish_event(
        event_type="auction_status_changed",
        category="auction",
        data={
            "auction_id": str(auction.pk),
            "auction_title": auction.title,
            "old_status": old,
            "new_status": new,
            **extra,
        },
        visibility="public",
        topics=[auction_topic(auction)],
        auction=auction,
        correlation_id=f"auction:{auction.pk}",
    )
