"""The preference page's signed link: ``NP_PUBLIC_BASE_URL`` + ``/p/<token>/``.

The token names a user (nothing else), signed with SECRET_KEY under its own salt and
timestamped (``django.core.signing.TimestampSigner``): it cannot be guessed, altered or
minted elsewhere, and it stops working ``NP_PREFERENCE_LINK_MAX_AGE_DAYS`` after the email
was sent. Every email to a user carries it in a short footer (text and HTML), added where
the provider message is built (``services/sending/send.py``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils.html import format_html

SALT = "deliveries.preference_page"
FOOTER_LABEL = "Manage your notification preferences"
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class TokenProblem(Enum):
    INVALID = "invalid"
    EXPIRED = "expired"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def preference_token(user_id: Any) -> str:
    return _signer().sign_object({"u": str(user_id)})


def preference_url(user_id: Any) -> str:
    base = str(settings.NP_PUBLIC_BASE_URL).rstrip("/")
    return f"{base}/p/{preference_token(user_id)}/"


def preference_token_resolve(token: str) -> str | TokenProblem:
    """The user id a token names, or why it cannot be used (forged/tampered, or expired)."""
    max_age = timedelta(days=int(settings.NP_PREFERENCE_LINK_MAX_AGE_DAYS))
    try:
        payload = _signer().unsign_object(token, max_age=max_age)
    except signing.SignatureExpired:
        return TokenProblem.EXPIRED
    except (signing.BadSignature, ValueError):
        return TokenProblem.INVALID
    user_id = payload.get("u") if isinstance(payload, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return TokenProblem.INVALID
    return user_id


def with_preference_footer(
    text: str, html: str | None, *, user_id: Any, channel: str
) -> tuple[str, str | None]:
    """An email to a user gets the preference link as the last lines of its text and HTML
    bodies (inside ``</body>`` when the HTML has one); other messages are returned as-is."""
    if channel != "email" or not user_id:
        return text, html
    url = preference_url(user_id)
    # "-- " (with the space) is the signature separator (RFC 3676 4.3): mail clients
    # recognise the footer and leave it out of replies
    text = f"{text.rstrip()}\n\n-- \n{FOOTER_LABEL}: {url}\n"
    if html:
        footer = format_html(
            '<p class="np-preferences-footer" style="font-size:12px;color:#555">'
            '<a href="{}">{}</a></p>',
            url,
            FOOTER_LABEL,
        )
        ends = list(_BODY_END.finditer(html))
        if ends:
            at = ends[-1].start()
            html = f"{html[:at]}{footer}{html[at:]}"
        else:
            html = f"{html}{footer}"
    return text, html
