"""Roleplay templates and their character roles. A template is its creator's
(``ownership``: only they offer its roles); it has at most ``total_characters`` roles,
each with a name unique within it."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from users.models import User

from .. import errors
from ..errors import InvitationError
from ..models import RoleplayCharacterRole, RoleplayTemplate, Story, StoryCharacter
from ..ownership import content_authorize, roleplay_owner_id


def _role_fields(role: dict[str, Any]) -> dict[str, Any]:
    allowed = (
        "role_name", "role_description", "required_voice_emotions", "is_protagonist",
        "role_metadata", "character",
    )
    return {k: role[k] for k in allowed if k in role}


def _check_role(template: RoleplayTemplate, fields: dict[str, Any], names: set[str]) -> None:
    name = (fields.get("role_name") or "").strip()
    if not name:
        raise InvitationError("VALIDATION_ERROR", "a role needs a name", field="role_name")
    if name.lower() in names:
        raise InvitationError(
            "DUPLICATE_ROLE", f"this roleplay already has a role {name!r}", field="role_name"
        )
    character: StoryCharacter | None = fields.get("character")
    if character is not None and character.story_id != template.story_id:
        raise InvitationError(
            errors.CONTENT_MISMATCH,
            "the character is not of this roleplay's story",
            field="character",
        )
    names.add(name.lower())
    fields["role_name"] = name


@transaction.atomic
def roleplay_template_create(
    *,
    creator: User,
    template_name: str,
    total_characters: int,
    story: Story | None = None,
    roles: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> RoleplayTemplate:
    """A roleplay template with its roles (at most ``total_characters``)."""
    if story is not None:
        content_authorize(inviter=creator, story=story)
    roles = roles or []
    if total_characters < 1:
        raise InvitationError(
            "VALIDATION_ERROR", "total_characters must be at least 1", field="total_characters"
        )
    if len(roles) > total_characters:
        raise InvitationError(
            "TOO_MANY_ROLES",
            f"{len(roles)} roles for {total_characters} characters",
            field="roles",
        )
    template = RoleplayTemplate.objects.create(
        created_by=creator,
        story=story,
        template_name=template_name,
        total_characters=total_characters,
        **fields,
    )
    names: set[str] = set()
    for role in roles:
        role_fields = _role_fields(role)
        _check_role(template, role_fields, names)
        RoleplayCharacterRole.objects.create(roleplay_template=template, **role_fields)
    return template


@transaction.atomic
def roleplay_role_add(
    *, template: RoleplayTemplate, by: User, **role: Any
) -> RoleplayCharacterRole:
    """Add a role to a template: its owner only (403), within ``total_characters`` (400)."""
    locked = RoleplayTemplate.objects.select_for_update().get(pk=template.pk)
    if roleplay_owner_id(locked) != by.pk:
        raise InvitationError(
            errors.CONTENT_FORBIDDEN,
            "only the roleplay's owner may add roles",
            field="roleplay_template",
            status=403,
        )
    existing = list(locked.roles.values_list("role_name", flat=True))
    if len(existing) >= locked.total_characters:
        raise InvitationError(
            "TOO_MANY_ROLES",
            f"this roleplay has all its {locked.total_characters} roles",
            field="role_name",
        )
    fields = _role_fields(role)
    _check_role(locked, fields, {n.lower() for n in existing})
    return RoleplayCharacterRole.objects.create(roleplay_template=locked, **fields)
