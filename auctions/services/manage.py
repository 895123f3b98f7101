"""What a seller (or staff) does with an auction: create it (as a draft or scheduled),
change it before it starts, schedule a draft, add items, cancel it, or close it now.

Only the seller and staff may change an auction; once it has started only cancelling
and closing remain. Type-specific settings are checked by the type's rules and kept in
``auction_rule_states.config``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from users.models import User

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionItem, AuctionRuleState, AuctionStatus, AuctionType
from ..rules import rules_for
from .chain import correlation, impacts
from .closing import CloseResult, auction_close
from .events import notify_users, publish_status, watchers_and_bidders

EDITABLE = (AuctionStatus.DRAFT, AuctionStatus.SCHEDULED)
MONEY_FIELDS = ("starting_price", "reserve_price", "min_increment", "bid_increment")


def _money(name: str, value: Any, *, allow_zero: bool = True) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise AuctionError(errors.BID_AMOUNT_INVALID, f"{name} must be a number", field=name) from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"{name} must be a positive amount", field=name
        )
    # the bound first: quantize() of a number past Decimal's precision raises
    if amount > Decimal("9999999999.99") or amount != amount.quantize(Decimal("0.01")):
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"{name} must be money (two decimals, at most 9999999999.99)",
            field=name,
        )
    return amount


def _check(auction: Auction, config: dict[str, Any] | None) -> dict[str, Any]:
    if auction.auction_type not in AuctionType.values:
        raise AuctionError(
            errors.BID_RULES_UNAVAILABLE, f"{auction.auction_type!r} is not an auction type",
            field="auction_type",
        )
    if auction.ends_at <= auction.starts_at:
        raise AuctionError(
            errors.AUCTION_DATES_INVALID, "ends_at must be after starts_at", field="ends_at"
        )
    if len(auction.currency) != 3 or not auction.currency.isalpha():
        raise AuctionError(
            "CURRENCY_INVALID", "currency must be a three-letter ISO 4217 code", field="currency"
        )
    auction.currency = auction.currency.upper()
    if auction.min_increment <= 0:
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, "min_increment must be greater than zero",
            field="min_increment",
        )
    return rules_for(auction.auction_type).validate_config(auction, config or {})


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
    config: dict[str, Any] | None = None,
    draft: bool = False,
) -> Auction:
    """A scheduled auction (the lifecycle task starts it at ``starts_at``), or a draft
    only its seller and staff see."""
    auction = Auction(
        seller=seller,
        title=title,
        description=description,
        auction_type=auction_type,
        status=AuctionStatus.DRAFT if draft else AuctionStatus.SCHEDULED,
        currency=currency,
        starting_price=_money("starting_price", starting_price) or Decimal("0.00"),
        reserve_price=_money("reserve_price", reserve_price),
        min_increment=_money("min_increment", min_increment) or Decimal("0.00"),
        bid_increment=_money("bid_increment", bid_increment),
        extension_seconds=extension_seconds,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    cleaned = _check(auction, config)
    auction.save(force_insert=True)
    AuctionRuleState.objects.create(auction=auction, config=cleaned)
    for item in items:
        AuctionItem.objects.create(auction=auction, **item)
    return auction


def _own(auction_id: Any, user: User, *, lock: bool = True) -> Auction:
    qs = Auction.objects.select_for_update() if lock else Auction.objects.all()
    try:
        auction = qs.get(pk=auction_id)
    except (Auction.DoesNotExist, ValueError, TypeError, ValidationError):
        raise AuctionError(
            errors.AUCTION_NOT_FOUND, "no such auction", field="auction_id", status=404
        ) from None
    if not (user.is_staff or auction.seller_id == user.pk):
        if auction.status == AuctionStatus.DRAFT:
            raise AuctionError(
                errors.AUCTION_NOT_FOUND, "no such auction", field="auction_id", status=404
            )
        raise AuctionError(
            errors.AUCTION_NOT_YOURS, "only the seller or staff may change this auction",
            status=403,
        )
    return auction


def _editable(auction: Auction) -> None:
    if auction.status not in EDITABLE:
        raise AuctionError(
            errors.AUCTION_TRANSITION_INVALID,
            f"a {auction.status} auction can no longer be changed", status=409,
        )


@transaction.atomic
def auction_update(*, auction_id: Any, user: User, changes: dict[str, Any]) -> Auction:
    """Change a draft or scheduled auction: title, description, dates, prices, reserve,
    currency, type settings (``config``)."""
    auction = _own(auction_id, user)
    _editable(auction)
    config = changes.pop("config", None)
    for name, value in changes.items():
        if name in MONEY_FIELDS:
            value = _money(name, value)
        setattr(auction, name, value)
    state, _ = AuctionRuleState.objects.get_or_create(auction=auction)
    state.config = _check(auction, state.config if config is None else config)
    auction.save()
    state.save()
    return auction


@transaction.atomic
def auction_item_add(*, auction_id: Any, user: User, **fields: Any) -> AuctionItem:
    auction = _own(auction_id, user)
    _editable(auction)
    return AuctionItem.objects.create(auction=auction, **fields)


@transaction.atomic
def auction_schedule(*, auction_id: Any, user: User) -> Auction:
    """Publish a draft: it becomes visible and starts at ``starts_at``."""
    auction = _own(auction_id, user)
    if auction.status != AuctionStatus.DRAFT:
        raise AuctionError(
            errors.AUCTION_TRANSITION_INVALID, f"only a draft can be scheduled, not a "
            f"{auction.status} auction", status=409,
        )
    if auction.ends_at <= timezone.now():
        raise AuctionError(
            errors.AUCTION_DATES_INVALID, "ends_at has passed", field="ends_at"
        )
    auction.status = AuctionStatus.SCHEDULED
    auction.save(update_fields=["status", "updated_at"])
    publish_status(auction, AuctionStatus.DRAFT, AuctionStatus.SCHEDULED,
                   correlation_id=correlation("schedule", auction.pk),
                   starts_at=auction.starts_at.isoformat())
    return auction


@transaction.atomic
def auction_cancel(*, auction_id: Any, user: User, reason: str = "") -> Auction:
    """Cancel an auction that has not ended: no winner, every bid lost."""
    auction = _own(auction_id, user)
    if auction.status not in (*EDITABLE, AuctionStatus.ACTIVE):
        raise AuctionError(
            errors.AUCTION_TRANSITION_INVALID, f"a {auction.status} auction cannot be cancelled",
            status=409,
        )
    old = auction.status
    auction.status = AuctionStatus.CANCELLED
    auction.save(update_fields=["status", "updated_at"])
    auction.bids.update(status="lost")
    AuctionRuleState.objects.filter(auction=auction).update(clock_due_at=None)
    sent = notify_users(
        watchers_and_bidders(auction), template_key="auction_cancelled",
        context={"auction_title": auction.title, "reason": reason or "cancelled by the seller"},
        channels=["in_app", "email"], category="auction", priority="normal",
        idempotency_prefix=f"auction:{auction.pk}:cancelled", auction=auction,
    )
    publish_status(auction, old, AuctionStatus.CANCELLED,
                   correlation_id=correlation("cancel", auction.pk),
                   expected=impacts(sent), reason=reason or None)
    return auction


@transaction.atomic
def auction_close_now(*, auction_id: Any, user: User) -> CloseResult:
    """End a running auction now and settle it (the seller's or staff's decision)."""
    auction = _own(auction_id, user)
    if auction.status != AuctionStatus.ACTIVE:
        raise AuctionError(
            errors.AUCTION_TRANSITION_INVALID, f"only a running auction can be closed, not a "
            f"{auction.status} one", status=409,
        )
    now = timezone.now()
    auction.ends_at = max(min(now, auction.ends_at), auction.starts_at + timedelta(microseconds=1))
    auction.save(update_fields=["ends_at", "updated_at"])
    result = auction_close(auction_id=auction.pk, now=max(now, auction.ends_at))
    assert result is not None  # we hold the row lock: nobody else closed it  # noqa: S101
    return result
