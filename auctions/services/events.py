"""Notifications and real-time events for auctions.

Every event is told twice, in the same transaction as the change: as notifications to
the parties through the delivery pipeline (``deliveries.services.notify``, idempotent
on keys derived from the bid / auction ids, sent after commit) and as a
``real_time_events`` row on the topic ``auction.<id>`` (``chain.publish_chained``,
fanned out after commit; the bid's events are in ``bid_events``). Public events never name a bidder: they carry a per-auction
pseudonym, never an email or a user id, and sealed amounts never appear before the end.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from deliveries.errors import NotifyError
from deliveries.services import notify, notify_many
from realtime.models import RealTimeEvent
from templates.catalog import get_entry
from users.models import User

from ..models import Auction, AuctionItem
from .chain import publish_chained

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


def auction_url(auction: Auction) -> str:
    """Where a notification about ``auction`` sends its reader (NP_AUCTION_URL)."""
    return settings.NP_AUCTION_URL.format(base=settings.NP_PUBLIC_BASE_URL, id=auction.pk)


def workflows_on() -> bool:
    """``NP_AUCTION_WORKFLOWS``: catalogue events go through their workflows."""
    return bool(getattr(settings, "NP_AUCTION_WORKFLOWS", True))


def _link_auction(key: str, kwargs: dict[str, Any]) -> None:
    """The auction's link and the catalogue's action label, unless the caller set them."""
    auction = kwargs.get("auction")
    if auction is not None:
        kwargs.setdefault("action_url", auction_url(auction))
        entry = get_entry(key)
        label = entry.action_label if entry is not None else None
        kwargs.setdefault("action_label", label or "View auction")


def notify_user(recipient: User, *, workflow: str | None = None, **kwargs: Any) -> str | None:
    """Hand one notification to the pipeline inside a savepoint; returns its type when
    it was created (for ``expected_impacts``).

    ``workflow``: when ``NP_AUCTION_WORKFLOWS`` is on, start that workflow for the user
    instead (``notify(..., workflow=key)``, the engine campaigns registers in deliveries:
    auctions sit below campaigns and never import it). The context, links and idempotency
    key become the trigger's; the workflow's steps choose the template and channels.

    Every auction notification carries ``action_url`` (the auction) and the catalogue's
    action label. A notification that cannot be composed (a missing template, say) must
    not undo the bid that caused it: the pipeline's own bad-input error is logged and the
    savepoint rolled back; anything else is a bug and propagates.
    """
    key = kwargs["template_key"]
    _link_auction(key, kwargs)
    if workflow is not None and workflows_on():
        for name in ("template_key", "channels", "category", "priority"):
            kwargs.pop(name, None)
        kwargs["workflow"] = workflow
    try:
        with transaction.atomic():
            notify(recipient, **kwargs)
    except NotifyError as exc:
        logger.error("notification %s to user %s not created: %s", key, recipient.pk, exc)
        return None
    return str(key)


def notify_users(
    recipients: Sequence[User], *, idempotency_prefix: str, **kwargs: Any
) -> list[str]:
    """``notify_user`` for many users told the same thing (an auction's start, end,
    cancellation, a Dutch clock's drop): one ``notify_many`` — preferences read per chunk,
    rows written with COPY, in-app rows published as a group after commit — instead of a
    ``notify()`` per user (10,000 watchers: a close of about a second instead of a minute).
    Each user's idempotency key is ``f"{idempotency_prefix}:{user.pk}"``, as ``notify_user``
    callers spelled it. Returns one type per notification (for ``expected_impacts``); a
    bad-input error is logged and its savepoint rolled back, as in ``notify_user``."""
    if not recipients:
        return []
    key = kwargs["template_key"]
    _link_auction(key, kwargs)
    try:
        with transaction.atomic():
            results = notify_many(list(recipients), idempotency_prefix=idempotency_prefix, **kwargs)
    except NotifyError as exc:
        logger.error("notifications %s to %d users not created: %s", key, len(recipients), exc)
        return []
    return [str(key)] * len(results)


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


def watchers(auction: Auction) -> list[User]:
    return list(User.objects.filter(watched_auctions=auction, is_active=True).order_by("pk"))


def watchers_and_bidders(auction: Auction) -> list[User]:
    return list(
        User.objects.filter(Q(watched_auctions=auction) | Q(bids__auction=auction), is_active=True)
        .distinct()
        .order_by("pk")
    )


def publish_status(
    auction: Auction,
    old: str,
    new: str,
    *,
    correlation_id: str,
    causes: Iterable[Any] = (),
    expected: dict[str, Any] | None = None,
    **extra: Any,
) -> RealTimeEvent:
    return publish_chained(
        auction,
        "auction_status_changed",
        category="auction",
        data={
            "auction_id": str(auction.pk),
            "auction_title": auction.title,
            "auction_type": auction.auction_type,
            "currency": auction.currency,
            "old_status": old,
            "new_status": new,
            **extra,
        },
        correlation_id=correlation_id,
        causes=causes,
        expected=expected,
        tags=[new],
    )
