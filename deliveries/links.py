"""Tracked links: ``NP_PUBLIC_BASE_URL`` + ``/c/<token>/`` (recorded by ``services/clicks.py``).

The token is the notification's id (and optionally the delivery's) signed with SECRET_KEY
under its own salt (``django.core.signing``): it cannot be guessed, altered or minted by
another installation. It names a notification, never a URL, so following it can only reach
that notification's own ``action_url``: no open redirect. The same notification always gets
the same link (API and real-time payloads agree); it stops working
``NP_CLICK_LINK_MAX_AGE_DAYS`` after the notification was created.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing

SALT = "deliveries.click"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def click_token(notification_id: Any, delivery_id: int | None = None) -> str:
    """The signed token naming a notification (and optionally the delivery it went by)."""
    payload: dict[str, Any] = {"n": str(notification_id)}
    if delivery_id is not None:
        payload["d"] = int(delivery_id)
    return _signer().sign_object(payload)


def tracked_action_url(notification_id: Any, delivery_id: int | None = None) -> str:
    base = str(settings.NP_PUBLIC_BASE_URL).rstrip("/")
    return f"{base}/c/{click_token(notification_id, delivery_id)}/"


def click_token_resolve(token: str) -> tuple[str, int | None] | None:
    """(notification id, delivery id or None) of a token; None when it is forged, tampered
    with or malformed."""
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        return None
    delivery_id = payload.get("d")
    if delivery_id is not None and (type(delivery_id) is not int):
        return None
    return payload["n"], delivery_id
