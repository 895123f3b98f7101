"""``notify_many()``: the bulk path — the same rows as ``notify()`` (built by ``rows``),
written with COPY."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import errors as psycopg_errors

from notifyplatform.bulk import COPY_NULL, copy_escape, copy_rows, copy_text, loaded_instance

from ... import errors
from ...errors import NotifyError
from ...models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    UserNotificationPreference,
)
from ...types import Decision, NotifyResult, Recipient
from ..sending import enqueue_deliveries
from ..status import notification_status_from
from .address import RECIPIENT_TYPES, _Address, _user_address
from .plan import _decision, _render_common, _Rendered
from .rows import _base_delivery_metadata, _finish_delivery_metadata, _notification_fields
from .validate import _Common, _common, _max_retries
from .write import _collected_due_ids, notify

logger = logging.getLogger(__name__)

_NOTIFY_KWARGS = (
    "template_key",
    "title",
    "message",
    "context",
    "channels",
    "category",
    "priority",
    "scheduled_at",
    "expires_at",
    "action_url",
    "action_label",
    "metadata",
    "webhook_url",
)
_RELATION_KWARGS = ("auction", "bid", "item", "invitation")


def _bulk_chunk() -> int:
    return int(getattr(settings, "NP_NOTIFY_BULK_CHUNK", 10_000))


def notify_many(
    recipients: list[Any], *, idempotency_prefix: str | None = None, **kwargs: Any
) -> list[NotifyResult]:
    """Fan one notification out to many users, each with its own rows and preferences.

    Each recipient gets ``idempotency_key = f"{idempotency_prefix}:{user.pk}"`` when a
    prefix is given, so a re-run fan-out (e.g. a batch job resumed after a crash) skips those
    already done (their results come back with ``created=False``). The rows are exactly the
    ones ``notify()`` would write for each recipient, but written in bulk: the template is
    rendered once per language, preferences are loaded in one query per chunk of
    ``NP_NOTIFY_BULK_CHUNK`` recipients, the rows go in with ``COPY``, and the due sends are
    enqueued in chunks after the one commit. Recipients whose preference has a frequency cap
    (a count of earlier deliveries under a lock) and address-only ``Recipient``s go through
    ``notify()`` one by one inside the same transaction.
    """
    kwargs.pop("idempotency_key", None)
    recipients = list(recipients)
    unknown = set(kwargs) - set(_NOTIFY_KWARGS) - set(_RELATION_KWARGS)
    if unknown:
        raise TypeError(f"notify_many() got unexpected keyword arguments {sorted(unknown)}")
    results: list[NotifyResult | None] = [None] * len(recipients)
    due_ids: list[int] = []
    token = _collected_due_ids.set(due_ids)
    try:
        with transaction.atomic():
            if recipients:
                common = _common(**{name: kwargs.get(name) for name in _NOTIFY_KWARGS})
                writer = _BulkWriter(
                    common,
                    prefix=idempotency_prefix,
                    relations={name: kwargs.get(name) for name in _RELATION_KWARGS},
                    due_ids=due_ids,
                )
                chunk = max(1, _bulk_chunk())
                for start in range(0, len(recipients), chunk):
                    part = recipients[start : start + chunk]
                    slow = writer.write(part, results, start)
                    for index in slow:
                        recipient = recipients[index]
                        key = writer.key_for(recipient)
                        results[index] = notify(recipient, idempotency_key=key, **kwargs)
            if due_ids:
                chunk_size = int(getattr(settings, "NP_NOTIFY_BULK_ENQUEUE_CHUNK", 500))
                transaction.on_commit(lambda: enqueue_deliveries(due_ids, chunk=chunk_size))
    finally:
        _collected_due_ids.reset(token)
    return [result for result in results if result is not None]


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


@dataclass
class _LocaleShare:
    """What every recipient with one locale shares: rendering and pre-encoded row parts."""

    rendered: dict[str, _Rendered]
    n_values: dict[str, Any]  # notification attnames → value (shared part)
    n_text: str  # COPY text of the shared notification columns
    d_values: dict[str, dict[str, Any]]  # channel → delivery attnames → value (shared part)
    d_text: dict[str, str]
    base_meta: dict[str, dict[str, Any]]  # channel → delivery_metadata without per-row keys
    base_meta_text: dict[str, str]


class _BulkWriter:
    def __init__(
        self,
        common: _Common,
        *,
        prefix: str | None,
        relations: dict[str, Any],
        due_ids: list[int],
    ) -> None:
        self.common = common
        self.prefix = prefix
        self.due_ids = due_ids
        self.relations = relations
        self.type_name = common.type_name or "*"
        self.max_retries = _max_retries()
        self.shares: dict[str, _LocaleShare] = {}
        self.n_attnames, n_columns = _columns(Notification, _N_VARIABLE)
        self.d_attnames, d_columns = _columns(NotificationDelivery, _D_VARIABLE)
        self.n_sql = f"COPY notifications ({', '.join(n_columns)}) FROM STDIN"
        self.d_sql = f"COPY notification_deliveries ({', '.join(d_columns)}) FROM STDIN"
        self.n_columns = n_columns
        self.written: dict[str, NotifyResult] = {}  # idempotency key → result, this call

    def key_for(self, recipient: Any) -> str | None:
        return f"{self.prefix}:{recipient.pk}" if self.prefix else None

    # -- shared per locale ------------------------------------------------------------
    def share(self, locale: str, now: datetime) -> _LocaleShare:
        found = self.shares.get(locale)
        if found is not None:
            return found
        common = self.common
        rendered = _render_common(common, locale)
        relations = self.relations
        n_values = _notification_fields(
            channels=common.channels,
            rendered=rendered,
            category=common.category,
            priority=common.priority,
            context=common.context,
            metadata=common.metadata,
            type_name=common.type_name,
            scheduled_at=common.scheduled_at,
            expires_at=common.expires_at,
            action_url=common.action_url,
            action_label=common.action_label,
        )
        n_values.update(
            auction_id=relations["auction"].pk if relations["auction"] is not None else None,
            bid_id=relations["bid"].pk if relations["bid"] is not None else None,
            item_id=relations["item"].pk if relations["item"] is not None else None,
            sent_at=None,
            delivered_at=None,
            read_at=None,
            clicked_at=None,
            delivery_attempts=0,
            max_attempts=3,
            error_message=None,
            provider_response=None,
            is_read=False,
            is_archived=False,
            in_inbox=False,  # the trigger sets it when the in-app delivery goes out
            tags=None,
            created_at=now,
            updated_at=now,
        )
        n_text = "\t".join(
            copy_text(n_values[name]) for name in self.n_attnames[len(_N_VARIABLE) :]
        )
        invitation = relations["invitation"]
        d_values: dict[str, dict[str, Any]] = {}
        d_text: dict[str, str] = {}
        base_meta: dict[str, dict[str, Any]] = {}
        base_meta_text: dict[str, str] = {}
        for channel in common.channels:
            values = {
                "invitation_id": invitation.pk if invitation is not None else None,
                "delivery_type": channel,
                "provider_type": channel,
                "provider_name": "",
                "provider_priority": 0,
                "recipient_type": RECIPIENT_TYPES[channel],
                "provider_message_id": None,
                "provider_response": None,
                "error_message": None,
                "error_code": None,
                "cost_per_message": None,
                "retry_count": 0,
                "max_retries": self.max_retries,
                "sent_at": None,
                "delivered_at": None,
                "failed_at": None,
                "expires_at": common.expires_at,
                "created_at": now,
                "updated_at": now,
            }
            d_values[channel] = values
            d_text[channel] = "\t".join(
                copy_text(values[name]) for name in self.d_attnames[len(_D_VARIABLE) :]
            )
            meta = _base_delivery_metadata(
                rendered=rendered[channel],
                type_name=common.type_name,
                category=common.category,
                priority=common.priority,
                locale=locale,
                action_url=common.action_url,
            )
            plain = _finish_delivery_metadata(
                dict(meta),
                address=_Address("x"),
                decision=Decision(),
                idempotency_key=None,
                metadata=common.metadata,
            )
            base_meta[channel] = meta
            base_meta_text[channel] = copy_text(plain)
        share = _LocaleShare(
            rendered, n_values, n_text, d_values, d_text, base_meta, base_meta_text
        )
        self.shares[locale] = share
        return share

    # -- preferences ------------------------------------------------------------------
    def preferences(self, users: list[Any]) -> dict[Any, dict[str, UserNotificationPreference]]:
        """The winning row per (user, channel) — preferences_for() for many users at once.
        Key None holds the platform defaults (users without rows of their own)."""
        user_ids = list({user.pk for user in users})
        rows = UserNotificationPreference.objects.raw(
            "SELECT * FROM user_notification_preferences"
            " WHERE (user_id = ANY(%s) OR user_id IS NULL)"
            " AND invitation_type = ANY(%s) AND delivery_method = ANY(%s)",
            [user_ids, [self.type_name, "*"], list(self.common.channels)],
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
        found = {
            n.idempotency_key: n
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
        if not count:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('notification_deliveries', 'id'))"
                " FROM generate_series(1, %s)",
                [count],
            )
            return [row[0] for row in cursor.fetchall()]

    # -- one chunk --------------------------------------------------------------------
    def write(self, users: list[Any], results: list[NotifyResult | None], offset: int) -> list[int]:
        """Write the rows of one chunk; returns the indexes left for notify() one by one."""
        common = self.common
        slow: list[int] = []
        fast: list[int] = []
        keys: list[str | None] = []
        for i, user in enumerate(users):
            if isinstance(user, Recipient):
                slow.append(offset + i)
                keys.append(None)
                continue
            if user is None or getattr(user, "pk", None) is None:
                raise NotifyError(errors.INVALID_RECIPIENT, "a saved user is required", "user_id")
            key = self.key_for(user)
            if key is not None and len(key) > 255:
                raise NotifyError(
                    errors.VALIDATION_ERROR, "must be 1 to 255 characters", "idempotency_key"
                )
            keys.append(key)
            fast.append(i)
        if not fast:
            return slow
        prefix_keys = [k for k in keys if k is not None and k not in self.written]
        existing = self.existing(prefix_keys)
        prefs_by_user = self.preferences([users[i] for i in fast])
        platform_prefs = prefs_by_user[None]

        now = timezone.now()
        due = common.scheduled_at if common.scheduled_at and common.scheduled_at > now else now
        due_text = due.isoformat()
        priority = common.priority
        channels = common.channels
        webhook_url = common.webhook_url
        metadata = common.metadata
        pending, skipped = DeliveryStatus.PENDING, DeliveryStatus.SKIPPED
        n_lines: list[str] = []
        # per new notification: (result index, key, user, notification id, share, deliveries)
        planned: list[tuple[int, str | None, Any, uuid.UUID, _LocaleShare, list[tuple]]] = []
        pending_keys: dict[str, int] = {}  # key planned in this chunk → index of the first
        repeats: list[tuple[int, str]] = []
        for i in fast:
            user = users[i]
            key = keys[i]
            index = offset + i
            if key is not None:
                done = self.written.get(key) or existing.get(key)
                if done is not None:
                    results[index] = NotifyResult(done.notification, done.deliveries, False)
                    continue
                if key in pending_keys:
                    repeats.append((index, key))
                    continue
            prefs = prefs_by_user.get(user.pk, platform_prefs)
            if any(pref.frequency_limit is not None for pref in prefs.values()):
                slow.append(index)  # the cap counts earlier rows under a lock: one by one
                if key is not None:
                    pending_keys[key] = index
                continue
            locale = user.locale or "en"
            share = self.share(locale, now)
            tz_name = user.timezone or "UTC"
            region = user.region or None
            rows: list[tuple] = []
            statuses: list[str] = []
            for channel in channels:
                pref = prefs.get(channel)
                address = _user_address(
                    user, channel, webhook_url=webhook_url, prefs=prefs, metadata=metadata
                )
                if address.recipient is None or pref is not None or address.extra:
                    decision = _decision(
                        address,
                        channel,
                        is_user=True,
                        pref=pref,
                        user=user,
                        type_name=common.type_name,
                        priority=priority,
                        due=due,
                        user_timezone=tz_name,
                    )
                    status = skipped if decision.action == "skip" else pending
                    scheduled = decision.scheduled_at or due
                    meta: dict[str, Any] | None = None
                    if (
                        address.extra
                        or decision.rules
                        or decision.preferred_providers
                        or (decision.blocked_providers)
                    ):
                        meta = _finish_delivery_metadata(
                            dict(share.base_meta[channel]),
                            address=address,
                            decision=decision,
                            idempotency_key=None,
                            metadata=metadata,
                        )
                else:
                    status, scheduled, meta = pending, due, None
                statuses.append(status)
                rows.append((channel, address.recipient or "", status, scheduled, meta, region))
            n_status = notification_status_from(statuses)
            notification_id = uuid.uuid4()
            n_lines.append(
                f"{notification_id}\t{user.pk}\t{n_status}\t"
                f"{copy_escape(key) if key is not None else COPY_NULL}\t{share.n_text}\n"
            )
            planned.append((index, key, user, notification_id, share, rows))
            if key is not None:
                pending_keys[key] = index

        ids = self.allocate_ids(sum(len(p[5]) for p in planned))
        d_lines_by_n: list[list[str]] = []
        cursor_id = 0
        for _index, _key, _user, notification_id, share, rows in planned:
            lines = []
            for channel, recipient, status, scheduled, meta, region in rows:
                meta_text = share.base_meta_text[channel] if meta is None else copy_text(meta)
                lines.append(
                    f"{ids[cursor_id]}\t{notification_id}\t{copy_escape(recipient)}\t{status}\t"
                    f"{due_text if scheduled is due else scheduled.isoformat()}\t{meta_text}\t"
                    f"{COPY_NULL if region is None else copy_escape(region)}\t{share.d_text[channel]}\n"
                )
                cursor_id += 1
            d_lines_by_n.append(lines)

        inserted = self.insert(n_lines, d_lines_by_n, planned)
        alias = connection.alias
        cursor_id = 0
        for position, (index, key, user, notification_id, share, rows) in enumerate(planned):
            first_id = cursor_id
            cursor_id += len(rows)
            if position not in inserted:
                continue
            notification = loaded_instance(
                Notification,
                {
                    **share.n_values,
                    "id": notification_id,
                    "user_id": user.pk,
                    "status": notification_status_from([r[2] for r in rows]),
                    "idempotency_key": key,
                },
                alias,
                {"user": user},
            )
            cache = {"notification": notification}
            deliveries = []
            for offset_id, (channel, recipient, status, scheduled, meta, region) in enumerate(rows):
                delivery_id = ids[first_id + offset_id]
                if meta is None:
                    meta = dict(share.base_meta[channel])
                    _finish_delivery_metadata(
                        meta,
                        address=_Address(recipient),
                        decision=Decision(),
                        idempotency_key=None,
                        metadata=metadata,
                    )
                deliveries.append(
                    loaded_instance(
                        NotificationDelivery,
                        {
                            **share.d_values[channel],
                            "id": delivery_id,
                            "notification_id": notification_id,
                            "recipient": recipient,
                            "status": status,
                            "scheduled_at": scheduled,
                            "delivery_metadata": meta,
                            "geographic_region": region,
                        },
                        alias,
                        cache,
                    )
                )
                if status == pending and scheduled <= now:
                    self.due_ids.append(delivery_id)
            result = NotifyResult(notification, deliveries, created=True)
            results[index] = result
            if key is not None:
                self.written[key] = result
        # keys another transaction wrote first (the ON CONFLICT path), then repeats of a key
        lost = [(p[0], p[1]) for n, p in enumerate(planned) if n not in inserted]
        if lost:
            found = self.existing([key for _i, key in lost if key is not None])
            for index, key in lost:
                results[index] = found[key]
                self.written[key] = found[key]
        for index, key in repeats:
            first = self.written.get(key)
            if first is not None:
                results[index] = NotifyResult(first.notification, first.deliveries, False)
            else:
                slow.append(index)  # its first occurrence went through notify()
        slow.sort()
        return slow

    def insert(
        self, n_lines: list[str], d_lines_by_n: list[list[str]], planned: list[tuple]
    ) -> set[int]:
        """COPY the rows; returns the positions (in ``planned``) whose notification went in.

        Without a prefix nothing can conflict. With one, keys already present were filtered
        out, so a unique violation means a concurrent writer took a key meanwhile: then the
        notifications go through a temp table and ``INSERT ... ON CONFLICT DO NOTHING``."""
        if not n_lines:
            return set()
        everything = set(range(len(planned)))
        if self.prefix is None:
            copy_rows(self.n_sql, n_lines)
            copy_rows(self.d_sql, [line for lines in d_lines_by_n for line in lines])
            return everything
        try:
            with transaction.atomic():
                copy_rows(self.n_sql, n_lines)
                copy_rows(self.d_sql, [line for lines in d_lines_by_n for line in lines])
            return everything
        except psycopg_errors.UniqueViolation:
            logger.info("notify_many: idempotency keys taken concurrently; using ON CONFLICT")
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
        inserted = {n for n, p in enumerate(planned) if p[3] in went_in}
        lines = [line for n in sorted(inserted) for line in d_lines_by_n[n]]
        if lines:
            copy_rows(self.d_sql, lines)
        return inserted
