"""Log output: plain text or one JSON object per line (``LOG_FORMAT=json``), and the ids of
the delivery being worked on attached to every line logged meanwhile.

``log_fields(delivery_id=..., notification_id=...)`` sets them for a block (a context
variable: asyncio tasks and ``providers.aio.to_thread`` threads inherit it, so a provider
adapter's own log lines carry them too); ``ContextFilter`` copies them onto each record,
where the JSON formatter prints them as keys and the plain one appends them in brackets.
They only annotate log records: no code reads them to decide anything.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

CONTEXT_KEYS = ("notification_id", "delivery_id")

_fields: ContextVar[dict[str, Any] | None] = ContextVar("np_log_fields", default=None)


@contextlib.contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` (None values left out) to every log record of this block."""
    current = _fields.get() or {}
    token = _fields.set({**current, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


def delivery_fields(delivery: Any) -> dict[str, Any]:
    """The log fields of a ``NotificationDelivery`` (ids as they appear in the API)."""
    notification_id = getattr(delivery, "notification_id", None)
    return {
        "delivery_id": delivery.pk,
        "notification_id": str(notification_id) if notification_id is not None else None,
    }


class ContextFilter(logging.Filter):
    """Copy the fields of the enclosing ``log_fields`` block onto the record (an explicit
    ``extra=`` of the same name wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class PlainFormatter(logging.Formatter):
    """The plain format, with ``[notification_id=… delivery_id=…]`` after the message when a
    record carries them."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        text = super().formatMessage(record)
        ids = " ".join(
            f"{key}={getattr(record, key)}"
            for key in CONTEXT_KEYS
            if getattr(record, key, None) is not None
        )
        return f"{text} [{ids}]" if ids else text


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """``settings.LOGGING`` for ``LOG_FORMAT`` (``plain`` or ``json``)."""
    if log_format not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT={log_format!r} is not 'plain' or 'json'")
    formatters = {
        "plain": {
            "()": "notifyplatform.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "notifyplatform.logs.ContextFilter"},
            "redact_tokens": {"()": "notifyplatform.accesslog.RedactingFilter"},
        },
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "daphne": {"level": "WARNING"},
            # the pool warns when it discards a connection returned mid-query (a command's
            # Ctrl-C, a task's time limit): discarding it is the right thing, not news
            "psycopg.pool": {"level": "ERROR"},
            "axes": {"level": "WARNING"},  # failed logins and lockouts, not every start
            # no invitation or API tokens in "Not Found: /i/<token>/" nor in runserver's
            # access lines (daphne's own access log is redacted by notifyplatform.accesslog)
            "django.request": {"filters": ["redact_tokens"]},
            "django.channels.server": {"filters": ["redact_tokens"]},
        },
    }
