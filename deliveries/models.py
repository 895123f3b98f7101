"""The delivery pipeline's tables.

- ``notifications`` (seed 004): the message to one user.
- ``notification_deliveries`` (seed 000): one route of a message through one channel
  and provider. ``notification_id`` (an extension, see ``spec/schema.json``) ties an
  auction-style notification to its deliveries; ``invitation_id`` ties invitation
  deliveries, so both kinds share one table.
- ``user_notification_preferences`` (seed 000); ``notification_batch_jobs`` belongs to
  ``campaigns``.
- ``provider_performance_summary``: the seed's view, read through an unmanaged model.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from notifyplatform.choices import Channel, Priority, ProviderType
from notifyplatform.db import SeedIndex, choices_check, created_at, seed_default, updated_at


class NotificationCategory(models.TextChoices):
    AUCTION = "auction", "Auction"
    BID = "bid", "Bid"
    PAYMENT = "payment", "Payment"
    SYSTEM = "system", "System"
    MARKETING = "marketing", "Marketing"
    INVITATION = "invitation", "Invitation"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    CLICKED = "clicked", "Clicked"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Notification(models.Model):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, db_column="notification_id"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    notification_type = models.CharField(
        max_length=20, choices=Channel.choices, help_text="The primary channel"
    )
    category = models.CharField(max_length=20, choices=NotificationCategory.choices)
    priority = models.CharField(max_length=10, choices=Priority.choices)
    auction = models.ForeignKey(
        "auctions.Auction", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    bid = models.ForeignKey(
        "auctions.Bid", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    item = models.ForeignKey(
        "auctions.AuctionItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=255)
    message = models.TextField()
    rich_content = models.JSONField(null=True, blank=True)
    action_url = models.CharField(max_length=500, null=True, blank=True)
    action_label = models.CharField(max_length=100, null=True, blank=True)
    template = models.ForeignKey(
        "templates.NotificationTemplate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    template_data = models.JSONField(null=True, blank=True)
    delivery_channels = models.JSONField(help_text='e.g. ["in_app", "email"]')
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    delivery_attempts = models.IntegerField(**seed_default(0))
    max_attempts = models.IntegerField(**seed_default(3))
    error_message = models.TextField(null=True, blank=True)
    provider_response = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    is_read = models.BooleanField(**seed_default(False))
    is_archived = models.BooleanField(**seed_default(False))
    # Extension: the notification is in the user's in-app inbox (its in_app delivery went out).
    # Kept by a trigger on notification_deliveries (migration 0004), whatever path sends or
    # edits the delivery, so the inbox and its unread count read one table, index-only.
    in_inbox = models.BooleanField(
        default=False,
        db_default=False,
        editable=False,
        help_text="Its in-app delivery was sent: it shows in the user's inbox",
    )
    tags = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    # Extensions: the event type that produced it (e.g. "outbid") and the caller's
    # idempotency key, unique so a retried request returns the first notification.
    event_type = models.CharField(max_length=100, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at"]
        indexes = [
            SeedIndex(fields=["user"], name="idx_notifications_user"),
            SeedIndex(fields=["notification_type"], name="idx_notifications_type"),
            SeedIndex(fields=["category"], name="idx_notifications_category"),
            SeedIndex(fields=["priority"], name="idx_notifications_priority"),
            SeedIndex(fields=["status"], name="idx_notifications_status"),
            SeedIndex(fields=["scheduled_at"], name="idx_notifications_scheduled"),
            SeedIndex(fields=["is_read"], name="idx_notifications_read"),
            SeedIndex(fields=["auction"], name="idx_notifications_auction"),
            SeedIndex(fields=["created_at"], name="idx_notifications_time"),
            SeedIndex(fields=["expires_at"], name="idx_notifications_expiry"),
            # The inbox's hot paths (extensions): the list, and the unread list and count
            # (an index-only scan: every predicate is the index's own).
            SeedIndex(
                fields=["user", "-created_at"],
                name="idx_notifications_inbox",
                condition=models.Q(in_inbox=True, is_archived=False),
            ),
            SeedIndex(
                fields=["user", "-created_at"],
                name="idx_notifications_inbox_unread",
                condition=models.Q(in_inbox=True, is_read=False, is_archived=False),
            ),
        ]
        constraints = [
            choices_check("notification_type", Channel, "notifications_type_valid"),
            choices_check("category", NotificationCategory, "notifications_category_valid"),
            choices_check("priority", Priority, "notifications_priority_valid"),
            choices_check("status", NotificationStatus, "notifications_status_valid"),
        ]

    def __str__(self) -> str:
        return self.title


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    EXPIRED = "expired", "Expired"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class RecipientType(models.TextChoices):
    EMAIL = "email", "Email address"
    PHONE = "phone", "Phone number"
    DEVICE_TOKEN = "device_token", "Device token / push subscription"
    WEBHOOK = "webhook", "Webhook URL"
    USER = "user", "User (in-app)"


class NotificationDelivery(models.Model):
    id = models.AutoField(primary_key=True)
    invitation = models.ForeignKey(
        "invitations.StoryInvitation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    delivery_type = models.CharField(max_length=20, choices=Channel.choices)
    provider_type = models.CharField(max_length=20, choices=ProviderType.choices)
    provider_name = models.CharField(
        max_length=50, help_text="The provider that sent it (empty until routed)"
    )
    provider_priority = models.IntegerField()
    recipient = models.CharField(max_length=255)
    recipient_type = models.CharField(max_length=20, choices=RecipientType.choices)
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices)
    provider_message_id = models.CharField(max_length=255, null=True, blank=True)
    provider_response = models.JSONField(null=True, blank=True)
    delivery_metadata = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    error_code = models.CharField(max_length=50, null=True, blank=True)
    cost_per_message = models.DecimalField(max_digits=10, decimal_places=6, null=True, blank=True)
    retry_count = models.IntegerField(**seed_default(0))
    max_retries = models.IntegerField(**seed_default(3))
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    geographic_region = models.CharField(max_length=50, null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "notification_deliveries"
        ordering = ["-created_at"]
        verbose_name_plural = "notification deliveries"
        indexes = [
            SeedIndex(fields=["invitation"], name="idx_notification_deliveries_invitation"),
            SeedIndex(fields=["status"], name="idx_notification_deliveries_status"),
            SeedIndex(
                fields=["provider_name", "provider_type"],
                name="idx_notification_deliveries_provider",
            ),
            SeedIndex(fields=["scheduled_at"], name="idx_notification_deliveries_scheduled"),
            SeedIndex(
                fields=["provider_name", "sent_at", "cost_per_message"],
                name="idx_notification_deliveries_cost_analysis",
            ),
            SeedIndex(
                fields=["recipient", "recipient_type"], name="idx_notification_deliveries_recipient"
            ),
            SeedIndex(fields=["expires_at"], name="idx_notification_deliveries_expires"),
            SeedIndex(fields=["notification"], name="idx_notification_deliveries_notif"),
            # retention and /metrics' windows: rows by age, without scanning the table
            SeedIndex(fields=["created_at"], name="idx_notification_deliveries_created"),
            # The dispatcher's claim query: due pending deliveries, oldest first.
            SeedIndex(
                fields=["scheduled_at", "id"],
                name="idx_notification_deliveries_due",
                condition=models.Q(status="pending"),
            ),
        ]
        constraints = [
            choices_check("delivery_type", Channel, "notification_deliveries_type_valid"),
            choices_check("provider_type", ProviderType, "notification_deliveries_ptype_valid"),
            choices_check("recipient_type", RecipientType, "notification_deliveries_rtype_valid"),
            choices_check("status", DeliveryStatus, "notification_deliveries_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_type} to {self.recipient} ({self.status})"


class FrequencyPeriod(models.TextChoices):
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class UserNotificationPreference(models.Model):
    """A user's rule for one notification type and delivery method.

    A row with no user is a platform-wide default for that type and method.
    ``delivery_preferences`` holds extras, e.g. ``{"over_cap": "defer"|"skip"}``.
    """

    id = models.AutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notification_preferences",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    invitation_type = models.CharField(
        max_length=50, help_text="Notification/invitation type, e.g. outbid, news_feed, or *"
    )
    delivery_method = models.CharField(max_length=20, choices=Channel.choices)
    conversation_style = models.CharField(max_length=50, null=True, blank=True)
    is_enabled = models.BooleanField(**seed_default(True))
    frequency_limit = models.IntegerField(null=True, blank=True)
    frequency_period = models.CharField(
        max_length=20, choices=FrequencyPeriod.choices, **seed_default(FrequencyPeriod.DAILY)
    )
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=50, null=True, blank=True)
    preferred_providers = models.JSONField(null=True, blank=True)
    blocked_providers = models.JSONField(null=True, blank=True)
    delivery_preferences = models.JSONField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "user_notification_preferences"
        ordering = ["invitation_type", "delivery_method"]
        indexes = [
            SeedIndex(fields=["user"], name="idx_user_notification_preferences_user"),
            SeedIndex(
                fields=["user", "invitation_type"], name="idx_user_notification_preferences_type"
            ),
            SeedIndex(
                fields=["delivery_method"], name="idx_user_notification_preferences_delivery"
            ),
        ]
        constraints = [
            choices_check("delivery_method", Channel, "user_notification_preferences_method_valid"),
            choices_check(
                "frequency_period",
                FrequencyPeriod,
                "user_notification_preferences_period_valid",
                nullable=True,
            ),
            models.UniqueConstraint(
                fields=["user", "invitation_type", "delivery_method"],
                name="user_notification_preferences_uniq",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(frequency_limit__gte=0) | models.Q(frequency_limit__isnull=True),
                name="user_notification_preferences_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        who = self.user_id or "everyone"
        return f"{who}: {self.invitation_type}/{self.delivery_method}"


class ApiIdempotencyKey(models.Model):
    """Extension table: an API caller's ``Idempotency-Key``, scoped to that caller.

    ``scope`` is ``token:<api token id>`` or ``user:<user id>`` (a session), so two callers
    never share a key. ``fingerprint`` is the SHA-256 of the request (method, path, body): a
    reuse with another body is refused (422 ``IDEMPOTENCY_KEY_REUSED``). The first result is
    the notification (or, for an address-only recipient, ``delivery_ids``). Rows older than
    ``NP_IDEMPOTENCY_KEY_TTL_HOURS`` no longer count and are pruned as new keys are written.
    Internal callers' keys (``invitation:<id>:sent``, ``batch:<job>:<user>``) live in
    ``notifications.idempotency_key`` and cannot be reached from the API.
    """

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    # no foreign key: retention may delete the notification with plain SQL; a key whose
    # notification is gone no longer counts
    notification_id = models.UUIDField(null=True, blank=True)
    delivery_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "api_idempotency_keys"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="api_idempotency_keys_scope_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_keys_created")]

    def __str__(self) -> str:
        return f"{self.scope}: {self.key}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Complaint"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
    MANUAL = "manual", "Manual"


class Suppression(models.Model):
    """Extension table: an address that must not be sent to on one channel.

    ``address`` is normalised (``services.suppression.normalise_address``: a lower-cased
    email, an E.164 phone, a push token or URL as given). Hard bounces and complaints add
    rows (``services.receipts``); staff add and lift them (admin, API). A lifted row stays
    as history (``lifted_at``/``lifted_by``); at most one active row per channel × address ×
    ``category`` (NULL = every category: hard bounces, complaints, staff; an unsubscribe is
    scoped to the category of the email it came from).
    ``delivery_id``: the delivery whose receipt caused it — no foreign key, as retention
    deletes deliveries with plain SQL; ``receipt``: what the provider said.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    address = models.CharField(max_length=255)
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    # NULL: every notification to the address; a category: only notifications of that
    # category (an unsubscribe from a marketing email does not stop transactional ones)
    category = models.CharField(max_length=20, null=True, blank=True)
    delivery_id = models.IntegerField(null=True, blank=True)
    receipt = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = created_at()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        db_table = "suppressions"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "address", "category"],
                condition=models.Q(lifted_at__isnull=True),
                nulls_distinct=False,
                name="suppressions_active_unique",
            ),
            choices_check("channel", Channel, "suppressions_channel_valid"),
            choices_check("reason", SuppressionReason, "suppressions_reason_valid"),
        ]
        indexes = [models.Index(fields=["address"], name="suppressions_address")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address} ({self.reason})"


