"""The invitee's actions by token: view, accept, decline (and expiry seen on the way)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import errors
from ..errors import InvitationError
from ..models import (
    InvitationAction,
    InvitationStatus,
    RoleplayCharacterRole,
    StoryInvitation,
)
from ..ownership import invitation_permitted
from .base import OPEN_STATUSES, RequestMeta, _history
from .create import role_is_taken
from .inviter import inviter_notify


def is_answerable(invitation: StoryInvitation, now: datetime | None = None) -> bool:
    return _answer_problem(invitation, now or timezone.now()) is None


def _is_expired(invitation: StoryInvitation, now: datetime) -> bool:
    return invitation.status == InvitationStatus.EXPIRED or invitation.expires_at <= now


def _answer_problem(invitation: StoryInvitation, now: datetime) -> InvitationError | None:
    if invitation.status in (InvitationStatus.ACCEPTED, InvitationStatus.DECLINED):
        return InvitationError(
            errors.INVITATION_ALREADY_ANSWERED,
            f"this invitation was already {invitation.status}",
            status=409,
        )
    if invitation.status == InvitationStatus.CANCELLED:
        return InvitationError(
            errors.INVITATION_CANCELLED, "this invitation was cancelled", status=409
        )
    if _is_expired(invitation, now):
        return InvitationError(errors.INVITATION_EXPIRED, "this invitation has expired", status=410)
    return None


def _mark_viewed(
    invitation: StoryInvitation, meta: RequestMeta | None, now: datetime, *, implicit: bool
) -> bool:
    """Record the first view only (a conditional UPDATE claims it)."""
    claimed = StoryInvitation.objects.filter(pk=invitation.pk, viewed_at__isnull=True).update(
        viewed_at=now, updated_at=now
    )
    if not claimed:
        return False
    StoryInvitation.objects.filter(
        pk=invitation.pk, status__in=[InvitationStatus.PENDING, InvitationStatus.SENT]
    ).update(status=InvitationStatus.VIEWED)
    invitation.refresh_from_db(fields=["viewed_at", "status"])
    _history(
        invitation,
        InvitationAction.VIEWED,
        user=invitation.invitee_user,
        meta=meta,
        at=now,
        interaction_metadata={"implicit": True} if implicit else None,
    )
    return True


@transaction.atomic
def invitation_view(*, invitation: StoryInvitation, meta: RequestMeta | None = None) -> bool:
    """The invitee opened the invitation page: ``viewed`` once per invitation.
    True if this was the first view."""
    return _mark_viewed(invitation, meta, timezone.now(), implicit=False)


def _mark_expired(invitation: StoryInvitation, meta: RequestMeta | None, now: datetime) -> None:
    with transaction.atomic():
        changed = StoryInvitation.objects.filter(pk=invitation.pk, status__in=OPEN_STATUSES).update(
            status=InvitationStatus.EXPIRED, updated_at=now
        )
        if changed:
            invitation.status = InvitationStatus.EXPIRED
            _history(
                invitation,
                InvitationAction.EXPIRED,
                user=invitation.invitee_user,
                meta=meta,
                at=now,
            )
            inviter_notify(invitation, InvitationStatus.EXPIRED)


def _answer(
    *,
    invitation: StoryInvitation,
    action: str,
    meta: RequestMeta | None,
    response_data: dict[str, Any] | None,
) -> StoryInvitation:
    now = timezone.now()
    with transaction.atomic():
        locked = StoryInvitation.objects.select_for_update().get(pk=invitation.pk)
        problem = _answer_problem(locked, now)
        if problem is None and action == InvitationAction.ACCEPTED:
            problem = _permission_problem(locked)
        if problem is None and action == InvitationAction.ACCEPTED:
            problem = _claim_role(locked)
        if problem is None:
            _mark_viewed(locked, meta, now, implicit=True)
            status = (
                InvitationStatus.ACCEPTED
                if action == InvitationAction.ACCEPTED
                else InvitationStatus.DECLINED
            )
            locked.status = status
            locked.responded_at = now
            try:
                with transaction.atomic():
                    locked.save(update_fields=["status", "responded_at", "updated_at"])
            except IntegrityError:
                # The partial unique index on accepted roles: a concurrent accept won.
                problem = _role_taken_error(locked)
            else:
                _history(
                    locked,
                    action,
                    user=locked.invitee_user,
                    meta=meta,
                    at=now,
                    response_data=response_data,
                )
                inviter_notify(locked, status)
                return locked
    # Outside the transaction: an expiry is recorded even though the answer is refused.
    if problem.code == errors.INVITATION_EXPIRED:
        _mark_expired(invitation, meta, now)
    raise problem


def _permission_problem(invitation: StoryInvitation) -> InvitationError | None:
    if invitation_permitted(invitation):
        return None
    return InvitationError(
        errors.INVITATION_NOT_PERMITTED,
        "this invitation was not made by someone who may invite to its content",
        status=403,
    )


def invitation_check_permitted(invitation: StoryInvitation) -> None:
    """Raise ``INVITATION_NOT_PERMITTED`` (403) for an invitation its inviter had (or has
    since lost) no right to make: a role offered by someone other than the roleplay's owner,
    a private story of someone else. Its token then shows nothing of the content."""
    problem = _permission_problem(invitation)
    if problem is not None:
        raise problem


def _role_taken_error(invitation: StoryInvitation) -> InvitationError:
    role = invitation.roleplay_character_role
    name = role.role_name if role else "role"
    return InvitationError(
        errors.ROLE_TAKEN, f"the role {name!r} has already been taken", field="role", status=409
    )


def _claim_role(invitation: StoryInvitation) -> InvitationError | None:
    if invitation.roleplay_character_role_id is None:
        return None
    # Lock the role so two invitees accepting the same role queue up here.
    role = RoleplayCharacterRole.objects.select_for_update().get(
        pk=invitation.roleplay_character_role_id
    )
    if role_is_taken(role, exclude=invitation):
        return _role_taken_error(invitation)
    return None


def invitation_accept(
    *,
    invitation: StoryInvitation,
    meta: RequestMeta | None = None,
    response_data: dict[str, Any] | None = None,
) -> StoryInvitation:
    """Accept by token: 410 when expired, 409 when answered, cancelled or the role is taken."""
    return _answer(
        invitation=invitation,
        action=InvitationAction.ACCEPTED,
        meta=meta,
        response_data=response_data,
    )


def invitation_decline(
    *,
    invitation: StoryInvitation,
    meta: RequestMeta | None = None,
    response_data: dict[str, Any] | None = None,
) -> StoryInvitation:
    return _answer(
        invitation=invitation,
        action=InvitationAction.DECLINED,
        meta=meta,
        response_data=response_data,
    )
