"""Broadcasts: one template (or one workflow, started per recipient) to a saved audience,
through a ``broadcast`` batch job.

* **Create** validates everything a job would (template on its channels, the audience,
  the variables) and writes the ``scheduled`` row; due now, it starts at once.
* **Start** (now, or the dispatcher ``broadcasts_start_due`` at ``starts_at``) claims the
  row (``FOR UPDATE SKIP LOCKED``: one starter), resolves the audience into the job's chunk
  ledger and starts the job — one transaction, chunks enqueued after commit. From there the
  batch machinery holds: resumable after a crash, cancellable, exactly once per recipient
  (idempotency keys ``batch:<job>:<user>``).
* **Local send time** ``local_send_at`` (``YYYY-MM-DDTHH:MM``) is that wall-clock time in each
  recipient's timezone: the job starts at the earliest of them (the audience's
  easternmost timezone) and gives every notification its own ``scheduled_at``; the
  delivery dispatcher sends each when due.
* **Cancel** before the start (by id, or every scheduled broadcast with a
  ``cancellation_key``) means nothing is ever written; after it, the job is cancelled.
* **Idempotency-Key** (API): scoped to the caller and kept with the broadcast; a repeat
  with the same body returns the first broadcast, another body is 422.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from users.models import User

from ..audience import saved_audience_users
from ..errors import (
    BROADCAST_NOT_FOUND,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_ARGUMENT,
    BatchError,
)
from ..models import Audience, BatchJobType, Broadcast, BroadcastStatus
from .jobs import batch_cancel, batch_create
from .spec import batch_validate


def _chunk_size() -> int:
    return int(getattr(settings, "NP_BROADCAST_CHUNK_SIZE", 1000))


def _local(value: Any) -> str:
    """``YYYY-MM-DDTHH:MM`` (seconds dropped), a wall-clock time with no offset."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise BatchError(
                INVALID_ARGUMENT, "expected a local time YYYY-MM-DDTHH:MM", "send_at_local"
            ) from None
    this_year = timezone.now().year
    if not this_year - 1 <= parsed.year <= this_year + 5:
        raise BatchError(INVALID_ARGUMENT, "must be within the next five years", "send_at_local")
    if parsed.tzinfo is not None:
        raise BatchError(
            INVALID_ARGUMENT,
            "a local time has no offset: each recipient's own timezone applies",
            "send_at_local",
        )
    return parsed.strftime("%Y-%m-%dT%H:%M")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _earliest_local(audience: Audience, local: str) -> datetime:
    """When ``local`` comes first among the audience's timezones."""
    naive = datetime.fromisoformat(local)
    zones = set(
        saved_audience_users(audience).order_by().values_list("timezone", flat=True).distinct()
    )
    return min(naive.replace(tzinfo=_zone(z)) for z in zones or {"UTC"})


def _lock(scope: str, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"np-bc-idem:{scope}:{key}"]
        )


def broadcast_create(
    *,
    audience: Audience,
    template_key: str | None = None,
    workflow_key: str | None = None,
    channels: list[str] | None = None,
    context: dict[str, Any] | None = None,
    name: str | None = None,
    send_at: datetime | None = None,
    send_at_local: Any = None,
    cancellation_key: str | None = None,
    created_by: User | None = None,
    idempotency: tuple[str, str, str] | None = None,
) -> tuple[Broadcast, bool]:
    """Validate and schedule a broadcast (starting it now when due). ``idempotency`` is
    (scope, key, request fingerprint). ``workflow_key`` instead of ``template_key`` starts
    that workflow per recipient. Returns the broadcast and whether it is new."""
    what = template_key or f"workflow {workflow_key}"
    spec = batch_validate(
        BatchJobType.BROADCAST,
        template=template_key,
        workflow=workflow_key,
        audience=f"audience:{audience.pk}",
        channels=channels,
        context=context,
        name=name or f"{what} to {audience.name}",
    )
    if send_at is not None and send_at_local not in (None, ""):
        raise BatchError(
            INVALID_ARGUMENT, "give send_at or send_at_local, not both", "send_at_local"
        )
    if send_at is not None and timezone.is_naive(send_at):
        raise BatchError(INVALID_ARGUMENT, "must include a time zone", "send_at")
    local = _local(send_at_local) if send_at_local not in (None, "") else ""
    now = timezone.now()
    starts_at = send_at or (_earliest_local(audience, local) if local else now)
    with transaction.atomic():
        if idempotency is not None:
            scope, key, fingerprint = idempotency
            _lock(scope, key)
            first = Broadcast.objects.filter(idempotency_scope=scope, idempotency_key=key).first()
            if first is not None:
                if first.request_fingerprint != fingerprint:
                    raise BatchError(
                        IDEMPOTENCY_KEY_REUSED,
                        "this Idempotency-Key was used with a different request",
                        "idempotency_key",
                    )
                return first, False
        broadcast = Broadcast.objects.create(
            name=spec.name,
            audience=audience,
            template_key=spec.template_key or "",
            workflow_key=spec.workflow_key or "",
            channels=spec.channels,
            context=spec.context or {},
            send_at=send_at,
            local_send_at=local,
            starts_at=starts_at,
            cancellation_key=cancellation_key or None,
            idempotency_scope=idempotency[0] if idempotency else None,
            idempotency_key=idempotency[1] if idempotency else None,
            request_fingerprint=idempotency[2] if idempotency else None,
            created_by=created_by,
        )
    if starts_at <= now:
        broadcast = broadcast_start(broadcast.pk) or broadcast
    return broadcast, True


