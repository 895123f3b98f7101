"""The suppression list: addresses that must not be sent to on a channel.

Hard bounces, complaints and an ESP's unsubscribe events add an address
(``suppression_add_from_receipt``, called by ``receipts.receipt_apply``); a one-click
unsubscribe of an address-only recipient adds one (``unsubscribe``); staff add (``manual``)
and lift them. notify()/notify_many()
look the planned addresses up in one query per call/chunk (``suppressed_among``) and record
a matching delivery as ``skipped`` with decision ``suppressed``; the sender checks the one
address again before a send.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifyplatform.choices import Channel
from providers.types import Receipt, ReceiptStatus

from .. import errors
from ..errors import NotifyError
from ..models import Suppression, SuppressionReason
from ..selectors import normalise_address, suppressed_among
from .notify.validate import normalize_phone, valid_email, valid_url

# receipt words that say a bounce is temporary (Mailgun "severity": "temporary", Postmark
# "SoftBounce"/"Transient", SendGrid bounce "type": "blocked", SES "Transient" …)
_SOFT_MARKERS = ("soft", "temporary", "transient", "blocked", "deferred")
_SOFT_RAW_KEYS = ("severity", "Type", "type", "bounce_classification", "bounceType")


def _validated(channel: str, address: str) -> str:
    if channel not in Channel.values:
        raise NotifyError(errors.VALIDATION_ERROR, f"unknown channel '{channel}'", "channel")
    if not address or len(address) > 255:
        raise NotifyError(errors.VALIDATION_ERROR, "must be 1 to 255 characters", "address")
    if channel == Channel.EMAIL and not valid_email(address.strip()):
        raise NotifyError(errors.INVALID_RECIPIENT, "not a valid email address", "address")
    if channel == Channel.SMS and normalize_phone(address.strip()) is None:
        raise NotifyError(
            errors.INVALID_RECIPIENT,
            "not a valid phone number in international (E.164) form",
            "address",
        )
    if channel == Channel.WEBHOOK and not valid_url(address.strip()):
        raise NotifyError(errors.INVALID_URL, "not a valid http(s) URL", "address")
    return normalise_address(channel, address)


def is_suppressed(channel: str, address: str) -> bool:
    return bool(suppressed_among([(channel, address)]))


def suppression_insert(**fields: Any) -> Suppression | None:
    """The new active row, or None when the address is already suppressed."""
    try:
        with transaction.atomic():
            return Suppression.objects.create(**fields)
    except IntegrityError:
        return None


def suppression_add(
    *, channel: str, address: str, reason: str = SuppressionReason.MANUAL, by: Any = None
) -> tuple[Suppression, bool]:
    """Suppress an address (staff): the active row and whether it is new. Bad input raises
    ``NotifyError`` naming the field."""
    if reason not in SuppressionReason.values:
        raise NotifyError(errors.VALIDATION_ERROR, f"unknown reason '{reason}'", "reason")
    normalised = _validated(channel, address)
    created = suppression_insert(channel=channel, address=normalised, reason=reason, created_by=by)
    if created is not None:
        return created, True
    existing = Suppression.objects.get(
        channel=channel, address=normalised, category__isnull=True, lifted_at__isnull=True
    )
    return existing, False


def _is_hard(receipt: Receipt) -> bool:
    """A ``bounced`` receipt is hard unless the provider says it was soft or temporary."""
    said = [receipt.error_code or "", receipt.event or ""]
    raw = receipt.raw or {}
    said += [str(raw.get(key) or "") for key in _SOFT_RAW_KEYS]
    text = " ".join(said).lower()
    return not any(marker in text for marker in _SOFT_MARKERS)


def suppression_reason_for(receipt: Receipt) -> str | None:
    if receipt.status == ReceiptStatus.COMPLAINED:
        return SuppressionReason.COMPLAINT
    if receipt.status == ReceiptStatus.UNSUBSCRIBED:
        return SuppressionReason.UNSUBSCRIBE
    if receipt.status == ReceiptStatus.BOUNCED and _is_hard(receipt):
        return SuppressionReason.HARD_BOUNCE
    return None


def suppression_add_from_receipt(
    *,
    provider_name: str,
    receipt: Receipt,
    channel: str,
    address: str,
    delivery_id: int,
    category: str | None = None,
) -> Suppression | None:
    """Suppress the delivery's address after a hard bounce, complaint or unsubscribe; None
    when the receipt does not call for it or the address is already suppressed."""
    reason = suppression_reason_for(receipt)
    if reason is None or not address or channel == Channel.IN_APP:
        return None
    return suppression_insert(
        channel=channel,
        address=normalise_address(channel, address),
        reason=reason,
        # an unsubscribe stops the category of the email it came from (``category``: the
        # delivery's); a bounce or complaint stops everything
        category=category if reason == SuppressionReason.UNSUBSCRIBE else None,
        delivery_id=delivery_id,
        receipt={
            "provider": provider_name,
            "event": receipt.event,
            "status": receipt.status,
            "error_code": receipt.error_code,
            "description": (receipt.description or "")[:500] or None,
            "provider_message_id": receipt.provider_message_id,
        },
    )


def suppression_lift(suppression: Suppression, *, by: Any = None) -> bool:
    """Lift an active suppression (the row stays as history); False if already lifted."""
    updated = Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=by
    )
    suppression.refresh_from_db(fields=["lifted_at", "lifted_by"])
    return bool(updated)
