"""API shapes. Serializers only check types; rules live in the services."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifyplatform.api_fields import StrictBooleanField, StrictCharField
from notifyplatform.choices import Channel

from ..models import FrequencyPeriod, NotificationDelivery, UserNotificationPreference
from ..payloads import NotificationSerializer, RichContentField


class DeliverySerializer(serializers.ModelSerializer):
    decision = serializers.SerializerMethodField()
    rich_content_dropped = serializers.SerializerMethodField()

    class Meta:
        model = NotificationDelivery
        fields = [
            "id",
            "delivery_type",
            "status",
            "recipient",
            "recipient_type",
            "provider_name",
            "provider_message_id",
            "scheduled_at",
            "sent_at",
            "failed_at",
            "expires_at",
            "retry_count",
            "max_retries",
            "error_code",
            "error_message",
            "decision",
            "rich_content_dropped",
        ]
        read_only_fields = fields

    def get_decision(self, obj: NotificationDelivery) -> dict[str, Any] | None:
        return (obj.delivery_metadata or {}).get("decision")

    @extend_schema_field(
        serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    )
    def get_rich_content_dropped(self, obj: NotificationDelivery) -> list[dict[str, str]] | None:
        """The rich-content parts this channel cannot carry: [{part, reason}] (also in the
        trace, ``delivery_metadata.rules``)."""
        return (obj.delivery_metadata or {}).get("rich_content_dropped")


class NotificationWithDeliveriesSerializer(NotificationSerializer):
    """A notification with every delivery of it (``GET /notifications/``, ``/{id}/``)."""

    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(NotificationSerializer.Meta):
        fields = [*NotificationSerializer.Meta.fields, "deliveries"]
        read_only_fields = fields


class NotifyRequestSerializer(serializers.Serializer):
    """``POST /api/v1/notifications/``. Either ``user_id`` or an address-only recipient
    (``email`` and/or ``phone``); either ``template_key`` or ``title`` + ``message``."""

    user_id = serializers.UUIDField(required=False)
    email = StrictCharField(required=False, max_length=254)
    phone = StrictCharField(required=False, max_length=32)
    locale = StrictCharField(required=False, max_length=16, default="en")
    template_key = StrictCharField(required=False, max_length=100)
    title = StrictCharField(required=False, max_length=255)
    message = StrictCharField(required=False)
    # DRF's serializer metaclass pops declared fields off the class, so this field never
    # shadows Field.context at run time; the stubs cannot see that
    context = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    channels = serializers.ListField(
        child=StrictCharField(max_length=20), required=False, allow_empty=True
    )
    category = StrictCharField(required=False, max_length=20)
    priority = StrictCharField(required=False, max_length=10)
    scheduled_at = serializers.DateTimeField(required=False)
    expires_at = serializers.DateTimeField(required=False)
    action_url = StrictCharField(required=False, max_length=2000)
    action_label = StrictCharField(required=False, max_length=100)
    metadata = serializers.DictField(required=False)
    webhook_url = StrictCharField(required=False, max_length=2000)
    rich_content = RichContentField(
        required=False,
        allow_null=True,
        help_text="Image, buttons, text, HTML (README 'Rich content'); validated, stored and "
        "rendered per channel; a part a channel cannot carry is dropped and recorded in "
        "that delivery's rich_content_dropped",
    )
    idempotency_key = StrictCharField(required=False, max_length=255)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("user_id") and (attrs.get("email") or attrs.get("phone")):
            raise serializers.ValidationError(
                {"user_id": ["give either user_id or an email/phone address, not both"]}
            )
        if not attrs.get("user_id") and not (attrs.get("email") or attrs.get("phone")):
            raise serializers.ValidationError({"user_id": ["this field is required"]})
        expires_at, scheduled_at = attrs.get("expires_at"), attrs.get("scheduled_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise serializers.ValidationError({"expires_at": ["must be in the future"]})
        if expires_at is not None and scheduled_at is not None and scheduled_at >= expires_at:
            raise serializers.ValidationError(
                {"scheduled_at": ["must be before expires_at (it would expire unsent)"]}
            )
        return attrs


class NotifyResponseSerializer(serializers.Serializer):
    """What ``POST /notifications/`` answers: the notification (None for an address-only
    recipient), its deliveries, and whether this call created it (False on an idempotent
    repeat)."""

    notification = NotificationSerializer(allow_null=True)
    deliveries = DeliverySerializer(many=True)
    created = serializers.BooleanField()


class PreferenceSerializer(serializers.ModelSerializer):
    delivery_method = serializers.ChoiceField(choices=Channel.choices)
    is_enabled = StrictBooleanField(required=False, default=True)
    frequency_period = serializers.ChoiceField(
        choices=FrequencyPeriod.choices, required=False, default=FrequencyPeriod.DAILY
    )
    # an integer column: a larger value would be a DataError (500), not a 400
    frequency_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2_147_483_647
    )
    preferred_providers = serializers.ListField(
        child=StrictCharField(max_length=50), required=False, allow_null=True
    )
    blocked_providers = serializers.ListField(
        child=StrictCharField(max_length=50), required=False, allow_null=True
    )

    class Meta:
        model = UserNotificationPreference
        fields = [
            "id",
            "invitation_type",
            "delivery_method",
            "conversation_style",
            "is_enabled",
            "frequency_limit",
            "frequency_period",
            "quiet_hours_start",
            "quiet_hours_end",
            "timezone",
            "preferred_providers",
            "blocked_providers",
            "delivery_preferences",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # the (user, type, method) uniqueness, the time zone, quiet hours and over_cap are
        # rules of the service (services/preferences.py), shared with the preference page
        validators: list[Any] = []
