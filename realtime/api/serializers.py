"""API shapes for the staff's view of real-time events and websocket connections."""

from __future__ import annotations

from rest_framework import serializers

from ..models import RealTimeEvent, WebsocketConnection


class RealTimeEventSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(read_only=True, allow_null=True)
    auction_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = RealTimeEvent
        fields = [
            "id",
            "sequence_number",
            "event_type",
            "event_category",
            "priority",
            "visibility",
            "user_id",
            "auction_id",
            "broadcast_channels",
            "target_audience",
            "event_data",
            "event_metadata",
            "correlation_id",
            "ack_required",
            "acknowledgments",
            "generated_at",
            "published_at",
            "expires_at",
            "created_at",
        ]
        read_only_fields = fields


class WebsocketConnectionSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(read_only=True)
    user_email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = WebsocketConnection
        fields = [
            "id",
            "user_id",
            "user_email",
            "session_id",
            "socket_id",
            "connection_status",
            "client_ip",
            "user_agent",
            "protocol_version",
            "heartbeat_interval",
            "last_heartbeat",
            "connected_at",
            "disconnected_at",
            "disconnect_reason",
            "reconnect_count",
            "bytes_sent",
            "bytes_received",
            "messages_sent",
            "messages_received",
            "subscriptions",
            "error_count",
            "last_error",
        ]
        read_only_fields = fields
