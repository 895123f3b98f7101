"""Bulk writes that skip the ORM's per-row cost: values in PostgreSQL's COPY text format,
``COPY ... FROM STDIN`` on Django's own connection, and model instances for rows just
written. Shared by the fan-out (``deliveries.services.notify``) and the invitation batches
(``invitations.services``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model
from django.db.models.base import ModelState
from psycopg.copy import QueuedLibpqWriter

COPY_NULL = "\\N"


def copy_escape(value: str) -> str:
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    return value


def copy_text(value: Any) -> str:
    """One value in COPY text format (as Django would store it)."""
    if value is None:
        return COPY_NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return copy_escape(value)
    if isinstance(value, (dict, list)):
        return copy_escape(json.dumps(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return copy_escape(str(value))


def copy_rows(sql: str, lines: list[str], meanwhile: Callable[[], None] | None = None) -> None:
    """Run one ``COPY ... FROM STDIN`` on Django's connection (inside its transaction).

    ``meanwhile``: Python work to do while the server is still loading the rows (it must not
    use the connection). The data then goes through psycopg's queued writer (a thread sends
    it) so the call starts at once, and the COPY is finished after it: on 2 cores the
    server's work and ours overlap (``bench/fanout.py``: building the 100k result instances
    during the deliveries' COPY).

    The statement is logged in ``connection.queries`` like any other query, so query-count
    assertions and debug tools see it."""
    connection.ensure_connection()
    started = time.monotonic()
    with connection.connection.cursor() as cursor:
        writer = QueuedLibpqWriter(cursor) if meanwhile is not None else None
        with cursor.copy(sql, writer=writer) as copy:
            data = "".join(lines).encode()
            view = memoryview(data)
            step = 1 << 20
            for offset in range(0, len(data), step):
                copy.write(view[offset : offset + step])
            if meanwhile is not None:
                meanwhile()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(lines)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


def loaded_instance(
    model: type[Model], values: dict[str, Any], alias: str, cache: dict[str, Any] | None = None
) -> Any:
    """A model instance for a row we just wrote (no __init__: 300k of them must be cheap)."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    state = ModelState()
    state.adding = False
    state.db = alias
    if cache:
        state.fields_cache = cache
    obj._state = state
    return obj
