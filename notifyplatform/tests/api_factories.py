"""Rows for the API tests, written straight to the database (the API under test reads them).

Each function makes one realistic row owned by ``user``; the tests build their scenarios
from these, so every resource is set up the same way.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

_n = itertools.count(1)


def token_for(user: Any, *, is_service: bool = False) -> str:
    from users.services import token_create

    _, raw = token_create(user=user, name=f"test-{next(_n)}", is_service=is_service)
    return raw


def auth(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def notification(user: Any, *, in_app_sent: bool = True, **fields: Any) -> Any:
    from deliveries.models import Notification

    fields.setdefault("notification_type", "in_app")
    fields.setdefault("category", "system")
    fields.setdefault("priority", "normal")
    fields.setdefault("title", f"Hello {next(_n)}")
    fields.setdefault("message", "A message")
    fields.setdefault("delivery_channels", ["in_app"])
    fields.setdefault("status", "sent" if in_app_sent else "pending")
    row = Notification.objects.create(user=user, **fields)
    delivery(
        row,
        status="sent" if in_app_sent else "pending",
        delivery_type="in_app",
        provider_type="in_app",
        recipient=str(user.pk),
        recipient_type="user",
    )
    return row


def delivery(notification_row: Any = None, **fields: Any) -> Any:
    from deliveries.models import NotificationDelivery

    fields.setdefault("delivery_type", "email")
    fields.setdefault("provider_type", "email")
    fields.setdefault("provider_name", "smtp")
    fields.setdefault("provider_priority", 1)
    fields.setdefault("recipient", f"r{next(_n)}@example.test")
    fields.setdefault("recipient_type", "email")
    fields.setdefault("status", "pending")
    return NotificationDelivery.objects.create(notification=notification_row, **fields)


def preference(user: Any, **fields: Any) -> Any:
    from deliveries.models import UserNotificationPreference

    fields.setdefault("invitation_type", f"type_{next(_n)}")
    fields.setdefault("delivery_method", "email")
    return UserNotificationPreference.objects.create(user=user, **fields)


def invitation(inviter: Any, invitee: Any = None, **fields: Any) -> Any:
    from invitations.models import StoryInvitation

    fields.setdefault("invitee_email", None if invitee else f"i{next(_n)}@example.test")
    fields.setdefault("token", secrets.token_urlsafe(24))
    fields.setdefault("expires_at", timezone.now() + timedelta(days=7))
    return StoryInvitation.objects.create(inviter=inviter, invitee_user=invitee, **fields)


def history(user: Any, invitation_row: Any, **fields: Any) -> Any:
    from invitations.models import UserInvitationHistory

    fields.setdefault("action", "sent")
    return UserInvitationHistory.objects.create(user=user, invitation=invitation_row, **fields)


def template(**fields: Any) -> Any:
    from templates.models import NotificationTemplate

    n = next(_n)
    fields.setdefault("invitation_type", f"apitest_{n}")
    fields.setdefault("delivery_type", "email")
    fields.setdefault("language", "en")
    fields.setdefault(
        "template_key",
        NotificationTemplate.make_key(
            fields["invitation_type"], fields["delivery_type"], fields["language"]
        ),
    )
    fields.setdefault("template_name", f"Template {n}")
    fields.setdefault("subject_template", "Hi {{ name }}")
    fields.setdefault("content_template", "Hello {{ name }}, you owe {{ amount }}.")
    fields.setdefault(
        "template_variables",
        {
            "name": {"required": True, "example": "Ada"},
            "amount": {"required": True, "example": "12.50"},
        },
    )
    return NotificationTemplate.objects.create(**fields)


def realtime_event(user: Any = None, **fields: Any) -> Any:
    from realtime.models import RealTimeEvent

    fields.setdefault("event_type", "test.event")
    fields.setdefault("event_category", "system")
    fields.setdefault("event_data", {"n": next(_n)})
    fields.setdefault("visibility", "public")
    fields.setdefault("broadcast_channels", ["public"])
    fields.setdefault("generated_at", timezone.now())
    return RealTimeEvent.objects.create(user=user, **fields)


def connection(user: Any, **fields: Any) -> Any:
    from realtime.models import WebsocketConnection

    fields.setdefault("session_id", uuid.uuid4().hex)
    fields.setdefault("socket_id", uuid.uuid4().hex)
    fields.setdefault("connection_status", "connected")
    fields.setdefault("client_ip", "127.0.0.1")
    fields.setdefault("user_agent", "pytest")
    fields.setdefault("connected_at", timezone.now())
    return WebsocketConnection.objects.create(user=user, **fields)


def provider_health(**fields: Any) -> Any:
    from providers.models import ProviderHealthMetric

    fields.setdefault("provider_name", "smtp")
    fields.setdefault("provider_type", "email")
    fields.setdefault("health_check_timestamp", timezone.now())
    fields.setdefault("is_healthy", True)
    return ProviderHealthMetric.objects.create(**fields)
