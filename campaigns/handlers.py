"""The work of one chunk, per job type (invitations, reminders, broadcasts). Called inside the chunk's transaction by
``services.runner.batch_chunk_run``; returns a ``ChunkOutcome`` (what to count)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone

from deliveries import workflows
from deliveries.errors import NotifyError
from deliveries.models import DeliveryStatus
from deliveries.services import notify_many
from invitations.errors import InvitationError
from invitations.models import (
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryInvitation,
)
from invitations.services import invitation_remind, invitations_create_bulk, invitations_send_bulk
from users.models import User

from .errors import NOT_SENT
from .models import BatchChunk, NotificationBatchJob
from .outcome import ChunkOutcome

# A recipient counts as successful when at least one of its deliveries is on its way
# (pending now or later — quiet hours defer, they do not refuse).
_ON_ITS_WAY = {
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
}


def _skip_code(deliveries: list[Any]) -> tuple[str, str]:
    """Why no delivery of a notification goes out: the first skip rule, as an error code
    (``SKIPPED_OPT_OUT``, ``SKIPPED_NO_ADDRESS``, ``SKIPPED_FREQUENCY_CAP`` …)."""
    for delivery in deliveries:
        decision = (delivery.delivery_metadata or {}).get("decision") or {}
        rule = decision.get("rule") if isinstance(decision, dict) else None
        if rule:
            reason = decision.get("reason") or rule.replace("_", " ")
            return f"SKIPPED_{str(rule).upper()}"[:50], f"{delivery.delivery_type}: {reason}"
    return NOT_SENT, "no delivery was queued"


def _count_results(outcome: ChunkOutcome, results: list[Any]) -> None:
    for result in results:
        deliveries = list(result.deliveries)
        if any(d.status in _ON_ITS_WAY for d in deliveries):
            outcome.succeed()
        else:
            outcome.fail(*_skip_code(deliveries))


def _content(config: dict[str, Any]) -> dict[str, Any]:
    def get(model: Any, key: str) -> Any:
        pk = config.get(key)
        return model.objects.filter(pk=pk).first() if pk is not None else None

    return {
        "article": get(NewsArticle, "article_id"),
        "narration": get(NewsNarration, "narration_id"),
        "story": get(Story, "story_id"),
        "roleplay_template": get(RoleplayTemplate, "roleplay_template_id"),
        "role": get(RoleplayCharacterRole, "role_id"),
    }


def invitation_chunk(job: NotificationBatchJob, chunk: BatchChunk) -> ChunkOutcome:
    """One bulk insert of invitations (+ their history), one ``notify_many`` for the
    notifications and deliveries, idempotency keys ``batch:<job>:<user id>``."""
    outcome = ChunkOutcome()
    config = job.job_config or {}
    ids = [str(pk) for pk in chunk.item_ids]
    users = {str(u.pk): u for u in User.objects.filter(pk__in=ids, is_active=True)}
    # Invitations this job already made for these users: impossible while the ledger and
    # the work commit together, but a hand-repaired ledger must never invite anyone twice.
    already = {
        str(pk)
        for pk in StoryInvitation.objects.filter(
            batch_job=job, invitee_user_id__in=ids
        ).values_list("invitee_user_id", flat=True)
    }
    todo: list[User] = []
    for pk in ids:
        if pk in already:
            outcome.succeed()
        elif pk not in users:
            outcome.fail("USER_INACTIVE", "the user was deactivated or deleted after planning")
        else:
            todo.append(users[pk])
    if not todo:
        return outcome
    inviter = User.objects.get(pk=config["inviter_id"])
    try:
        with transaction.atomic():
            invitations = invitations_create_bulk(
                inviter=inviter,
                invitation_type=job.invitation_type or config["invitation_type"],
                invitees=todo,
                batch_job_id=job.pk,
                channels=config.get("channels"),
                message=config.get("message", ""),
                expires_in=timedelta(days=int(config.get("expires_in_days", 7))),
                **_content(config),
            )
            results = invitations_send_bulk(invitations, idempotency_prefix=f"batch:{job.pk}")
    except InvitationError as exc:
        # A problem with the batch itself (the article was deactivated, a template is gone):
        # every recipient of the chunk failed for that reason; nothing of it was written.
        outcome.fail(exc.code, exc.message, len(todo))
        return outcome
    _count_results(outcome, results)
    return outcome


def reminder_chunk(job: NotificationBatchJob, chunk: BatchChunk) -> ChunkOutcome:
    """``invitation_remind`` per due invitation: it claims the reminder slot with a conditional
    UPDATE, so an invitation reminded meanwhile (another batch, the beat) is not reminded
    twice; those count as failed with ``NO_LONGER_DUE``."""
    outcome = ChunkOutcome()
    invitations = {
        inv.pk: inv
        for inv in StoryInvitation.objects.filter(pk__in=chunk.item_ids).select_related(
            "invitee_user", "inviter"
        )
    }
    for pk in chunk.item_ids:
        invitation = invitations.get(pk)
        if invitation is None:
            outcome.fail("INVITATION_NOT_FOUND", "the invitation was deleted after planning")
            continue
        try:
            with transaction.atomic():
                reminded = invitation_remind(invitation=invitation)
        except InvitationError as exc:
            outcome.fail(exc.code, exc.message)
            continue
        if reminded:
            outcome.succeed()
        else:
            outcome.fail("NO_LONGER_DUE", "viewed, answered, expired or reminded meanwhile")
    return outcome


def _local_due(local_send_at: str | None, tz_name: str, now: datetime) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` in the user's timezone, as an aware time; None when it has
    passed already (sent now) or when the broadcast has no local time."""
    if not local_send_at:
        return None
    try:
        zone = ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    due = datetime.fromisoformat(local_send_at).replace(tzinfo=zone)
    return due if due > now else None


