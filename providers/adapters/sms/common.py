"""Shared by the SMS adapters: E.164 validation and the receipt callback URL."""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.conf import settings

from providers import errors


def e164(recipient: str) -> str:
    """The number in E.164, or a permanent INVALID_RECIPIENT (no provider could send it)."""
    try:
        number = phonenumbers.parse(recipient, None)
    except phonenumbers.NumberParseException as exc:
        raise errors.permanent(
            f"{recipient!r} is not an E.164 phone number: {exc}", errors.INVALID_RECIPIENT
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise errors.permanent(
            f"{recipient!r} is not a valid phone number", errors.INVALID_RECIPIENT
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def receipt_url(provider_name: str, config: dict[str, Any]) -> str | None:
    """Where the provider should post status callbacks: ``configuration["receipt_url"]``,
    or this platform's receipt endpoint; ``receipt_url: false`` turns them off."""
    value = config.get("receipt_url")
    if value is False:
        return None
    if value:
        return str(value)
    base = str(getattr(settings, "NP_PUBLIC_BASE_URL", "")).rstrip("/")
    return f"{base}/api/v1/providers/{provider_name}/events/" if base else None
