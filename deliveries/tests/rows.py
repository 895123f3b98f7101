"""Many notifications and deliveries in two statements (INSERT … SELECT generate_series), for
tests that need thousands of rows in a fraction of a second: load, backlog and retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection


def insert_deliveries(
    *,
    user_id: Any,
    count: int,
    status: str,
    channel: str = "email",
    provider_name: str = "",
    message_id_prefix: str | None = None,
    notification_status: str | None = None,
    created_at: datetime | None = None,
    scheduled_at: datetime | None = None,
    recipient: str = "someone@example.test",
) -> list[int]:
    """``count`` notifications for ``user_id`` with one ``channel`` delivery each, in
    ``status``; the deliveries' ids in order. A ``message_id_prefix`` gives delivery n the
    provider message id ``<prefix>-<n>`` (n from 1)."""
    recipient_type = {"email": "email", "sms": "phone", "webhook": "webhook"}.get(channel, "user")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH n AS (
                INSERT INTO notifications (
                    notification_id, user_id, notification_type, category, priority, title,
                    message, delivery_channels, status, created_at, updated_at, sent_at
                )
                SELECT gen_random_uuid(), %(user)s, %(channel)s, 'system', 'normal',
                       'Load ' || g, 'row ' || g, jsonb_build_array(%(channel)s::text),
                       %(nstatus)s, COALESCE(%(created)s, now()), COALESCE(%(created)s, now()),
                       CASE WHEN %(nstatus)s IN ('sent', 'delivered')
                            THEN COALESCE(%(created)s, now()) END
                FROM generate_series(1, %(count)s) g
                RETURNING notification_id
            ), numbered AS (
                SELECT notification_id, row_number() OVER () AS g FROM n
            )
            INSERT INTO notification_deliveries (
                notification_id, delivery_type, provider_type, provider_name,
                provider_priority, recipient, recipient_type, status, provider_message_id,
                scheduled_at, sent_at, created_at, updated_at
            )
            SELECT notification_id, %(channel)s, %(channel)s, %(provider)s, 1, %(recipient)s,
                   %(rtype)s, %(status)s,
                   CASE WHEN %(prefix)s::text IS NOT NULL THEN %(prefix)s || '-' || g END,
                   %(scheduled)s,
                   CASE WHEN %(status)s NOT IN ('pending', 'sending', 'cancelled', 'skipped')
                        THEN COALESCE(%(created)s, now()) END,
                   COALESCE(%(created)s, now()), COALESCE(%(created)s, now())
            FROM numbered ORDER BY g
            RETURNING id
            """,
            {
                "user": user_id,
                "channel": channel,
                "count": count,
                "status": status,
                "nstatus": notification_status or _notification_status(status),
                "provider": provider_name,
                "prefix": message_id_prefix,
                "created": created_at,
                "scheduled": scheduled_at,
                "recipient": recipient,
                "rtype": recipient_type,
            },
        )
        return sorted(row[0] for row in cursor.fetchall())


def _notification_status(delivery_status: str) -> str:
    if delivery_status in ("sent", "delivered", "failed", "pending"):
        return delivery_status
    return "pending" if delivery_status in ("sending", "scheduled") else "failed"