class ProviderPerformanceSummary(models.Model):
    """Read-only: the seed's ``provider_performance_summary`` view."""

    id = models.CharField(max_length=80, primary_key=True)
    provider_name = models.CharField(max_length=50)
    provider_type = models.CharField(max_length=20)
    total_deliveries = models.BigIntegerField()
    successful_deliveries = models.BigIntegerField()
    failed_deliveries = models.BigIntegerField()
    success_rate = models.DecimalField(max_digits=7, decimal_places=2, null=True)
    avg_cost_per_message = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    total_cost = models.DecimalField(max_digits=20, decimal_places=6, null=True)
    first_delivery = models.DateTimeField(null=True)
    last_delivery = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "provider_performance_summary"
        ordering = ["provider_type", "provider_name"]
        verbose_name_plural = "provider performance summary"

    def __str__(self) -> str:
        return f"{self.provider_name} ({self.provider_type})"


class RetentionRun(models.Model):
    """One table's pass of the retention task (``deliveries.retention``): what it kept (days,
    cutoff) and what it deleted. The admin lists them, newest first: the retention settings
    in force and the last runs' figures on one page."""

    table_name = models.CharField(max_length=63)
    days = models.IntegerField(help_text="rows older than this many days are deleted; 0 = keep")
    cutoff = models.DateTimeField(null=True, blank=True)
    deleted = models.BigIntegerField(default=0)
    batches = models.IntegerField(default=0)
    finished = models.BooleanField(
        default=True, help_text="false: stopped at the run's time budget, more to delete"
    )
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        db_table = "retention_runs"
        ordering = ["-started_at", "table_name"]
        indexes = [SeedIndex(fields=["table_name", "-started_at"], name="idx_retention_runs_table")]

    def __str__(self) -> str:
        return f"{self.table_name} {self.started_at:%Y-%m-%d %H:%M}: {self.deleted} deleted"
