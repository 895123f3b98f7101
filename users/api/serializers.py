"""API shapes for the signed-in user, their API tokens and push devices."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from notifyplatform.api_fields import StrictCharField

from ..models import ApiToken, Device, User


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "display_name",
            "phone",
            "timezone",
            "locale",
            "region",
            "is_staff",
            "date_joined",
        ]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "key_prefix",
            "is_service",
            "is_usable",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    """A user creates plain tokens for themselves; service tokens are made by staff in the
    admin or with ``manage.py create_token --service``."""

    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only this once.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class DeviceSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "kind",
            "address",
            "subscription",
            "platform",
            "label",
            "active",
            "created_at",
            "last_seen_at",
            "disabled_at",
            "disabled_reason",
        ]
        read_only_fields = fields

    def get_active(self, device: Device) -> bool:
        return device.disabled_at is None


class WebPushKeysSerializer(serializers.Serializer):
    p256dh = StrictCharField(max_length=200)
    auth = StrictCharField(max_length=100)


class WebPushSubscriptionSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1024)
    keys = WebPushKeysSerializer()
    expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815  # the browser's PushSubscription.toJSON() key

    def validate_endpoint(self, value: str) -> str:
        if not value.startswith("https://"):
            raise serializers.ValidationError("Enter a valid URL: push services are https.")
        return value


class DeviceRegisterSerializer(serializers.Serializer):
    """``kind`` ``fcm`` with ``token``, or ``webpush`` with ``subscription`` (the browser's
    ``PushSubscription.toJSON()``)."""

    kind = serializers.ChoiceField(choices=Device.Kind.choices)
    # 255: a delivery's recipient column, which carries the FCM token to the adapter
    token = StrictCharField(
        max_length=255,
        required=False,
        trim_whitespace=True,
        help_text="kind fcm: the FCM registration token (required, only for fcm)",
    )
    subscription = WebPushSubscriptionSerializer(
        required=False,
        help_text="kind webpush: the browser's PushSubscription.toJSON() (required, only for "
        "webpush)",
    )
    platform = StrictCharField(
        max_length=20,
        required=False,
        allow_blank=True,
        default="",
        help_text="e.g. android, ios, web",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``label`` is also a Field attribute, so it cannot be declared on the class.
        fields = super().get_fields()
        fields["label"] = StrictCharField(
            max_length=200, required=False, allow_blank=True, default=""
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == Device.Kind.FCM:
            if not attrs.get("token"):
                raise serializers.ValidationError({"token": ["required for kind fcm"]})
            if "subscription" in attrs:
                raise serializers.ValidationError({"subscription": ["only for kind webpush"]})
        else:
            if "subscription" not in attrs:
                raise serializers.ValidationError({"subscription": ["required for kind webpush"]})
            if attrs.get("token"):
                raise serializers.ValidationError({"token": ["only for kind fcm"]})
        return attrs
