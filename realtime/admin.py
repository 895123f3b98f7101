"""Admin for websocket connections and real-time events (read-only).

Both are records written by the websocket consumer and ``realtime.services.publish``:
an event's sequence number comes from a database sequence and its payload has already
been broadcast, so neither is added or edited here. JSON payloads are shown indented.

The connection list opens on the live connections (``connected only`` is the default of
its state filter; "all" shows history too), with user, IP, subscriptions and counters.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join

from notifyplatform.admin_utils import ReadOnlyModelAdmin

from .models import ConnectionStatus, RealTimeEvent, WebsocketConnection

SUBSCRIPTIONS_SHOWN = 5


class LiveConnectionFilter(admin.SimpleListFilter):
    """Connection state, defaulting to the live ones: the page is an operator's view of who
    is connected now, and the table also keeps every past connection."""

    title = "state"
    parameter_name = "state"
    LIVE = (ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Connected only"), ("closed", "Disconnected"), ("all", "All")]

    def value(self) -> str:
        return super().value() or "live"

    def choices(self, changelist: Any) -> Any:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "live":
            return queryset.filter(connection_status__in=self.LIVE)
        if value == "closed":
            return queryset.exclude(connection_status__in=self.LIVE)
        return queryset


@admin.register(WebsocketConnection)
class WebsocketConnectionAdmin(ReadOnlyModelAdmin):
    list_display = (
        "socket_id",
        "user",
        "connection_status",
        "client_ip",
        "subscribed_to",
        "connected_at",
        "last_heartbeat",
        "disconnected_at",
        "disconnect_reason",
        "messages_sent",
        "messages_received",
        "bytes_sent",
        "bytes_received",
        "error_count",
    )
    list_filter = (
        LiveConnectionFilter,
        "connection_status",
        "disconnect_reason",
        "protocol_version",
    )
    search_fields = ("socket_id", "session_id", "user__email", "client_ip")
    list_select_related = ("user",)
    date_hierarchy = "connected_at"

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Old disconnected rows may be purged by an operator.
        return True

    @admin.display(description="subscriptions")
    def subscribed_to(self, obj: WebsocketConnection) -> str:
        # auction_subscriptions is derived from these topics (auction.<id>): not repeated
        topics = [str(t) for t in (obj.subscriptions or [])]
        if not topics:
            return "-"
        more = len(topics) - SUBSCRIPTIONS_SHOWN
        shown = ", ".join(topics[:SUBSCRIPTIONS_SHOWN])
        return f"{shown} (+{more})" if more > 0 else shown


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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), "previous", "causes", "effects")

    @staticmethod
    def _links(events: Any) -> str:
        rows = [
            (reverse("admin:realtime_realtimeevent_change", args=[e.pk]), f"#{e.sequence_number}",
             e.event_type)
            for e in events
        ]
        if not rows:
            return "—"
        return format_html_join(", ", '<a href="{}">{} {}</a>', rows)

    @admin.display(description="previous event of the auction")
    def previous(self, obj: RealTimeEvent) -> str:
        if obj.previous_event_id is None:
            return "—"
        return self._links(RealTimeEvent.objects.filter(pk=obj.previous_event_id))

    @admin.display(description="caused by")
    def causes(self, obj: RealTimeEvent) -> str:
        return self._links(
            RealTimeEvent.objects.filter(pk__in=list(obj.causal_events or [])).order_by(
                "sequence_number"
            )
        )

    @admin.display(description="effects (events it caused, and the next one)")
    def effects(self, obj: RealTimeEvent) -> str:
        caused = RealTimeEvent.objects.filter(
            Q(causal_events__contains=[str(obj.pk)]) | Q(previous_event_id=obj.pk)
        ).order_by("sequence_number")
        return self._links(caused[:50])
