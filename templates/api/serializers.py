"""API shapes for notification templates and their preview."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from notifyplatform.api_fields import StrictBooleanField, StrictCharField
from notifyplatform.choices import Channel

from .. import selectors
from ..models import NotificationTemplate
from ..rendering.errors import TemplateValidationError
from ..rendering.validation import validate_template
from ..rich import rich_template_problems

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
    rich_content_template = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="Rich content (README 'Rich content': image, buttons, text, html) whose "
        "strings may use {{ variables }}; a notify() call's own rich_content wins",
    )
    track_links = StrictBooleanField(
        required=False,
        help_text="false: links in this template's messages stay raw (default true: the "
        "notification's own URLs in bodies and the in-app message become tracked links)",
    )
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
            "rich_content_template",
            "track_links",
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

    def validate_rich_content_template(self, value: Any) -> Any:
        problems = rich_template_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self._check_templates(attrs)
        attrs["template_key"] = self._free_key(attrs)
        return attrs

    def _current(self, attrs: dict[str, Any], name: str, default: Any = None) -> Any:
        """The value after this request: from ``attrs``, else from the row being edited."""
        return attrs.get(name, getattr(self.instance, name, default))

    def _check_templates(self, attrs: dict[str, Any]) -> None:
        try:
            validate_template(
                subject=self._current(attrs, "subject_template"),
                content=self._current(attrs, "content_template", "") or "",
                html=self._current(attrs, "html_template"),
                template_variables=self._current(attrs, "template_variables"),
            )
        except TemplateValidationError as exc:
            raise serializers.ValidationError(exc.errors) from exc

    def _free_key(self, attrs: dict[str, Any]) -> str:
        """The derived ``template_key``, unless another row already has it."""
        key = NotificationTemplate.make_key(
            self._current(attrs, "invitation_type"),
            self._current(attrs, "delivery_type"),
            self._current(attrs, "language", "en") or "en",
        )
        editing = None if self.instance is None else self.instance.pk
        if selectors.template_key_taken(template_key=key, exclude_id=editing):
            raise serializers.ValidationError(
                {"language": [f"a template {key!r} already exists for this type and channel"]}
            )
        return key


class TemplatePreviewRequestSerializer(serializers.Serializer):
    # The API field is called "context". DRF's metaclass moves declared fields off the class,
    # so Serializer.context is untouched at runtime; only the stubs see a clash.
    context = serializers.DictField(  # type: ignore[assignment]
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
    context = serializers.DictField()  # type: ignore[assignment]  # see above
    variants = RenderedVariantSerializer(many=True)
