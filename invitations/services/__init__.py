"""Write paths for invitations (seed 000), by job: ``create`` (create and send), ``answer``
(view / accept / decline by token), ``reminders`` (remind, expire), ``articles`` (news
articles with duplicate detection), ``narrations`` (articles read aloud), ``roleplay``
(templates and roles), ``inviter`` (telling the inviter the outcome) and ``bulk`` (batch jobs' bulk create and send).

Every step an invitee or inviter takes is a ``user_invitation_history`` row (with the
user agent, IP and referrer of the request that caused it): the analytics views
``user_invitation_summary`` and ``invitation_conversion_funnel`` are computed from it.
"""

from .answer import (
    invitation_accept,
    invitation_check_permitted,
    invitation_decline,
    invitation_view,
    is_answerable,
)
from .articles import article_content_hash, article_create
from .base import DEFAULT_CHANNELS, OPEN_STATUSES, RequestMeta
from .bulk import (
    BULK_ID_PLACEHOLDER,
    BULK_LINK_PLACEHOLDER,
    invitation_content_check,
    invitations_create_bulk,
    invitations_send_bulk,
)
from .create import invitation_create, role_is_taken
from .inviter import inviter_notify
from .narrations import (
    narration_enqueue,
    narration_render,
    narration_request,
    narration_status,
)
from .reminders import (
    invitation_remind,
    invitations_due_for_reminder,
    invitations_expire_due,
    invitations_remind_due,
)
from .roleplay import roleplay_role_add, roleplay_template_create

__all__ = [
    "BULK_ID_PLACEHOLDER",
    "BULK_LINK_PLACEHOLDER",
    "DEFAULT_CHANNELS",
    "OPEN_STATUSES",
    "RequestMeta",
    "article_content_hash",
    "article_create",
    "invitation_accept",
    "invitation_check_permitted",
    "invitation_content_check",
    "invitation_create",
    "invitation_decline",
    "invitation_remind",
    "invitation_view",
    "invitations_create_bulk",
    "invitations_due_for_reminder",
    "invitations_expire_due",
    "invitations_remind_due",
    "invitations_send_bulk",
    "inviter_notify",
    "is_answerable",
    "narration_enqueue",
    "narration_render",
    "narration_request",
    "narration_status",
    "role_is_taken",
    "roleplay_role_add",
    "roleplay_template_create",
]
