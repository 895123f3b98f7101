"""Keep secrets that travel in URLs out of the access log.

Invitation links carry their token as a path segment (``/i/<token>/``,
``/api/v1/invitations/by-token/<token>/``) and browsers' websocket clients pass their API
token as ``?token=np_...``; daphne writes every request's URL to its access log, which
is read by people (and shipped to log stores) that must not be able to accept someone's
invitation or act as someone. :func:`redact` replaces those values with ``[redacted]``.

daphne builds its access logger (``AccessLogGenerator``) from a name it looks up in
``daphne.cli`` *after* importing the ASGI application, and offers no other hook, so
:func:`install` (called by ``notifyplatform.asgi``) puts the redacting subclass there.
``manage.py runserver`` logs through the ``django.channels.server`` logger instead, and
Django logs every 4xx/5xx path through ``django.request``: :class:`RedactingFilter`
covers both.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from daphne.access import AccessLogGenerator

REDACTED = "[redacted]"

_PATH_TOKENS = re.compile(r"^(/i/|/api/v1/invitations/by-token/)([^/?#]+)")
_QUERY_TOKENS = re.compile(r"([?&](?:token|access_token)=)([^&#\s]*)", re.IGNORECASE)


def redact(path: str) -> str:
    """``path`` (with its query string, if any) without invitation or API tokens."""
    path = _PATH_TOKENS.sub(lambda m: m.group(1) + REDACTED, path, count=1)
    return _QUERY_TOKENS.sub(lambda m: m.group(1) + REDACTED, path)


class RedactingAccessLogGenerator(AccessLogGenerator):
    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        super().__call__(protocol, action, details)


class RedactingFilter(logging.Filter):
    """Redacts the request paths in a record's arguments: ``django.request`` ("Not Found:
    /i/<token>/") and ``django.channels.server`` (runserver's access lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {
                key: redact(value) if isinstance(value, str) else value
                for key, value in record.args.items()
            }
        elif isinstance(record.args, tuple):
            record.args = tuple(
                redact(value) if isinstance(value, str) else value for value in record.args
            )
        return True


def install() -> None:
    """Make a daphne started from its command line write a redacted access log."""
    cli = sys.modules.get("daphne.cli")
    if cli is not None and getattr(cli, "AccessLogGenerator", None) is AccessLogGenerator:
        cli.AccessLogGenerator = RedactingAccessLogGenerator  # type: ignore[attr-defined]
