"""What every invitation write shares: the open statuses, where a request came from
(``RequestMeta``) and the ``user_invitation_history`` row each step writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from notifyplatform.choices import Channel
from users.models import User

from ..models import (
    InvitationStatus,
    StoryInvitation,
    UserInvitationHistory,
)

logger = logging.getLogger(__name__)

OPEN_STATUSES = (InvitationStatus.PENDING, InvitationStatus.SENT, InvitationStatus.VIEWED)
DEFAULT_CHANNELS = [Channel.EMAIL.value]


@dataclass(frozen=True)
class RequestMeta:
    """Where an action came from, for the history row."""

    user_agent: str | None = None
    ip_address: str | None = None
    referrer: str | None = None

    @classmethod
    def from_request(cls, request: Any) -> RequestMeta:
        meta = request.META
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy
        # rewrites it, and a proxy setup would set REMOTE_ADDR through its own middleware.
        return cls(
            user_agent=meta.get("HTTP_USER_AGENT") or None,
            ip_address=meta.get("REMOTE_ADDR") or None,
            referrer=meta.get("HTTP_REFERER") or None,
        )


def _history(
    invitation: StoryInvitation,
    action: str,
    *,
    user: User | None,
    meta: RequestMeta | None = None,
    response_data: dict[str, Any] | None = None,
    interaction_metadata: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> UserInvitationHistory:
    meta = meta or RequestMeta()
    return UserInvitationHistory.objects.create(
        invitation=invitation,
        user=user,
        action=action,
        action_timestamp=at or timezone.now(),
        response_data=response_data,
        interaction_metadata=interaction_metadata,
        user_agent=meta.user_agent,
        ip_address=meta.ip_address,
        referrer=meta.referrer,
    )