def _workflow_group(
    outcome: ChunkOutcome,
    job: NotificationBatchJob,
    config: dict[str, Any],
    members: list[User],
    due: datetime | None,
) -> None:
    """Start the broadcast's workflow for these users (one bulk trigger) through the engine
    registered in deliveries (``deliveries.workflows``); idempotency keys
    ``batch:<job>:<user>``: a re-run chunk finds the runs it started and starts no more."""
    try:
        with transaction.atomic():
            workflows.trigger(
                config["workflow_key"],
                recipients=members,
                data=config.get("context") or {},
                send_at=due,
                idempotency_key=f"batch:{job.pk}",
            )
    except NotifyError as exc:
        # the broadcast itself is wrong now (its workflow was deactivated): all of the group
        outcome.fail(exc.code, exc.message, len(members))
        return
    outcome.succeed(len(members))


def broadcast_chunk(job: NotificationBatchJob, chunk: BatchChunk) -> ChunkOutcome:
    """A workflow broadcast starts its workflow per user (``_workflow_group``); else one
    template to the chunk's users through ``notify_many`` (COPY fan-out), one call
    per due time (a local send time gives each timezone its own), idempotency keys
    ``batch:<job>:<user id>``: a re-run chunk writes nobody twice."""
    outcome = ChunkOutcome()
    config = job.job_config or {}
    ids = [str(pk) for pk in chunk.item_ids]
    users = {str(u.pk): u for u in User.objects.filter(pk__in=ids, is_active=True)}
    now = timezone.now()
    groups: dict[datetime | None, list[User]] = {}
    for pk in ids:
        user = users.get(pk)
        if user is None:
            outcome.fail("USER_INACTIVE", "the user was deactivated or deleted after planning")
            continue
        groups.setdefault(_local_due(config.get("local_send_at"), user.timezone, now), []).append(
            user
        )
    for due, members in groups.items():
        if config.get("workflow_key"):
            _workflow_group(outcome, job, config, members, due)
            continue
        try:
            with transaction.atomic():
                results = notify_many(
                    members,
                    idempotency_prefix=f"batch:{job.pk}",
                    template_key=config["template_key"],
                    channels=config.get("channels"),
                    context=config.get("context") or {},
                    scheduled_at=due,
                    metadata={"batch_job_id": job.pk},
                )
        except NotifyError as exc:
            # a problem with the broadcast itself (its template was deleted): every recipient
            # of the group failed for that reason; nothing of it was written
            outcome.fail(exc.code, exc.message, len(members))
            continue
        _count_results(outcome, results)
    return outcome
