"""Acknowledgments: a user's ``ack`` of an ``ack_required`` event, stored on the event."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from ..errors import RealtimeError
from ..models import RealTimeEvent
from ..selectors import event_visible_to
from ..signals import event_acknowledged
from .publishing import _user_id


@dataclass(frozen=True)
class AckResult:
    event_id: str
    created: bool  # False when this user had already acknowledged it


def event_acknowledge(*, event_id: uuid.UUID | str, user_id: uuid.UUID | str) -> AckResult:
    """Store ``{"user_id", "acked_at"}`` on an event the user may see; idempotent.

    One conditional UPDATE appends the entry unless the user already has one, so two
    acks racing on two connections still store a single entry.
    """
    uid = _user_id(user_id, "user_id")
    try:
        eid = uuid.UUID(str(event_id))
    except ValueError as exc:
        raise RealtimeError(
            "INVALID_EVENT_ID", f"{event_id!r} is not an event id", "event_id"
        ) from exc
    event = RealTimeEvent.objects.filter(pk=eid).first()
    if event is None or not event_visible_to(event, uid):
        raise RealtimeError("EVENT_NOT_FOUND", "no such event for this user", "event_id")
    entry = [{"user_id": uid, "acked_at": timezone.now().isoformat()}]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE real_time_events
               SET acknowledgments = COALESCE(acknowledgments, '[]'::jsonb) || %s::jsonb
             WHERE event_id = %s
               AND NOT COALESCE(acknowledgments, '[]'::jsonb) @> %s::jsonb
            """,
            [json.dumps(entry), eid, json.dumps([{"user_id": uid}])],
        )
        created = cursor.rowcount == 1
    if created:
        event_acknowledged.send(
            sender=RealTimeEvent,
            event_id=str(eid),
            user_id=uid,
            correlation_id=event.correlation_id,
        )
    return AckResult(event_id=str(eid), created=created)
