"""E-mail address helpers shared by the sandbox's email providers (Mailgun, SendGrid, Postmark)."""

from __future__ import annotations

import base64
import re
import secrets
from email.utils import getaddresses

EMAIL = re.compile(
    r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)


def addresses(values: list[str]) -> list[str]:
    """addr-specs of comma-separated address lists ("Name <a@b.c>, d@e.f")."""
    result = []
    for _name, addr in getaddresses(values):
        if addr:
            result.append(addr)
    return result


def raw_addresses(values: list[str]) -> list[str]:
    """Every comma-separated entry, stripped (to detect invalid ones)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def valid_email(addr: str) -> bool:
    return bool(EMAIL.match(addr))


def b64_id(nbytes: int = 16) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode().rstrip("=")
