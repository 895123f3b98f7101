"""`websocket_connections` and `real_time_events` (seed 004).

``real_time_events.sequence_number`` is drawn from one PostgreSQL sequence
(``real_time_events_sequence_number_seq``, created by migration 0001) as the column's
database default, so it is monotonic across every process that publishes and is
returned by INSERT ... RETURNING.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Func, Value

from notifyplatform.db import SeedIndex, choices_check, seed_default

EVENT_SEQUENCE = "real_time_events_sequence_number_seq"


class NextVal(Func):
    function = "nextval"
    output_field = models.BigIntegerField()


class ConnectionStatus(models.TextChoices):
    CONNECTING = "connecting", "Connecting"
    CONNECTED = "connected", "Connected"
    DISCONNECTING = "disconnecting", "Disconnecting"
    DISCONNECTED = "disconnected", "Disconnected"


class WebsocketConnection(models.Model):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, db_column="connection_id"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="websocket_connections",
        help_text="Anonymous clients are recorded against the anonymous system user",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    session_id = models.CharField(max_length=255)
    socket_id = models.CharField(max_length=255)
    connection_status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.CONNECTING
    )
    client_ip = models.GenericIPAddressField()
    user_agent = models.TextField()
    protocol_version = models.CharField(max_length=20, null=True, blank=True, **seed_default("1.0"))
    compression_enabled = models.BooleanField(**seed_default(False))
    heartbeat_interval = models.IntegerField(**seed_default(30))
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField()
    disconnected_at = models.DateTimeField(null=True, blank=True)
    disconnect_reason = models.CharField(max_length=255, null=True, blank=True)
    reconnect_count = models.IntegerField(**seed_default(0))
    bytes_sent = models.BigIntegerField(**seed_default(0))
    bytes_received = models.BigIntegerField(**seed_default(0))
    messages_sent = models.IntegerField(**seed_default(0))
    messages_received = models.IntegerField(**seed_default(0))
    subscriptions = models.JSONField(default=list)
    auction_subscriptions = models.JSONField(default=list)
    user_preferences = models.JSONField(null=True, blank=True)
    geo_location = models.JSONField(null=True, blank=True)
    device_info = models.JSONField(null=True, blank=True)
    bandwidth_usage = models.JSONField(null=True, blank=True)
    error_count = models.IntegerField(**seed_default(0))
    last_error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "websocket_connections"
        ordering = ["-connected_at"]
        indexes = [
            SeedIndex(fields=["user"], name="idx_ws_connections_user"),
            SeedIndex(fields=["session_id"], name="idx_ws_connections_session"),
            SeedIndex(fields=["socket_id"], name="idx_ws_connections_socket"),
            SeedIndex(fields=["connection_status"], name="idx_ws_connections_status"),
            SeedIndex(fields=["last_heartbeat"], name="idx_ws_connections_heartbeat"),
            SeedIndex(fields=["connected_at"], name="idx_ws_connections_time"),
        ]
        constraints = [
            choices_check("connection_status", ConnectionStatus, "ws_connections_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.socket_id} ({self.connection_status})"


class EventCategory(models.TextChoices):
    AUCTION = "auction", "Auction"
    BID = "bid", "Bid"
    USER = "user", "User"
    SYSTEM = "system", "System"
    NOTIFICATION = "notification", "Notification"


class EventPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    AUTHENTICATED = "authenticated", "Authenticated users"
    PRIVATE = "private", "Private (the owning user)"
    TARGETED = "targeted", "Targeted (listed users)"


class RealTimeEvent(models.Model):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, db_column="event_id"
    )
    event_type = models.CharField(max_length=100)
    event_category = models.CharField(max_length=20, choices=EventCategory.choices)
    # db_index=False: the seeds' idx_rt_events_auction / idx_rt_events_user (Meta) index
    # these columns already; Django's own FK index beside each was a duplicate that every
    # insert and every non-HOT update paid for
    auction = models.ForeignKey(
        "auctions.Auction",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="real_time_events",
        db_index=False,
    )
    bid = models.ForeignKey(
        "auctions.Bid", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    item = models.ForeignKey(
        "auctions.AuctionItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event_data = models.JSONField()
    event_metadata = models.JSONField(null=True, blank=True)
    priority = models.CharField(
        max_length=10,
        choices=EventPriority.choices,
        null=True,
        blank=True,
        **seed_default(EventPriority.NORMAL),
    )
    visibility = models.CharField(max_length=20, choices=Visibility.choices)
    target_audience = models.JSONField(null=True, blank=True, help_text="User ids for targeted")
    broadcast_channels = models.JSONField(help_text='Topics, e.g. ["auction.<id>"]')
    sequence_number = models.BigIntegerField(db_default=NextVal(Value(EVENT_SEQUENCE)), unique=True)
    previous_event_id = models.UUIDField(null=True, blank=True)
    correlation_id = models.CharField(max_length=255, null=True, blank=True)
    causal_events = models.JSONField(null=True, blank=True)
    expected_impacts = models.JSONField(null=True, blank=True)
    generated_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    retention_policy = models.CharField(
        max_length=50, null=True, blank=True, **seed_default("standard")
    )
    delivery_status = models.JSONField(null=True, blank=True)
    ack_required = models.BooleanField(**seed_default(False))
    ack_timeout = models.IntegerField(**seed_default(30), help_text="Seconds")
    acknowledgments = models.JSONField(null=True, blank=True)
    tags = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "real_time_events"
        ordering = ["sequence_number"]
        indexes = [
            SeedIndex(fields=["event_type"], name="idx_rt_events_type"),
            SeedIndex(fields=["event_category"], name="idx_rt_events_category"),
            SeedIndex(fields=["auction"], name="idx_rt_events_auction"),
            SeedIndex(fields=["user"], name="idx_rt_events_user"),
            SeedIndex(fields=["sequence_number"], name="idx_rt_events_sequence"),
            SeedIndex(fields=["generated_at"], name="idx_rt_events_time"),
            SeedIndex(fields=["priority"], name="idx_rt_events_priority"),
            SeedIndex(fields=["visibility"], name="idx_rt_events_visibility"),
            SeedIndex(fields=["expires_at"], name="idx_rt_events_expiry"),
            SeedIndex(fields=["correlation_id"], name="idx_rt_events_correlation"),
        ]
        constraints = [
            choices_check("event_category", EventCategory, "rt_events_category_valid"),
            choices_check("priority", EventPriority, "rt_events_priority_valid", nullable=True),
            choices_check("visibility", Visibility, "rt_events_visibility_valid"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence_number} {self.event_type}"
