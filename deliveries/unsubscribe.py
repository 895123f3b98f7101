"""One-click unsubscribe (RFC 8058): ``NP_PUBLIC_BASE_URL`` + ``/u/<token>/``.

The token names a notification type and a channel, and either a user or — for an
address-only recipient (``types.Recipient``: no account) — the address itself and the
email's category; it is
signed with SECRET_KEY under its own salt (``django.core.signing``): it cannot be guessed,
altered or minted elsewhere. Emails of the categories in ``NP_UNSUBSCRIBE_CATEGORIES`` carry
``List-Unsubscribe`` (the URL, plus ``mailto:NP_UNSUBSCRIBE_MAILTO`` when set) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``; a POST to the URL opts the user out
of that type on that channel, or suppresses the address on that channel for that category
(``services/unsubscribe.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing

SALT = "deliveries.unsubscribe"


@dataclass(frozen=True)
class UnsubscribeTarget:
    """What a token opts out: ``user_id`` (a user's type × channel) or ``address``."""

    type_name: str
    channel: str
    user_id: str | None = None
    address: str | None = None
    category: str | None = None  # an address token: the category it opts out of


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def unsubscribe_token(user_id: Any, type_name: str, channel: str) -> str:
    return _signer().sign_object({"u": str(user_id), "t": type_name, "c": channel})


def address_unsubscribe_token(
    address: str, type_name: str, channel: str, category: str | None = None
) -> str:
    return _signer().sign_object({"a": address, "t": type_name, "c": channel, "g": category})


def _url(token: str) -> str:
    return f"{str(settings.NP_PUBLIC_BASE_URL).rstrip('/')}/u/{token}/"


def unsubscribe_url(user_id: Any, type_name: str, channel: str) -> str:
    return _url(unsubscribe_token(user_id, type_name, channel))


def address_unsubscribe_url(
    address: str, type_name: str, channel: str, category: str | None = None
) -> str:
    return _url(address_unsubscribe_token(address, type_name, channel, category))


def unsubscribe_token_resolve(token: str) -> UnsubscribeTarget | None:
    """What a token opts out; None when forged, tampered with or malformed."""
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    type_name, channel = payload.get("t"), payload.get("c")
    user_id, address = payload.get("u"), payload.get("a")
    if not (isinstance(type_name, str) and type_name and isinstance(channel, str) and channel):
        return None
    if isinstance(user_id, str) and user_id and address is None:
        return UnsubscribeTarget(type_name, channel, user_id=user_id)
    category = payload.get("g")
    if isinstance(address, str) and address and user_id is None:
        scoped = category if isinstance(category, str) and category else None
        return UnsubscribeTarget(type_name, channel, address=address, category=scoped)
    return None


def unsubscribe_headers(
    *,
    user_id: Any,
    type_name: str | None,
    channel: str,
    category: str | None,
    address: str | None = None,
) -> dict[str, str]:
    """The RFC 8058 headers for one email, or {} when its category is not unsubscribable
    (transactional) or it names no type, and neither a user nor an address, to opt out."""
    if (
        channel != "email"
        or not type_name
        or not (user_id or address)
        or category not in settings.NP_UNSUBSCRIBE_CATEGORIES
    ):
        return {}
    if user_id:
        token = unsubscribe_token(user_id, type_name, channel)
    else:
        token = address_unsubscribe_token(str(address), type_name, channel, category)
    targets = [f"<{_url(token)}>"]
    mailto = str(settings.NP_UNSUBSCRIBE_MAILTO or "")
    if mailto:
        targets.append(f"<mailto:{mailto}?subject={quote(f'unsubscribe {token}')}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
