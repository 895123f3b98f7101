"""API shapes for notification templates and their preview."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from notifyplatform.api_fields import StrictBooleanField, StrictCharField
from notifyplatform.choices import Channel

from ..models import NotificationTemplate
from ..rendering import TemplateValidationError, validate_template

LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
TYPE_PATTERN = r"^[a-z0-9_]{1,50}$"


class TemplateSerializer(serializers.ModelSerializer):
    """``template_key`` is derived (``<type>.<channel>.<language>``): the pipeline reads an
    exact key that way, so it cannot be chosen freely."""

    invitation_type = serializers.RegexField(TYPE_PATTERN, max_length=50)
    delivery_type = serializers.ChoiceField(choices=Channel.choices)
    language = serializers.RegexField(LANGUAGE_PATTERN, max_length=10, required=False)
    template_variables = serializers.JSONField(required=False, allow_null=True)
    provider_specific_config = serializers.JSONField(required=False, allow_null=True)
    is_active = StrictBooleanField(required=False)
    # the model's text columns (template_name, subject/content/html templates) as strict strings
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    class Meta:
        model = NotificationTemplate
        fields = [
            "id",
            "template_key",
            "template_name",
            "invitation_type",
            "delivery_type",
            "language",
            "subject_template",
            "content_template",
            "html_template",
            "template_variables",
            "provider_specific_config",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "template_key", "created_at", "updated_at"]
        # uniqueness of (type, channel, language) is checked in validate() through the key,
        # which also works for partial updates (DRF's validator would demand all three)
        validators: list[Any] = []

    def validate_provider_specific_config(self, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(name: str, default: Any = None) -> Any:
            return attrs.get(name, getattr(self.instance, name, default))

        try:
            validate_template(
                subject=current("subject_template"),
                content=current("content_template", "") or "",
                html=current("html_template"),
                template_variables=current("template_variables"),
            )
        except TemplateValidationError as exc:
            raise serializers.ValidationError(exc.errors) from exc
        key = NotificationTemplate.make_key(
            current("invitation_type"), current("delivery_type"), current("language", "en") or "en"
        )
        clash = NotificationTemplate.objects.filter(template_key=key)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {"language": [f"a template {key!r} already exists for this type and channel"]}
            )
        attrs["template_key"] = key
        return attrs


class TemplatePreviewRequestSerializer(serializers.Serializer):
    context = serializers.DictField(
        required=False,
        default=dict,
        help_text="Values overriding the declared examples of template_variables.",
    )
    all_variants = StrictBooleanField(
        required=False,
        default=False,
        help_text="Also render every other channel and language of this notification type.",
    )


class RenderedVariantSerializer(serializers.Serializer):
    template_id = serializers.IntegerField()
    template_key = serializers.CharField()
    delivery_type = serializers.CharField()
    language = serializers.CharField()
    subject = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_null=True)
    html = serializers.CharField(allow_null=True)
    sms_segments = serializers.IntegerField(allow_null=True)
    error = serializers.DictField(allow_null=True)


class TemplatePreviewSerializer(serializers.Serializer):
    context = serializers.DictField()
    variants = RenderedVariantSerializer(many=True)
