"""Who may invite to which content. One rule set, checked by every path that creates an
invitation (the API, ``invitation_create``, batch jobs at validation and again per chunk)
and again when an invitee answers (an invitation made before the rules, or to content
made private since, cannot be accepted).

The rules, in order:

1. **Stories.** A private story (``is_public`` false): only its owner may invite to it.
   A public story: any user may invite to it (sharing what everyone can read; accepting
   grants no rights over the story). There are no collaborators: nobody but the owner acts
   for a private story.
2. **Roleplay templates and their roles.** A role can be offered only by the roleplay's
   owner (``created_by``; the owner of the template's story if the creator is gone),
   public template or not. Its story, when private, must be the inviter's too.
3. **News articles** are the platform's own, public content: anyone may invite to an
   active one. A narration is its author's (``news_narrations.user``): only they may
   attach it; a narration without a user is the platform's and anyone may.

Content the inviter may not see (another user's private story or template, another user's
narration) is ``CONTENT_NOT_FOUND`` (404), exactly like content that does not exist, so
neither the answer nor its message tells a title or even that it exists. Content the
inviter can see but may not offer (a role of someone else's public roleplay) is
``CONTENT_FORBIDDEN`` (403). Staff follow the same rules: an invitation speaks for its
inviter.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .errors import InvitationError
from .models import NewsNarration, RoleplayCharacterRole, RoleplayTemplate, Story


def _not_found(kind: str, pk: Any, field: str) -> InvitationError:
    return InvitationError(
        errors.CONTENT_NOT_FOUND, f"no {kind} {pk} you may invite to", field=field, status=404
    )


def _owns(user: Any, owner_id: Any) -> bool:
    # An unsaved stand-in (no pk) or content without an owner: nobody owns it.
    pk = getattr(user, "pk", None)
    return pk is not None and owner_id == pk


def story_visible(story: Story, user: Any) -> bool:
    return bool(story.is_public) or _owns(user, story.owner_id)


def roleplay_owner_id(template: RoleplayTemplate) -> Any:
    if template.created_by_id is not None:
        return template.created_by_id
    return template.story.owner_id if template.story is not None else None


def roleplay_visible(template: RoleplayTemplate, user: Any) -> bool:
    return bool(template.is_public) or _owns(user, roleplay_owner_id(template))


def narration_usable(narration: NewsNarration, user: Any) -> bool:
    return narration.user_id is None or _owns(user, narration.user_id)


def content_authorize(
    *,
    inviter: Any,
    story: Story | None = None,
    narration: NewsNarration | None = None,
    roleplay_template: RoleplayTemplate | None = None,
    role: RoleplayCharacterRole | None = None,
) -> None:
    """Raise ``CONTENT_NOT_FOUND`` (404) / ``CONTENT_FORBIDDEN`` (403) unless ``inviter``
    may invite to every piece of content given. Messages name ids, never titles."""
    if story is not None and not story_visible(story, inviter):
        raise _not_found("story", story.pk, "story")
    if narration is not None and not narration_usable(narration, inviter):
        raise _not_found("narration", narration.pk, "narration")
    if roleplay_template is not None:
        if not roleplay_visible(roleplay_template, inviter):
            raise _not_found("roleplay template", roleplay_template.pk, "roleplay_template")
        if roleplay_template.story is not None and not story_visible(
            roleplay_template.story, inviter
        ):
            raise _not_found("roleplay template", roleplay_template.pk, "roleplay_template")
    if role is not None:
        template = role.roleplay_template
        if template is None or not roleplay_visible(template, inviter):
            raise _not_found("role", role.pk, "role")
        if not _owns(inviter, roleplay_owner_id(template)):
            raise InvitationError(
                errors.CONTENT_FORBIDDEN,
                "only the roleplay's owner may offer its roles",
                field="role",
                status=403,
            )


def invitation_permitted(invitation: Any) -> bool:
    """Whether the inviter of a stored invitation may (still) invite to its content."""
    try:
        content_authorize(
            inviter=invitation.inviter,
            story=invitation.story if invitation.story_id is not None else None,
            role=(
                invitation.roleplay_character_role
                if invitation.roleplay_character_role_id is not None
                else None
            ),
        )
    except InvitationError:
        return False
    return True
