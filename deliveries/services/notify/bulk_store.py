"""The database side of ``notify_many()``: preferences and earlier rows read in bulk, ids
allocated in one query, rows written with COPY."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from psycopg import errors as psycopg_errors

from notifyplatform.bulk import copy_rows

from ...models import Notification, NotificationDelivery, UserNotificationPreference
from ...types import NotifyResult

logger = logging.getLogger(__name__)

# COPY text format: backslash, tab, newline and carriage return are escaped; \N is NULL.
_N_VARIABLE = ("id", "user_id", "status", "idempotency_key")
_D_VARIABLE = (
    "id",
    "notification_id",
    "recipient",
    "status",
    "scheduled_at",
    "delivery_metadata",
    "geographic_region",
)


def _columns(model: type, first: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(attnames, columns) of a model's concrete fields, ``first`` at the front."""
    fields = [f for f in model._meta.concrete_fields]  # type: ignore[attr-defined]
    by_attname = {f.attname: f for f in fields}
    ordered = [by_attname[name] for name in first] + [f for f in fields if f.attname not in first]
    return [f.attname for f in ordered], [f.column for f in ordered]


class _BulkStore:
    def __init__(self, *, prefix: str | None) -> None:
        self.prefix = prefix
        self.n_attnames, n_columns = _columns(Notification, _N_VARIABLE)
        self.d_attnames, d_columns = _columns(NotificationDelivery, _D_VARIABLE)
        self.n_sql = f"COPY notifications ({', '.join(n_columns)}) FROM STDIN"
        self.d_sql = f"COPY notification_deliveries ({', '.join(d_columns)}) FROM STDIN"
        self.n_columns = n_columns

    # -- preferences ------------------------------------------------------------------
    def preferences(
        self, users: list[Any], type_name: str, channels: list[str]
    ) -> dict[Any, dict[str, UserNotificationPreference]]:
        """The winning row per (user, channel) — preferences_for() for many users at once.
        Key None holds the platform defaults (users without rows of their own)."""
        user_ids = list({user.pk for user in users})
        rows = UserNotificationPreference.objects.raw(
            "SELECT * FROM user_notification_preferences"
            " WHERE (user_id = ANY(%s) OR user_id IS NULL)"
            " AND invitation_type = ANY(%s) AND delivery_method = ANY(%s)",
            [user_ids, [type_name, "*"], list(channels)],
        )
        ranked: dict[Any, dict[str, tuple[int, UserNotificationPreference]]] = {}
        platform: dict[str, tuple[int, UserNotificationPreference]] = {}
        for row in rows:
            rank = (0 if row.user_id is not None else 2) + (0 if row.invitation_type != "*" else 1)
            target = platform if row.user_id is None else ranked.setdefault(row.user_id, {})
            current = target.get(row.delivery_method)
            if current is None or rank < current[0]:
                target[row.delivery_method] = (rank, row)
        result: dict[Any, dict[str, UserNotificationPreference]] = {
            None: {channel: row for channel, (_r, row) in platform.items()}
        }
        for user_id, own in ranked.items():
            merged = dict(platform)
            for channel, item in own.items():
                if channel not in merged or item[0] < merged[channel][0]:
                    merged[channel] = item
            result[user_id] = {channel: row for channel, (_r, row) in merged.items()}
        return result

    def existing(self, keys: list[str]) -> dict[str, NotifyResult]:
        if not keys:
            return {}
        found: dict[str, Notification] = {
            n.idempotency_key: n  # type: ignore[misc]  # not None: selected by key
            for n in Notification.objects.raw(
                "SELECT * FROM notifications WHERE idempotency_key = ANY(%s)", [keys]
            )
        }
        if not found:
            return {}
        by_notification: dict[Any, list[NotificationDelivery]] = {n.pk: [] for n in found.values()}
        for row in NotificationDelivery.objects.raw(
            "SELECT * FROM notification_deliveries WHERE notification_id = ANY(%s) ORDER BY id",
            [list(by_notification)],
        ):
            by_notification[row.notification_id].append(row)
        return {
            key: NotifyResult(n, by_notification[n.pk], created=False) for key, n in found.items()
        }

    def allocate_ids(self, count: int) -> list[int]:
        return allocate_delivery_ids(count)

    def _copy_deliveries(
        self, lines: list[str], meanwhile: Callable[[], None] | None = None
    ) -> None:
        """COPY delivery rows with the inbox trigger aside (migration 0011): the only sent
        in-app rows here are the fast path's, whose notifications went in with in_inbox
        set, so the trigger would find nothing to change. Switched back right after, so
        nothing else in the caller's transaction goes without it."""
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL notifyplatform.inbox_synced = 'on'")
        copy_rows(self.d_sql, lines, meanwhile)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL notifyplatform.inbox_synced = 'off'")

    def insert(
        self,
        n_lines: list[str],
        d_lines_by_n: list[list[str]],
        notification_ids: list[uuid.UUID],
        meanwhile: Callable[[set[int]], None],
    ) -> set[int]:
        """COPY the rows; returns the positions (in ``n_lines``) whose notification went in.
        ``meanwhile(those positions)`` runs while the server loads the deliveries (Python
        work that needs no connection: ``copy_rows``).

        Without a prefix nothing can conflict. With one, keys already present were filtered
        out, so a unique violation means a concurrent writer took a key meanwhile: then the
        notifications go through a temp table and ``INSERT ... ON CONFLICT DO NOTHING``."""
        if not n_lines:
            return set()
        everything = set(range(len(n_lines)))
        every_line = [line for lines in d_lines_by_n for line in lines]
        if self.prefix is None:
            copy_rows(self.n_sql, n_lines)
            self._copy_deliveries(every_line, lambda: meanwhile(everything))
            return everything
        try:
            with transaction.atomic():
                copy_rows(self.n_sql, n_lines)
        except psycopg_errors.UniqueViolation:
            logger.info("notify_many: idempotency keys taken concurrently; using ON CONFLICT")
        else:
            self._copy_deliveries(every_line, lambda: meanwhile(everything))
            return everything
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS np_bulk_notifications"
                " (LIKE notifications INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE np_bulk_notifications")
        copy_rows(self.n_sql.replace("COPY notifications", "COPY np_bulk_notifications"), n_lines)
        columns = ", ".join(self.n_columns)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO notifications ({columns}) SELECT {columns} FROM"  # noqa: S608 - model columns
                " np_bulk_notifications ON CONFLICT (idempotency_key) DO NOTHING"
                " RETURNING notification_id"
            )
            went_in = {row[0] for row in cursor.fetchall()}
        inserted = {n for n, nid in enumerate(notification_ids) if nid in went_in}
        lines = [line for n in sorted(inserted) for line in d_lines_by_n[n]]
        if lines:
            self._copy_deliveries(lines, lambda: meanwhile(inserted))
        else:
            meanwhile(inserted)
        return inserted


def allocate_delivery_ids(count: int) -> list[int]:
    """``count`` delivery ids from the table's sequence, in one query: for rows whose own
    values name their id (COPY lines, a sent in-app row's provider message id)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('notification_deliveries', 'id'))"
            " FROM generate_series(1, %s)",
            [count],
        )
        return [row[0] for row in cursor.fetchall()]
