"""Batch jobs: validate → plan (resolve the audience) → create the job and its chunk ledger →
chunks run on Celery workers → the last chunk completes the job. Cancel, resume.

Guarantees, and how:

* **Counters stay true.** A chunk's work (invitations, notifications, deliveries), its
  ``done`` mark in the ledger and the job's counter increments (``F()`` expressions) commit
  in ONE transaction: the counters can never count work that is not there, or miss work
  that is.
* **Nobody is notified twice by a job.** A chunk is claimed with ``SELECT … FOR UPDATE SKIP
  LOCKED`` and skipped once ``done``, so a redelivered or re-enqueued chunk does nothing; a
  chunk whose worker died mid-way rolled back entirely and simply runs again. Underneath,
  every notification carries the per-job idempotency key ``batch:<job>:<recipient>``.
* **Cancel stops within a chunk.** Each chunk holds ``FOR KEY SHARE`` on the job row for
  its whole transaction and checks the status under it; cancel takes ``FOR UPDATE``, which
  waits for the chunks in flight (≈ one chunk's duration) and blocks new ones, so after
  ``batch_cancel`` returns no chunk of the job can write anything.
* **Resumable.** ``batch_resume`` (and the beat task for stalled jobs) re-enqueues the
  chunks not yet ``done``; the Redis transport's own redelivery of a dead worker's message is
  harmless too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from notifyplatform.choices import Channel, InvitationType
from templates.services import TemplateNotFoundError, templates_for_channels
from users.models import User

from .audience import audience_parse, audience_queryset, audience_resolve
from .errors import (
    CHUNK_FAILED,
    CONTENT_NOT_FOUND,
    EMPTY_AUDIENCE,
    INVALID_ARGUMENT,
    INVALID_INVITATION_TYPE,
    INVALID_STATE,
    INVITER_NOT_FOUND,
    JOB_NOT_FOUND,
    TEMPLATE_NOT_FOUND,
    UNKNOWN_JOB_TYPE,
    BatchError,
)
from .models import BatchChunk, BatchJobStatus, BatchJobType, ChunkStatus, NotificationBatchJob

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 5000
CLEANUP_STEPS = (
    "expire_invitations",
    "expire_deliveries",
    "expire_notifications",
    "purge_events",
    "prune_connections",
)
FINISHED = (BatchJobStatus.COMPLETED, BatchJobStatus.FAILED, BatchJobStatus.CANCELLED)


def _max_chunk_attempts() -> int:
    return int(getattr(settings, "NP_BATCH_CHUNK_MAX_ATTEMPTS", 3))


# --------------------------------------------------------------------------------------------
# Validation (shared by the command, the admin form and the API)
# --------------------------------------------------------------------------------------------


@dataclass
class BatchSpec:
    """A validated batch request; ``config()`` is what ``job_config`` records."""

    job_type: str
    name: str
    invitation_type: str | None = None
    article_id: int | None = None
    narration_id: int | None = None
    story_id: int | None = None
    roleplay_template_id: int | None = None
    role_id: int | None = None
    audience: str | None = None
    channels: list[str] | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    inviter_id: str | None = None
    message: str = ""
    expires_in_days: int = 7
    older_than_days: int = 30

    def config(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _int_arg(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BatchError(INVALID_ARGUMENT, f"must be a whole number, got {value!r}", name) from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise BatchError(INVALID_ARGUMENT, f"must be {bound}, got {number}", name)
    return number


def _optional_id(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    return _int_arg(value, name)


def _load(model: Any, pk: int | None, name: str) -> Any:
    if pk is None:
        return None
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise BatchError(CONTENT_NOT_FOUND, f"no {name.replace('_', ' ')} with id {pk}", name)
    return obj


def _channels(channels: Any) -> list[str] | None:
    if channels in (None, "", []):
        return None
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    result: list[str] = []
    for channel in channels:
        if channel not in Channel.values or channel == Channel.WEBHOOK:
            allowed = ", ".join(c for c in Channel.values if c != Channel.WEBHOOK)
            raise BatchError(
                "UNKNOWN_CHANNEL", f"unknown channel {channel!r}; expected {allowed}", "channels"
            )
        if channel not in result:
            result.append(channel)
    return result


def _find_user(value: str) -> User | None:
    if "@" in value:
        return User.objects.filter(email__iexact=value).first()
    try:
        return User.objects.filter(pk=value).first()
    except Exception:  # noqa: BLE001 - not a UUID
        return None


def batch_validate(
    job_type: str,
    *,
    invitation_type: str | None = None,
    article: Any = None,
    narration: Any = None,
    story: Any = None,
    roleplay_template: Any = None,
    role: Any = None,
    audience: str | None = None,
    channels: Any = None,
    name: str | None = None,
    chunk_size: Any = None,
    inviter: Any = None,
    message: str = "",
    expires_in_days: Any = 7,
    older_than_days: Any = 30,
) -> BatchSpec:
    """Check a batch request; raises ``BatchError`` (nothing written). The audience is only
    parsed here (a CSV file is read); ``batch_plan`` resolves it."""
    if job_type not in BatchJobType.values:
        raise BatchError(
            UNKNOWN_JOB_TYPE,
            f"unknown job type {job_type!r}; expected one of {', '.join(BatchJobType.values)}",
            "job_type",
        )
    size = DEFAULT_CHUNK_SIZE if chunk_size in (None, "") else _int_arg(
        chunk_size, "chunk_size", maximum=MAX_CHUNK_SIZE
    )
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
    spec = BatchSpec(job_type=job_type, name="", chunk_size=size)
    if job_type == BatchJobType.INVITATION_BATCH:
        _validate_invitation(
            spec, invitation_type=invitation_type, article=article, narration=narration,
            story=story, roleplay_template=roleplay_template, role=role, audience=audience,
            channels=channels, inviter=inviter, message=message, expires_in_days=expires_in_days,
        )
        spec.name = name or f"{invitation_type} to {spec.audience} ({stamp})"
    elif job_type == BatchJobType.REMINDER_BATCH:
        if invitation_type and invitation_type not in InvitationType.values:
            raise BatchError(
                INVALID_INVITATION_TYPE,
                f"unknown invitation type {invitation_type!r}; expected one of "
                f"{', '.join(InvitationType.values)}",
                "invitation_type",
            )
        spec.invitation_type = invitation_type or None
        spec.name = name or f"reminders ({stamp})"
    else:
        spec.older_than_days = _int_arg(older_than_days, "older_than", minimum=0)
        spec.name = name or f"cleanup ({stamp})"
    spec.name = spec.name[:255]
    return spec


def _validate_invitation(spec: BatchSpec, **raw: Any) -> None:
    from invitations.errors import InvitationError
    from invitations.models import (
        NewsArticle,
        NewsNarration,
        RoleplayCharacterRole,
        RoleplayTemplate,
        Story,
    )
    from invitations.services import invitation_content_check

    invitation_type = raw["invitation_type"]
    if not invitation_type:
        raise BatchError(
            INVALID_INVITATION_TYPE,
            f"--invitation-type is required; one of {', '.join(InvitationType.values)}",
            "invitation_type",
        )
    if invitation_type not in InvitationType.values:
        raise BatchError(
            INVALID_INVITATION_TYPE,
            f"unknown invitation type {invitation_type!r}; expected one of "
            f"{', '.join(InvitationType.values)}",
            "invitation_type",
        )
    spec.invitation_type = invitation_type
    spec.article_id = _optional_id(raw["article"], "article")
    spec.narration_id = _optional_id(raw["narration"], "narration")
    spec.story_id = _optional_id(raw["story"], "story")
    spec.roleplay_template_id = _optional_id(raw["roleplay_template"], "roleplay_template")
    spec.role_id = _optional_id(raw["role"], "role")
    content = {
        "article": _load(NewsArticle, spec.article_id, "article"),
        "narration": _load(NewsNarration, spec.narration_id, "narration"),
        "story": _load(Story, spec.story_id, "story"),
        "roleplay_template": _load(RoleplayTemplate, spec.roleplay_template_id,
                                   "roleplay_template"),
        "role": _load(RoleplayCharacterRole, spec.role_id, "role"),
    }
    spec.channels = _channels(raw["channels"])
    inviter = raw["inviter"]
    found: User | None = None
    if inviter not in (None, ""):
        found = inviter if isinstance(inviter, User) else _find_user(str(inviter))
        if found is None:
            raise BatchError(INVITER_NOT_FOUND, f"no user {inviter!r}", "inviter")
        spec.inviter_id = str(found.pk)
    try:
        # The content must be the inviter's to invite to (invitations.ownership); without
        # an inviter the platform's sender account invites, and it owns nothing, so only
        # public content goes out under its name.
        spec.channels = invitation_content_check(
            inviter=found or _platform_inviter_or_standin(), invitation_type=invitation_type,
            channels=spec.channels, **content,
        )
    except InvitationError as exc:
        raise BatchError(exc.code, exc.message, exc.field) from exc
    # every chunk would fail on a missing template: refuse the job (and the dry run) instead
    try:
        templates_for_channels(invitation_type, spec.channels or [], None)
    except TemplateNotFoundError as exc:
        raise BatchError(TEMPLATE_NOT_FOUND, exc.message, "channels") from exc
    spec.audience = audience_parse(raw["audience"]).describe()
    spec.message = raw["message"] or ""
    spec.expires_in_days = _int_arg(raw["expires_in_days"], "expires_in_days", maximum=365)


# --------------------------------------------------------------------------------------------
# Planning: resolve the audience (also what --dry-run prints)
# --------------------------------------------------------------------------------------------


@dataclass
class BatchPlan:
    item_ids: list[Any]
    sample: list[str]
    notes: dict[str, Any] = field(default_factory=dict)
    step_counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        if self.step_counts:
            return sum(self.step_counts.values())
        return len(self.item_ids)


def batch_inviter(spec: BatchSpec) -> User:
    """The inviter of an invitation batch: the one given, else the platform's own
    (inactive) sender account ``NP_BATCH_INVITER_EMAIL``."""
    if spec.inviter_id:
        return User.objects.get(pk=spec.inviter_id)
    email = getattr(settings, "NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, display_name="notifyplatform",
                                        is_active=False)
    return user


def _platform_inviter_or_standin() -> User:
    """The platform's sender account if it exists, else an unsaved stand-in (validation
    writes nothing); either owns no content."""
    email = getattr(settings, "NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")
    return User.objects.filter(email=email).first() or User(email=email)


def _inviter_id_for_plan(spec: BatchSpec) -> str | None:
    if spec.inviter_id:
        return spec.inviter_id
    email = getattr(settings, "NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")
    found = User.objects.filter(email=email).values_list("pk", flat=True).first()
    return str(found) if found else None


def _cleanup_candidates(spec: BatchSpec) -> dict[str, int]:
    from . import cleanup

    return cleanup.counts(older_than_days=spec.older_than_days)


def batch_plan(spec: BatchSpec, *, sample_size: int = 5) -> BatchPlan:
    """Resolve what the job will work through; raises ``BatchError(EMPTY_AUDIENCE)`` for an
    invitation batch nobody would receive."""
    if spec.job_type == BatchJobType.INVITATION_BATCH:
        audience = audience_parse(spec.audience)
        exclude = _inviter_id_for_plan(spec)
        ids = audience_resolve(
            audience, invitation_type=spec.invitation_type, exclude_user_id=exclude
        )
        sample = list(
            audience_queryset(audience, invitation_type=spec.invitation_type,
                              exclude_user_id=exclude)
            .values_list("email", flat=True)[:sample_size]
        )
        notes: dict[str, Any] = {}
        if audience.kind == "csv":
            notes = {
                "csv_entries": len(audience.emails) + len(audience.user_ids),
                "csv_invalid": len(audience.invalid),
                "csv_unmatched": len(audience.emails) + len(audience.user_ids) - len(ids),
            }
        return BatchPlan(ids, sample, notes)
    if spec.job_type == BatchJobType.REMINDER_BATCH:
        from invitations.services import invitations_due_for_reminder

        due = invitations_due_for_reminder()
        if spec.invitation_type:
            due = due.filter(invitation_type=spec.invitation_type)
        ids = list(due.order_by("pk").values_list("pk", flat=True))
        sample = [f"invitation {pk}" for pk in ids[:sample_size]]
        return BatchPlan(ids, sample)
    counts = _cleanup_candidates(spec)
    return BatchPlan(
        list(CLEANUP_STEPS), [f"{step}: {counts[step]}" for step in CLEANUP_STEPS],
        step_counts=counts,
    )


# --------------------------------------------------------------------------------------------
# Create, start, cancel, resume
# --------------------------------------------------------------------------------------------


def batch_create(
    spec: BatchSpec, *, plan: BatchPlan | None = None, start: bool = True
) -> NotificationBatchJob:
    """Write the job (``pending``) and its chunk ledger in one transaction, then start it
    (``running``, chunks enqueued on commit) unless ``start=False``."""
    plan = plan or batch_plan(spec)
    if spec.job_type == BatchJobType.INVITATION_BATCH and not plan.item_ids:
        raise BatchError(EMPTY_AUDIENCE, "the audience matches no active user", "audience")
    config = {**spec.config(), **({"plan": plan.notes} if plan.notes else {})}
    with transaction.atomic():
        if spec.job_type == BatchJobType.INVITATION_BATCH and not spec.inviter_id:
            config["inviter_id"] = spec.inviter_id = str(batch_inviter(spec).pk)
        job = NotificationBatchJob.objects.create(
            job_name=spec.name,
            job_type=spec.job_type,
            invitation_type=spec.invitation_type,
            status=BatchJobStatus.PENDING,
            total_notifications=plan.total,
            job_config=config,
        )
        if spec.job_type == BatchJobType.CLEANUP_BATCH:
            # one chunk per step; a step's planned count is recorded so the total can be
            # corrected to what the step actually did
            chunks = [
                BatchChunk(job=job, index=i, item_ids=[step, plan.step_counts.get(step, 0)])
                for i, step in enumerate(plan.item_ids)
            ]
        else:
            size = spec.chunk_size
            chunks = [
                BatchChunk(job=job, index=i, item_ids=plan.item_ids[start_at:start_at + size])
                for i, start_at in enumerate(range(0, len(plan.item_ids), size))
            ]
        BatchChunk.objects.bulk_create(chunks, batch_size=1000)
    if start:
        batch_start(job.pk)
        job.refresh_from_db()
    return job


def _enqueue_chunks(chunk_ids: list[int]) -> None:
    from .tasks import run_batch_chunk

    for chunk_id in chunk_ids:
        run_batch_chunk.delay(chunk_id)


def batch_start(job_id: int, *, enqueue: bool = True) -> NotificationBatchJob:
    """pending → running; enqueue the chunks after commit. A job with no chunk completes."""
    now = timezone.now()
    with transaction.atomic():
        job = NotificationBatchJob.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status != BatchJobStatus.PENDING:
            raise BatchError(INVALID_STATE, f"job {job_id} is {job.status}, not pending")
        job.status = BatchJobStatus.RUNNING
        job.started_at = now
        job.save(update_fields=["status", "started_at", "updated_at"])
        pending = _pending_chunk_ids(job_id)
        if enqueue and pending:
            transaction.on_commit(lambda: _enqueue_chunks(pending))
    if not pending:
        batch_finish_if_done(job_id)
    return job


def _pending_chunk_ids(job_id: int) -> list[int]:
    return list(
        BatchChunk.objects.filter(job_id=job_id, status=ChunkStatus.PENDING)
        .order_by("index")
        .values_list("pk", flat=True)
    )


def batch_get(job_id: Any) -> NotificationBatchJob:
    try:
        return NotificationBatchJob.objects.get(pk=int(job_id))
    except (ValueError, TypeError, NotificationBatchJob.DoesNotExist):
        raise BatchError(JOB_NOT_FOUND, f"no batch job with id {job_id}", "id") from None


def batch_cancel(job_id: Any) -> NotificationBatchJob:
    """Cancel a pending or running job. Returns once the chunks in flight have committed:
    from then on the job writes nothing more. Cancelling a cancelled job is a no-op."""
    job = batch_get(job_id)
    with transaction.atomic():
        # 1. flip the status (NO KEY UPDATE: it does not wait for the chunks' FOR KEY SHARE);
        #    every chunk that starts after this commit sees "cancelled" and does nothing
        job = NotificationBatchJob.objects.select_for_update(no_key=True).get(pk=job.pk)
        if job.status == BatchJobStatus.CANCELLED:
            return job
        if job.status in FINISHED:
            raise BatchError(INVALID_STATE, f"job {job.pk} already {job.status}", "id")
        job.status = BatchJobStatus.CANCELLED
        job.completed_at = timezone.now()
        job.save(update_fields=["status", "completed_at", "updated_at"])
    with transaction.atomic():
        # 2. FOR UPDATE conflicts with FOR KEY SHARE: this waits for the chunks that read
        #    "running" before step 1 to commit (about one chunk's duration)
        job = NotificationBatchJob.objects.select_for_update().get(pk=job.pk)
        job.error_summary = _error_summary_json(job.pk)
        job.save(update_fields=["error_summary", "updated_at"])
    return job


def batch_resume(job_id: Any, *, enqueue: bool = True) -> tuple[NotificationBatchJob, int]:
    """Re-enqueue the chunks of a job not yet done (after a crash, a cancel or a failure);
    the job is ``running`` again. Returns the job and how many chunks were enqueued."""
    job = batch_get(job_id)
    with transaction.atomic():
        job = NotificationBatchJob.objects.select_for_update().get(pk=job.pk)
        if job.status == BatchJobStatus.COMPLETED:
            raise BatchError(INVALID_STATE, f"job {job.pk} already completed", "id")
        pending = _pending_chunk_ids(job.pk)
        job.status = BatchJobStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.completed_at = None
        job.save(update_fields=["status", "started_at", "completed_at", "updated_at"])
        BatchChunk.objects.filter(pk__in=pending).update(attempts=0)
        if enqueue and pending:
            transaction.on_commit(lambda: _enqueue_chunks(pending))
    if not pending:
        batch_finish_if_done(job.pk)
    job.refresh_from_db()
    return job, len(pending)


def batches_resume_stalled(*, stalled_after: float | None = None) -> int:
    """Beat: re-enqueue the unfinished chunks of running jobs that made no progress for
    ``NP_BATCH_STALL_SECONDS`` (their workers died, or the broker lost the messages)."""
    seconds = stalled_after if stalled_after is not None else float(
        getattr(settings, "NP_BATCH_STALL_SECONDS", 300)
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stalled = NotificationBatchJob.objects.filter(
        status=BatchJobStatus.RUNNING, updated_at__lt=cutoff
    ).values_list("pk", flat=True)
    resumed = 0
    for job_id in stalled:
        pending = _pending_chunk_ids(job_id)
        if not pending:
            batch_finish_if_done(job_id)
            continue
        # touch it: the next beat waits another stall period before enqueueing again
        NotificationBatchJob.objects.filter(pk=job_id).update(updated_at=timezone.now())
        _enqueue_chunks(pending)
        logger.warning("batch job %s stalled; re-enqueued %d chunks", job_id, len(pending))
        resumed += 1
    return resumed


# --------------------------------------------------------------------------------------------
# Running a chunk
# --------------------------------------------------------------------------------------------


@dataclass
class ChunkOutcome:
    processed: int = 0
    successful: int = 0
    failed: int = 0
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    total_delta: int = 0  # cleanup: what a step actually did minus what was planned

    def fail(self, code: str, message: str, count: int = 1) -> None:
        self.processed += count
        self.failed += count
        entry = self.errors.setdefault(code, {"count": 0, "message": message})
        entry["count"] += count

    def succeed(self, count: int = 1) -> None:
        self.processed += count
        self.successful += count


def _job_status_key_share(job_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM notification_batch_jobs WHERE id = %s FOR KEY SHARE", [job_id]
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _handler(job_type: str) -> Callable[[NotificationBatchJob, BatchChunk], ChunkOutcome]:
    from . import cleanup, handlers

    return {
        BatchJobType.INVITATION_BATCH: handlers.invitation_chunk,
        BatchJobType.REMINDER_BATCH: handlers.reminder_chunk,
        BatchJobType.CLEANUP_BATCH: cleanup.cleanup_chunk,
    }[job_type]


def batch_chunk_run(chunk_id: int) -> str:
    """Run one chunk: claim it, check the job still runs, do the work, mark it done and
    count it — one transaction. Safe to call any number of times, concurrently."""
    try:
        with transaction.atomic():
            chunk = (
                BatchChunk.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=chunk_id)
                .order_by("pk")
                .first()
            )
            if chunk is None:
                return "locked"  # another worker has it
            if chunk.status == ChunkStatus.DONE:
                return "already_done"
            status = _job_status_key_share(chunk.job_id)
            if status != BatchJobStatus.RUNNING:
                return f"job_{status}"
            job = NotificationBatchJob.objects.get(pk=chunk.job_id)
            outcome = _handler(job.job_type)(job, chunk)
            _record(chunk, outcome)
            job_id = chunk.job_id
    except Exception as exc:  # noqa: BLE001 - a chunk must not die silently; see _chunk_error
        done = BatchChunk.objects.filter(pk=chunk_id, status=ChunkStatus.DONE).first()
        if done is None:
            logger.exception("batch chunk %s failed", chunk_id)
            return _chunk_error(chunk_id, exc)
        # The chunk committed; what failed was an after-commit hook (e.g. a broker publish:
        # its rows stay pending for the sweeper). The chunk's work stands.
        logger.exception("batch chunk %s: after-commit hook failed", chunk_id)
        job_id = done.job_id
    batch_finish_if_done(job_id)
    return "done"


def _record(chunk: BatchChunk, outcome: ChunkOutcome) -> None:
    now = timezone.now()
    chunk.status = ChunkStatus.DONE
    chunk.processed = outcome.processed
    chunk.successful = outcome.successful
    chunk.failed = outcome.failed
    chunk.error_counts = outcome.errors or None
    chunk.finished_at = now
    chunk.save(update_fields=["status", "processed", "successful", "failed", "error_counts",
                              "finished_at", "updated_at"])
    fields: dict[str, Any] = {
        "processed_notifications": F("processed_notifications") + outcome.processed,
        "successful_notifications": F("successful_notifications") + outcome.successful,
        "failed_notifications": F("failed_notifications") + outcome.failed,
        "updated_at": now,
    }
    if outcome.total_delta:
        fields["total_notifications"] = F("total_notifications") + outcome.total_delta
    if outcome.errors:
        fields["error_summary"] = _error_summary_json(chunk.job_id)
    NotificationBatchJob.objects.filter(pk=chunk.job_id).update(**fields)


def _chunk_error(chunk_id: int, exc: Exception) -> str:
    """An unexpected error (the chunk's work rolled back): retry the chunk a few times, then
    count all its items failed (``CHUNK_FAILED``) so the job can finish, as ``failed``."""
    message = f"{type(exc).__name__}: {exc}"[:1000]
    with transaction.atomic():
        chunk = (
            BatchChunk.objects.select_for_update(of=("self",))
            .filter(pk=chunk_id)
            .order_by("pk")
            .first()
        )
        if chunk is None or chunk.status == ChunkStatus.DONE:
            return "error"
        chunk.attempts += 1
        chunk.last_error = message
        chunk.save(update_fields=["attempts", "last_error", "updated_at"])
        attempts, job_id = chunk.attempts, chunk.job_id
        if attempts >= _max_chunk_attempts():
            outcome = ChunkOutcome()
            items = len(chunk.item_ids) if chunk.job.job_type != BatchJobType.CLEANUP_BATCH else 0
            outcome.fail(CHUNK_FAILED, message, items)
            if not items:
                outcome.errors[CHUNK_FAILED] = {"count": 1, "message": message}
            _record(chunk, outcome)
    if attempts >= _max_chunk_attempts():
        batch_finish_if_done(job_id)
        return "gave_up"
    from .tasks import run_batch_chunk

    run_batch_chunk.apply_async((chunk_id,), countdown=min(60, 2**attempts))
    return "retry"


def _error_summary(job_id: int) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for counts in BatchChunk.objects.filter(job_id=job_id, error_counts__isnull=False).values_list(
        "error_counts", flat=True
    ):
        for code, entry in (counts or {}).items():
            slot = merged.setdefault(code, {"count": 0, "message": entry.get("message", "")})
            slot["count"] += int(entry.get("count", 0))
    return dict(sorted(merged.items(), key=lambda item: -item[1]["count"]))


def _error_summary_json(job_id: int) -> str | None:
    summary = _error_summary(job_id)
    return json.dumps(summary) if summary else None


def batch_finish_if_done(job_id: int) -> bool:
    """running → completed (or failed when a chunk gave up) once every chunk is done; the
    counters are set to the sums of the ledger (they already are: this only makes it so by
    construction). True if this call finished the job."""
    with transaction.atomic():
        job = NotificationBatchJob.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status != BatchJobStatus.RUNNING:
            return False
        if BatchChunk.objects.filter(job_id=job_id, status=ChunkStatus.PENDING).exists():
            return False
        sums = BatchChunk.objects.filter(job_id=job_id).aggregate(
            processed=Sum("processed"), successful=Sum("successful"), failed=Sum("failed")
        )
        summary = _error_summary(job_id)
        job.processed_notifications = sums["processed"] or 0
        job.successful_notifications = sums["successful"] or 0
        job.failed_notifications = sums["failed"] or 0
        if job.job_type == BatchJobType.CLEANUP_BATCH:
            job.total_notifications = job.processed_notifications
        job.error_summary = json.dumps(summary) if summary else None
        job.status = BatchJobStatus.FAILED if CHUNK_FAILED in summary else BatchJobStatus.COMPLETED
        job.completed_at = timezone.now()
        job.save()
    return True


def batch_run_inline(job_id: int) -> None:
    """Run a started job's pending chunks in this process (``run_batch --inline``: no worker
    needed; still chunked, still resumable)."""
    for _ in range(_max_chunk_attempts()):
        pending = _pending_chunk_ids(job_id)
        if not pending:
            return
        for chunk_id in pending:
            if batch_chunk_run(chunk_id).startswith("job_"):
                return
