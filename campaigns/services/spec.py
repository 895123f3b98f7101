"""Validating a batch request (shared by ``run_batch``, the admin form and the API) into
a ``BatchSpec``; bad input is one ``BatchError`` with its field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from invitations.errors import InvitationError
from invitations.models import (
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
)
from invitations.services import invitation_content_check
from notifyplatform.choices import Channel, InvitationType
from templates.catalog import default_channels
from templates.services import (
    TemplateNotFoundError,
    template_type_exists,
    template_type_of,
    templates_for_channels,
)
from users.models import User

from ..audience import audience_parse
from ..errors import (
    CONTENT_NOT_FOUND,
    INVALID_ARGUMENT,
    INVALID_INVITATION_TYPE,
    INVITER_NOT_FOUND,
    TEMPLATE_NOT_FOUND,
    UNKNOWN_JOB_TYPE,
    WORKFLOW_NOT_FOUND,
    BatchError,
)
from ..models import BatchJobType, Workflow

DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 5000
CLEANUP_STEPS = (
    "expire_invitations",
    "expire_deliveries",
    "expire_notifications",
    "purge_events",
    "prune_connections",
)


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
    template_key: str | None = None  # broadcast: the template (a type or an exact row key)
    context: dict[str, Any] | None = None  # broadcast: the template's variables
    local_send_at: str | None = None  # broadcast: "YYYY-MM-DDTHH:MM" in each user's timezone
    workflow_key: str | None = None  # broadcast: a workflow started per recipient instead

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
    template: str | None = None,
    context: Any = None,
    workflow: str | None = None,
) -> BatchSpec:
    """Check a batch request; raises ``BatchError`` (nothing written). The audience is only
    parsed here (a CSV file is read); ``batch_plan`` resolves it."""
    if job_type not in BatchJobType.values:
        raise BatchError(
            UNKNOWN_JOB_TYPE,
            f"unknown job type {job_type!r}; expected one of {', '.join(BatchJobType.values)}",
            "job_type",
        )
    size = (
        DEFAULT_CHUNK_SIZE
        if chunk_size in (None, "")
        else _int_arg(chunk_size, "chunk_size", maximum=MAX_CHUNK_SIZE)
    )
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
    spec = BatchSpec(job_type=job_type, name="", chunk_size=size)
    if job_type == BatchJobType.INVITATION_BATCH:
        _validate_invitation(
            spec,
            invitation_type=invitation_type,
            article=article,
            narration=narration,
            story=story,
            roleplay_template=roleplay_template,
            role=role,
            audience=audience,
            channels=channels,
            inviter=inviter,
            message=message,
            expires_in_days=expires_in_days,
        )
        spec.name = name or f"{invitation_type} to {spec.audience} ({stamp})"
    elif job_type == BatchJobType.BROADCAST:
        if workflow not in (None, ""):
            _validate_workflow_broadcast(
                spec, workflow=workflow, template=template, context=context, channels=channels
            )
        else:
            _validate_broadcast(spec, template=template, context=context, channels=channels)
        spec.audience = audience_parse(audience).describe()
        what = spec.template_key or f"workflow {spec.workflow_key}"
        spec.name = name or f"{what} to {spec.audience} ({stamp})"
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
        "roleplay_template": _load(
            RoleplayTemplate, spec.roleplay_template_id, "roleplay_template"
        ),
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
            inviter=found or _platform_inviter_or_standin(),
            invitation_type=invitation_type,
            channels=spec.channels,
            **content,
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


def _context_object(context: Any) -> dict[str, Any] | None:
    if isinstance(context, str):
        try:
            context = json.loads(context) if context.strip() else {}
        except ValueError as exc:
            raise BatchError(INVALID_ARGUMENT, f"not valid JSON: {exc}", "context") from None
    if context is not None and not isinstance(context, dict):
        raise BatchError(INVALID_ARGUMENT, "must be a JSON object", "context")
    return context or None


def _validate_workflow_broadcast(
    spec: BatchSpec, *, workflow: Any, template: Any, context: Any, channels: Any
) -> None:
    """An active workflow with steps; its steps choose templates and channels, so neither
    is given; ``context`` is each run's trigger data."""
    key = str(workflow).strip()
    if template not in (None, ""):
        raise BatchError(INVALID_ARGUMENT, "give a template or a workflow, not both", "workflow")
    if channels not in (None, "", []):
        raise BatchError(INVALID_ARGUMENT, "a workflow's steps choose the channels", "channels")
    found = Workflow.objects.filter(key=key).first()
    if found is None:
        raise BatchError(WORKFLOW_NOT_FOUND, f"unknown workflow {key!r}", "workflow")
    if not found.is_active or not found.versions.exists():
        raise BatchError(INVALID_ARGUMENT, f"workflow {key!r} is not active", "workflow")
    spec.workflow_key = key
    spec.context = _context_object(context)


def _validate_broadcast(spec: BatchSpec, *, template: Any, context: Any, channels: Any) -> None:
    """A template that exists on every channel asked for (or its type's default channels),
    and a JSON object of variables."""
    key = str(template or "").strip()
    if not key:
        raise BatchError(INVALID_ARGUMENT, "a template is required (--template)", "template")
    if not template_type_exists(template_type_of(key)):
        raise BatchError(TEMPLATE_NOT_FOUND, f"unknown template {key!r}", "template")
    spec.template_key = key
    spec.channels = _channels(channels)
    spec.context = _context_object(context)
    wanted = spec.channels or list(default_channels(template_type_of(key)))
    try:
        templates_for_channels(key, wanted, None)
    except TemplateNotFoundError as exc:
        raise BatchError(TEMPLATE_NOT_FOUND, exc.message, "channels" if spec.channels else "template") from exc


def _platform_inviter_or_standin() -> User:
    """The platform's sender account if it exists, else an unsaved stand-in (validation
    writes nothing); either owns no content."""
    email = getattr(settings, "NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")
    return User.objects.filter(email=email).first() or User(email=email)
