"""API shapes for the signed-in user and their API tokens."""

from __future__ import annotations

from rest_framework import serializers

from ..models import ApiToken, User


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
