"""Planning a batch: resolve what the job works through (also what ``--dry-run`` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from invitations.services import invitations_due_for_reminder
from templates.services import template_type_of
from users.models import User

from .. import cleanup
from ..audience import audience_parse, audience_queryset, audience_resolve
from ..models import BatchJobType
from .spec import CLEANUP_STEPS, BatchSpec

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
        user = User.objects.create_user(email=email, display_name="notifyplatform", is_active=False)
    return user


def _inviter_id_for_plan(spec: BatchSpec) -> str | None:
    if spec.inviter_id:
        return spec.inviter_id
    email = getattr(settings, "NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")
    found = User.objects.filter(email=email).values_list("pk", flat=True).first()
    return str(found) if found else None


def _cleanup_candidates(spec: BatchSpec) -> dict[str, int]:
    return cleanup.counts(older_than_days=spec.older_than_days)


def batch_plan(spec: BatchSpec, *, sample_size: int = 5) -> BatchPlan:
    """Resolve what the job will work through; raises ``BatchError(EMPTY_AUDIENCE)`` for an
    invitation batch nobody would receive."""
    if spec.job_type in (BatchJobType.INVITATION_BATCH, BatchJobType.BROADCAST):
        audience = audience_parse(spec.audience)
        exclude: str | None
        type_name: str | None
        if spec.job_type == BatchJobType.BROADCAST:
            # a workflow's steps decide what is sent: no template type to filter opt-outs by
            type_name = template_type_of(spec.template_key) if spec.template_key else None
            exclude = None
        else:
            exclude, type_name = _inviter_id_for_plan(spec), spec.invitation_type
        ids = audience_resolve(audience, invitation_type=type_name, exclude_user_id=exclude)
        sample = list(
            audience_queryset(
                audience, invitation_type=type_name, exclude_user_id=exclude
            ).values_list("email", flat=True)[:sample_size]
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
        due = invitations_due_for_reminder()
        if spec.invitation_type:
            due = due.filter(invitation_type=spec.invitation_type)
        invitation_ids = list(due.order_by("pk").values_list("pk", flat=True))
        sample = [f"invitation {pk}" for pk in invitation_ids[:sample_size]]
        return BatchPlan(invitation_ids, sample)
    counts = _cleanup_candidates(spec)
    return BatchPlan(
        list(CLEANUP_STEPS),
        [f"{step}: {counts[step]}" for step in CLEANUP_STEPS],
        step_counts=counts,
    )
