"""One-click unsubscribe (RFC 8058): ``NP_PUBLIC_BASE_URL`` + ``/u/<token>/``.

The token names a user, a notification type and a channel, signed with SECRET_KEY under its
own salt (``django.core.signing``): it cannot be guessed, altered or minted elsewhere.
Emails of the categories in ``NP_UNSUBSCRIBE_CATEGORIES`` carry ``List-Unsubscribe`` (the
URL, plus ``mailto:NP_UNSUBSCRIBE_MAILTO`` when set) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``; a POST to the URL opts the user out of
that type on that channel (``services/unsubscribe.py``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing

SALT = "deliveries.unsubscribe"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def unsubscribe_token(user_id: Any, type_name: str, channel: str) -> str:
    return _signer().sign_object({"u": str(user_id), "t": type_name, "c": channel})


def unsubscribe_url(user_id: Any, type_name: str, channel: str) -> str:
    base = str(settings.NP_PUBLIC_BASE_URL).rstrip("/")
    return f"{base}/u/{unsubscribe_token(user_id, type_name, channel)}/"


def unsubscribe_token_resolve(token: str) -> tuple[str, str, str] | None:
    """(user id, type, channel) of a token; None when forged, tampered with or malformed."""
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    values = (payload.get("u"), payload.get("t"), payload.get("c"))
    if not all(isinstance(v, str) and v for v in values):
        return None
    return values[0], values[1], values[2]  # type: ignore[return-value]


def unsubscribe_headers(
    *, user_id: Any, type_name: str | None, channel: str, category: str | None
) -> dict[str, str]:
    """The RFC 8058 headers for one email, or {} when its category is not unsubscribable
    (transactional) or it names no user and type to opt out of."""
    if (
        channel != "email"
        or not user_id
        or not type_name
        or category not in settings.NP_UNSUBSCRIBE_CATEGORIES
    ):
        return {}
    targets = [f"<{unsubscribe_url(user_id, type_name, channel)}>"]
    mailto = str(settings.NP_UNSUBSCRIBE_MAILTO or "")
    if mailto:
        subject = quote(f"unsubscribe {unsubscribe_token(user_id, type_name, channel)}")
        targets.append(f"<mailto:{mailto}?subject={subject}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
