"""Write paths of the delivery pipeline (see the modules for the why)."""

from ..links import tracked_action_url
from .clicks import notification_click, notification_click_by_token
from .inbox import (
    inbox_archive,
    inbox_mark_all_read,
    inbox_mark_read,
)
from .notify import notify, notify_many
from .preferences import preference_create, preference_delete, preference_update
from .sending import (
    deliveries_dispatch_due,
    deliveries_sweep,
    delivery_send,
    enqueue_deliveries,
    retry_delay,
)

__all__ = [
    "deliveries_dispatch_due",
    "deliveries_sweep",
    "delivery_send",
    "enqueue_deliveries",
    "inbox_archive",
    "inbox_mark_all_read",
    "inbox_mark_read",
    "notification_click",
    "notification_click_by_token",
    "notify",
    "notify_many",
    "preference_create",
    "preference_delete",
    "preference_update",
    "retry_delay",
    "tracked_action_url",
]
