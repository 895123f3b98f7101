"""Staff-only, read-only lists of real-time events and websocket connections."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions, viewsets

from .. import selectors
from ..filters import RealTimeEventFilter, WebsocketConnectionFilter
from ..models import RealTimeEvent
from .serializers import RealTimeEventSerializer, WebsocketConnectionSerializer


class RealTimeEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RealTimeEventSerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_class = RealTimeEventFilter
    ordering_fields = ["sequence_number", "generated_at"]
    ordering = ["-sequence_number"]
    queryset = RealTimeEvent.objects.all()
    lookup_value_regex = "[0-9a-fA-F-]{36}"


class WebsocketConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = WebsocketConnectionSerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_class = WebsocketConnectionFilter
    ordering_fields = ["connected_at", "last_heartbeat", "messages_sent"]
    ordering = ["-connected_at"]
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self) -> Any:
        return selectors.connection_list()
