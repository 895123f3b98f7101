"""``notify_many()``: the bulk path — the same rows as ``notify()`` (built by ``rows``),
written with COPY."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifyplatform.bulk import COPY_NULL, copy_escape, copy_text, loaded_instance
from notifyplatform.choices import Channel
from notifyplatform.gcpause import gc_paused
from users.models import Device

from ... import errors
from ...errors import NotifyError
from ...models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    UserNotificationPreference,
)
from ...selectors import suppression_reasons
from ...types import NotifyResult, Recipient
from ..sending import enqueue_deliveries
from ..sending.inapp import publish_in_app_groups
from ..status import notification_status_from
from .address import _push_devices, _user_addresses
from .bulk_chunk import _Chunk, _LocaleShare, _Planned
from .bulk_inapp import InAppFastPath
from .bulk_share import new_share
from .bulk_store import _BulkStore
from .plan import _decision
from .rows import (
    _delivery_row,
    _DeliveryRow,
    _row_metadata,
)
from .validate import _Common, _common, _max_retries
from .write import _notify

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
    "rich_content",
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
    fields = {name: kwargs.get(name) for name in _NOTIFY_KWARGS}
    relations = {name: kwargs.get(name) for name in _RELATION_KWARGS}
    with transaction.atomic():
        if recipients:
            writer = _BulkWriter(_common(**fields), prefix=idempotency_prefix, relations=relations)
            chunk = max(1, _bulk_chunk())
            # every row instance lives until the call returns: collections would free nothing
            with gc_paused():
                for start in range(0, len(recipients), chunk):
                    slow, due = writer.write(recipients[start : start + chunk], results, start)
                    due_ids.extend(due)
                    for index in slow:
                        recipient = recipients[index]
                        results[index], due = _notify(
                            recipient,
                            idempotency_key=writer.key_for(recipient),
                            relations=relations,
                            fields=fields,
                        )
                        due_ids.extend(due)
        if due_ids:
            chunk_size = int(getattr(settings, "NP_NOTIFY_BULK_ENQUEUE_CHUNK", 500))
            transaction.on_commit(lambda: enqueue_deliveries(due_ids, chunk=chunk_size))
        if recipients and writer.fast.published:
            published = writer.fast.published  # in-app rows written as sent: live after commit
            transaction.on_commit(lambda: publish_in_app_groups(published))
    return [result for result in results if result is not None]


class _BulkWriter:
    def __init__(self, common: _Common, *, prefix: str | None, relations: dict[str, Any]) -> None:
        self.common = common
        self.prefix = prefix
        self.relations = relations
        self.type_name = common.type_name or "*"
        self.max_retries = _max_retries()
        self.shares: dict[str, _LocaleShare] = {}
        self.store = _BulkStore(prefix=prefix)
        self.fast = InAppFastPath(self.store, common.channels, common.expires_at)
        self.written: dict[str, NotifyResult] = {}  # idempotency key → result, this call

    def key_for(self, recipient: Any) -> str | None:
        return f"{self.prefix}:{recipient.pk}" if self.prefix else None

    def share(self, locale: str, now: datetime) -> _LocaleShare:
        found = self.shares.get(locale)
        if found is None:
            found = self.shares[locale] = new_share(
                self.common, self.relations, self.store, self.max_retries, locale, now
            )
        return found

    # -- one chunk --------------------------------------------------------------------
    def write(
        self, users: list[Any], results: list[NotifyResult | None], offset: int
    ) -> tuple[list[int], list[int]]:
        """Write the rows of one chunk. Returns the indexes left for notify() one by one, and
        the ids of the deliveries due now."""
        slow: list[int] = []
        keys, fast = self._keys(users, offset, slow)
        if not fast:
            return slow, []
        now = timezone.now()
        scheduled_at = self.common.scheduled_at
        chunk = _Chunk(
            now=now,
            due=scheduled_at if scheduled_at and scheduled_at > now else now,
            existing=self.store.existing(
                [k for k in keys if k is not None and k not in self.written]
            ),
            prefs=self.store.preferences(
                [users[i] for i in fast], self.type_name, self.common.channels
            ),
            devices=_push_devices([users[i] for i in fast], self.common.channels),
            slow=slow,
        )
        chunk.suppressed = self._suppressed([users[i] for i in fast], chunk.prefs, chunk.devices)
        for i in fast:
            self._plan_user(chunk, users[i], keys[i], offset + i, results)
        ids = self.store.allocate_ids(sum(len(p.rows) for p in chunk.planned))
        lines = self._delivery_lines(chunk.planned, ids, chunk.due, chunk.n_lines)
        due_ids: list[int] = []
        inserted = self.store.insert(
            chunk.n_lines,
            lines,
            [p.notification_id for p in chunk.planned],
            # the result instances are built while the server loads the deliveries
            lambda went_in: due_ids.extend(
                self._results(chunk.planned, ids, went_in, results, now)
            ),
        )
        self._settle(chunk, inserted, results)
        chunk.slow.sort()
        return chunk.slow, due_ids

    def _keys(
        self, users: list[Any], offset: int, slow: list[int]
    ) -> tuple[list[str | None], list[int]]:
        """Validate the chunk's recipients; address-only ones are left for notify()."""
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
        return keys, fast

    def _plan_user(
        self,
        chunk: _Chunk,
        user: Any,
        key: str | None,
        index: int,
        results: list[NotifyResult | None],
    ) -> None:
        """Plan one user's notification into ``chunk`` (or settle it: already written)."""
        if key is not None:
            done = self.written.get(key) or chunk.existing.get(key)
            if done is not None:
                results[index] = NotifyResult(done.notification, done.deliveries, False)
                return
            if key in chunk.pending_keys:
                chunk.repeats.append((index, key))
                return
        prefs = chunk.prefs.get(user.pk, chunk.prefs[None])
        if any(pref.frequency_limit is not None for pref in prefs.values()):
            chunk.slow.append(index)  # the cap counts earlier rows under a lock: one by one
            if key is not None:
                chunk.pending_keys[key] = index
            return
        share = self.share(user.locale or "en", chunk.now)
        rows = self._user_rows(
            user,
            prefs,
            share,
            chunk.due,
            chunk.devices.get(user.pk, []),
            chunk.suppressed.get(user.pk, {}),
        )
        region = user.region or None
        rows = self.fast.apply(rows, region, chunk.now)  # due in-app rows: sent right here
        notification_id = uuid.uuid4()
        n_status = notification_status_from([row.status for row in rows])
        n_text = share.n_text
        if any(row.status == DeliveryStatus.SENT for row in rows):
            sent = n_status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
            n_text = self.fast.notification_tail(share, region, user.pk, sent)
        chunk.n_lines.append(
            f"{notification_id}\t{user.pk}\t{n_status}\t"
            f"{copy_escape(key) if key is not None else COPY_NULL}\t{n_text}\n"
        )
        chunk.planned.append(_Planned(index, key, user, notification_id, share, region, rows))
        if key is not None:
            chunk.pending_keys[key] = index

    def _suppressed(
        self,
        users: list[Any],
        prefs: dict[Any, dict[str, UserNotificationPreference]],
        devices: dict[Any, list[Device]],
    ) -> dict[Any, dict[tuple[str, str], str]]:
        """The chunk's suppressed addresses, looked up in one query: user pk → its
        suppressed (channel, address) pairs (push: one address per device)."""
        common = self.common
        owners: dict[tuple[str, str], list[Any]] = {}
        for user in users:
            user_prefs = prefs.get(user.pk, prefs[None])
            for channel in common.channels:
                if channel == Channel.IN_APP:
                    continue
                for address in _user_addresses(
                    user,
                    channel,
                    webhook_url=common.webhook_url,
                    prefs=user_prefs,
                    metadata=common.metadata,
                    devices=devices.get(user.pk, []),
                ):
                    if address.recipient is not None:
                        owners.setdefault((channel, address.recipient), []).append(user.pk)
        found: dict[Any, dict[tuple[str, str], str]] = {}
        for pair, reason in suppression_reasons(owners, common.category).items():
            for pk in owners[pair]:
                found.setdefault(pk, {})[pair] = reason
        return found

    def _user_rows(
        self,
        user: Any,
        prefs: dict[str, UserNotificationPreference],
        share: _LocaleShare,
        due: datetime,
        devices: list[Device],
        suppressed: dict[tuple[str, str], str],
    ) -> list[_DeliveryRow]:
        """One user's delivery rows: the same builder as notify()'s."""
        common = self.common
        metadata = common.metadata
        tz_name = user.timezone or "UTC"
        rows = []
        for channel in common.channels:
            pref = prefs.get(channel)
            for address in _user_addresses(
                user,
                channel,
                webhook_url=common.webhook_url,
                prefs=prefs,
                metadata=metadata,
                devices=devices,
            ):
                decision = _decision(
                    address,
                    channel,
                    is_user=True,
                    pref=pref,
                    user=user,
                    type_name=common.type_name,
                    priority=common.priority,
                    due=due,
                    user_timezone=tz_name,
                    suppressed=suppressed.get((channel, address.recipient or "")),
                )
                rows.append(
                    _delivery_row(
                        channel,
                        address,
                        decision,
                        due=due,
                        base_meta=share.base_meta[channel],
                        idempotency_key=None,
                        metadata=metadata,
                    )
                )
        return rows

    def _delivery_lines(
        self, planned: list[_Planned], ids: list[int], due: datetime, n_lines: list[str]
    ) -> list[list[str]]:
        """The COPY lines of the deliveries, per planned notification (and the delivery id
        in the notification line of an in-app row sent on the fast path)."""
        due_text = due.isoformat()
        lines_by_n: list[list[str]] = []
        position = 0
        for n, plan in enumerate(planned):
            share = plan.share
            region = COPY_NULL if plan.region is None else copy_escape(plan.region)
            lines = []
            for channel, recipient, status, scheduled, meta in plan.rows:
                meta_text = share.base_meta_text[channel] if meta is None else copy_text(meta)
                tail = share.d_text[channel]
                if status == DeliveryStatus.SENT:  # only the fast path plans a row sent
                    tail = self.fast.delivery_tail(share, plan.region, ids[position], plan.user.pk)
                    n_lines[n] = self.fast.fill_delivery_id(n_lines[n], ids[position])
                lines.append(
                    f"{ids[position]}\t{plan.notification_id}\t{copy_escape(recipient)}\t"
                    f"{status}\t{due_text if scheduled is due else scheduled.isoformat()}\t"
                    f"{meta_text}\t{region}\t{tail}\n"
                )
                position += 1
            lines_by_n.append(lines)
        return lines_by_n

    def _results(
        self,
        planned: list[_Planned],
        ids: list[int],
        inserted: set[int],
        results: list[NotifyResult | None],
        now: datetime,
    ) -> list[int]:
        """Model instances of the rows that went in (no read back); returns the due ids."""
        alias = connection.alias
        metadata = self.common.metadata
        due_ids: list[int] = []
        first_id = 0
        for position, plan in enumerate(planned):
            row_ids = ids[first_id : first_id + len(plan.rows)]
            first_id += len(plan.rows)
            if position not in inserted:
                continue
            share = plan.share
            n_status = notification_status_from([row.status for row in plan.rows])
            fast = [d for d, r in zip(row_ids, plan.rows, strict=True) if r.status == "sent"]
            notification = loaded_instance(
                Notification,
                {
                    **share.n_values,
                    **(
                        self.fast.notification_values(
                            plan.region,
                            fast[0],
                            plan.user.pk,
                            n_status in ("sent", "delivered"),
                            share.n_values["created_at"],
                        )
                        if fast
                        else {}
                    ),
                    "id": plan.notification_id,
                    "user_id": plan.user.pk,
                    "status": n_status,
                    "idempotency_key": plan.key,
                },
                alias,
                {"user": plan.user},
            )
            cache = {"notification": notification}
            deliveries = []
            for delivery_id, row in zip(row_ids, plan.rows, strict=True):
                values = {
                    **share.d_values[row.channel],
                    "id": delivery_id,
                    "notification_id": plan.notification_id,
                    "recipient": row.recipient,
                    "status": row.status,
                    "scheduled_at": row.scheduled_at,
                    "delivery_metadata": _row_metadata(row, share.base_meta[row.channel], metadata),
                    "geographic_region": plan.region,
                }
                if delivery_id in fast:
                    values.update(
                        self.fast.delivery_values(
                            plan.region, delivery_id, plan.user.pk, values["created_at"]
                        )
                    )
                    self.fast.published.append((delivery_id, plan.notification_id))
                deliveries.append(loaded_instance(NotificationDelivery, values, alias, cache))
                if row.status == DeliveryStatus.PENDING and row.scheduled_at <= now:
                    due_ids.append(delivery_id)
            result = NotifyResult(notification, deliveries, created=True)
            results[plan.index] = result
            if plan.key is not None:
                self.written[plan.key] = result
        return due_ids

    def _settle(
        self, chunk: _Chunk, inserted: set[int], results: list[NotifyResult | None]
    ) -> None:
        """Keys another transaction wrote first (the ON CONFLICT path), then repeats of a key."""
        lost = [
            (p.index, p.key)
            for n, p in enumerate(chunk.planned)
            if n not in inserted and p.key is not None  # without a key nothing can conflict
        ]
        if lost:
            found = self.store.existing([key for _i, key in lost])
            for index, key in lost:
                results[index] = found[key]
                self.written[key] = found[key]
        for index, key in chunk.repeats:
            first = self.written.get(key)
            if first is not None:
                results[index] = NotifyResult(first.notification, first.deliveries, False)
            else:
                chunk.slow.append(index)  # its first occurrence went through notify()
