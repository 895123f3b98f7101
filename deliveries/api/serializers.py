"""API shapes. Serializers only check types; rules live in the services."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from notifyplatform.api_fields import StrictBooleanField
from notifyplatform.choices import Channel

from ..models import FrequencyPeriod, NotificationDelivery, UserNotificationPreference
from ..payloads import NotificationSerializer


class DeliverySerializer(serializers.ModelSerializer):
    decision = serializers.SerializerMethodField()

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
        ]
        read_only_fields = fields

    def get_decision(self, obj: NotificationDelivery) -> dict[str, Any] | None:
        return (obj.delivery_metadata or {}).get("decision")


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
    email = serializers.CharField(required=False, max_length=254)
    phone = serializers.CharField(required=False, max_length=32)
    locale = serializers.CharField(required=False, max_length=16, default="en")
    template_key = serializers.CharField(required=False, max_length=100)
    title = serializers.CharField(required=False, max_length=255)
    message = serializers.CharField(required=False)
    # DRF's serializer metaclass pops declared fields off the class, so this field never
    # shadows Field.context at run time; the stubs cannot see that
    context = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    channels = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, allow_empty=True
    )
    category = serializers.CharField(required=False, max_length=20)
    priority = serializers.CharField(required=False, max_length=10)
    scheduled_at = serializers.DateTimeField(required=False)
    expires_at = serializers.DateTimeField(required=False)
    action_url = serializers.CharField(required=False, max_length=2000)
    action_label = serializers.CharField(required=False, max_length=100)
    metadata = serializers.DictField(required=False)
    webhook_url = serializers.CharField(required=False, max_length=2000)
    idempotency_key = serializers.CharField(required=False, max_length=255)

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
        child=serializers.CharField(max_length=50), required=False, allow_null=True
    )
    blocked_providers = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, allow_null=True
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
