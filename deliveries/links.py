"""Tracked links: ``NP_PUBLIC_BASE_URL`` + ``/c/<token>/`` (recorded by ``services/clicks.py``).

The token is the notification's id (and optionally the delivery's) signed with SECRET_KEY
under its own salt (``django.core.signing``): it cannot be guessed, altered or minted by
another installation. It names a notification and, optionally, which of its own URLs
(``u``: a key of ``templates.rich.own_urls``: ``b0`` a rich-content button, ``i`` the image's
link; absent: the action URL), never a URL, so following it can only reach that
notification's own action or rich-content URLs: no open redirect. The same notification
always gets the same link (API and real-time payloads agree); it stops working
``NP_CLICK_LINK_MAX_AGE_DAYS`` after the notification was created.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing

SALT = "deliveries.click"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def click_token(
    notification_id: Any, delivery_id: int | None = None, target: str | None = None
) -> str:
    """The signed token naming a notification (and optionally the delivery it went by, and
    which of its own URLs: ``target``, a key of ``own_urls``; None or ``a``: the action)."""
    payload: dict[str, Any] = {"n": str(notification_id)}
    if delivery_id is not None:
        payload["d"] = int(delivery_id)
    if target is not None and target != "a":
        payload["u"] = target
    return _signer().sign_object(payload)


def tracked_action_url(
    notification_id: Any, delivery_id: int | None = None, target: str | None = None
) -> str:
    base = str(settings.NP_PUBLIC_BASE_URL).rstrip("/")
    return f"{base}/c/{click_token(notification_id, delivery_id, target)}/"


def click_token_target(token: str) -> tuple[str, int | None, str] | None:
    """(notification id, delivery id or None, own-URL key) of a token; None when it is
    forged, tampered with or malformed."""
    resolved = click_token_resolve(token)
    if resolved is None:
        return None
    target = _signer().unsign_object(token).get("u", "a")
    if not isinstance(target, str):
        return None
    return resolved[0], resolved[1], target


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