def broadcast_start(broadcast_id: int) -> Broadcast | None:
    """scheduled → started with its job (or failed, with the reason); None when another
    starter holds it or it is no longer scheduled."""
    with transaction.atomic():
        broadcast = (
            Broadcast.objects.select_for_update(skip_locked=True)
            .filter(pk=broadcast_id, status=BroadcastStatus.SCHEDULED)
            .first()
        )
        if broadcast is None:
            return None
        broadcast.started_at = timezone.now()
        try:
            with transaction.atomic():
                spec = batch_validate(
                    BatchJobType.BROADCAST,
                    template=broadcast.template_key or None,
                    workflow=broadcast.workflow_key or None,
                    audience=f"audience:{broadcast.audience_id}",
                    channels=broadcast.channels,
                    context=broadcast.context,
                    name=broadcast.name,
                    chunk_size=_chunk_size(),
                )
                spec.local_send_at = broadcast.local_send_at or None
                job = batch_create(spec)
        except BatchError as exc:
            broadcast.status = BroadcastStatus.FAILED
            broadcast.error = exc.one_line()
            broadcast.save(update_fields=["status", "error", "started_at", "updated_at"])
            return broadcast
        broadcast.job = job
        broadcast.status = BroadcastStatus.STARTED
        broadcast.save(update_fields=["job", "status", "started_at", "updated_at"])
    return broadcast


def broadcasts_start_due(*, now: datetime | None = None) -> int:
    """The dispatcher (beat): start every scheduled broadcast whose time has come."""
    due = Broadcast.objects.filter(
        status=BroadcastStatus.SCHEDULED, starts_at__lte=now or timezone.now()
    ).order_by("starts_at", "pk")
    started = 0
    for pk in list(due.values_list("pk", flat=True)[:100]):
        if broadcast_start(pk) is not None:
            started += 1
    return started


def broadcast_get(broadcast_id: Any) -> Broadcast:
    try:
        return Broadcast.objects.get(pk=int(broadcast_id))
    except (ValueError, TypeError, Broadcast.DoesNotExist):
        raise BatchError(BROADCAST_NOT_FOUND, f"no broadcast {broadcast_id}", "id") from None


def broadcast_cancel(broadcast_id: Any) -> Broadcast:
    """Cancel a broadcast: before its start nothing is ever sent; once started its job is
    cancelled (what was sent stays sent). Cancelling a cancelled one is a no-op."""
    broadcast = broadcast_get(broadcast_id)
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if broadcast.status == BroadcastStatus.SCHEDULED:
            broadcast.status = BroadcastStatus.CANCELLED
            broadcast.cancelled_at = timezone.now()
            broadcast.save(update_fields=["status", "cancelled_at", "updated_at"])
            return broadcast
    if broadcast.status == BroadcastStatus.STARTED and broadcast.job_id is not None:
        batch_cancel(broadcast.job_id)
        Broadcast.objects.filter(pk=broadcast.pk).update(
            status=BroadcastStatus.CANCELLED, cancelled_at=timezone.now()
        )
        broadcast.refresh_from_db()
    return broadcast


def broadcasts_cancel_by_key(cancellation_key: str) -> list[Broadcast]:
    """Cancel every broadcast with this key that has not started; returns them."""
    if not cancellation_key:
        raise BatchError(INVALID_ARGUMENT, "a cancellation key is required", "cancellation_key")
    with transaction.atomic():
        rows = list(
            Broadcast.objects.select_for_update()
            .filter(cancellation_key=cancellation_key, status=BroadcastStatus.SCHEDULED)
            .order_by("pk")
        )
        now = timezone.now()
        for row in rows:
            row.status = BroadcastStatus.CANCELLED
            row.cancelled_at = now
            row.save(update_fields=["status", "cancelled_at", "updated_at"])
    return rows
