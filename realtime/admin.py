"""Admin for websocket connections and real-time events (read-only).

Both are records written by the websocket consumer and ``realtime.services.publish``:
an event's sequence number comes from a database sequence and its payload has already
been broadcast, so neither is added or edited here. JSON payloads are shown indented.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from notifyplatform.admin_utils import ReadOnlyModelAdmin

from .models import RealTimeEvent, WebsocketConnection


@admin.register(WebsocketConnection)
class WebsocketConnectionAdmin(ReadOnlyModelAdmin):
    list_display = (
        "socket_id",
        "user",
        "connection_status",
        "client_ip",
        "connected_at",
        "last_heartbeat",
        "disconnected_at",
        "disconnect_reason",
        "messages_sent",
        "messages_received",
    )
    list_filter = ("connection_status", "disconnect_reason", "protocol_version")
    search_fields = ("socket_id", "session_id", "user__email", "client_ip")
    list_select_related = ("user",)
    date_hierarchy = "connected_at"

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Old disconnected rows may be purged by an operator.
        return True


@admin.register(RealTimeEvent)
class RealTimeEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "sequence_number",
        "event_type",
        "event_category",
        "visibility",
        "priority",
        "user",
        "auction",
        "ack_required",
        "generated_at",
        "published_at",
    )
    list_filter = (
        "event_category",
        "visibility",
        "priority",
        "ack_required",
        "retention_policy",
        "event_type",
    )
    search_fields = ("event_type", "correlation_id", "user__email")
    list_select_related = ("user", "auction")
    date_hierarchy = "generated_at"
    ordering = ("-sequence_number",)
