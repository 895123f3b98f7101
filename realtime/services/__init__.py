"""Write paths of the real-time app, one module per job:

``publishing``   ``publish_event``/``publish``/``publish_many`` (an ``EventToPublish`` each):
                 validated event rows, committed in sequence order
``fanout``       after commit: each event's layer message to the groups its visibility allows
``acks``         a user's acknowledgment of an ``ack_required`` event
``connections``  the connection row's life cycle, traffic counters, the stale sweep

The frames an event travels as are built in ``realtime.wire``; the purge of expired
events is in ``realtime.retention``. Other apps import from here (``realtime.services``).
"""

from __future__ import annotations

from ..retention import event_purge_expired
from ..wire import EVENT_MESSAGE_TYPE, event_frame, event_text, layer_message, replay_message
from .acks import AckResult, event_acknowledge
from .connections import (
    ANONYMOUS_EMAIL,
    ConnectionCounters,
    anonymous_user,
    connection_close,
    connection_disconnect,
    connection_expire_stale,
    connection_flush,
    connection_flush_many,
    connection_mark_connected,
    connection_mark_disconnecting,
    connection_open,
    connection_open_connected,
    connection_open_many,
    connection_set_subscriptions,
    connection_update_client,
)
from .fanout import event_groups, fan_out, fan_out_many
from .publishing import (
    PUBLISH_LOCK_KEY,
    EventToPublish,
    ObjectRef,
    publish,
    publish_event,
    publish_many,
)

__all__ = [
    "ANONYMOUS_EMAIL",
    "EVENT_MESSAGE_TYPE",
    "PUBLISH_LOCK_KEY",
    "AckResult",
    "ConnectionCounters",
    "EventToPublish",
    "ObjectRef",
    "anonymous_user",
    "connection_close",
    "connection_disconnect",
    "connection_expire_stale",
    "connection_flush",
    "connection_flush_many",
    "connection_mark_connected",
    "connection_mark_disconnecting",
    "connection_open",
    "connection_open_connected",
    "connection_open_many",
    "connection_set_subscriptions",
    "connection_update_client",
    "event_acknowledge",
    "event_frame",
    "event_groups",
    "event_purge_expired",
    "event_text",
    "fan_out",
    "fan_out_many",
    "layer_message",
    "publish",
    "publish_event",
    "publish_many",
    "replay_message",
]
