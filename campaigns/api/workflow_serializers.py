"""Serializers of the workflow API (``campaigns.api.workflows``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Workflow, WorkflowRun, WorkflowRunStep


class WorkflowSerializer(serializers.ModelSerializer):
    """A workflow with its current version's steps. Writing ``steps`` adds a version (when
    they differ); runs keep the version they started with."""

    steps = serializers.JSONField(
        required=False, help_text="The ordered steps (see README 'Workflows')."
    )
    version = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = [
            "key",
            "name",
            "description",
            "is_active",
            "steps",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "key": {"validators": []},  # uniqueness is the service's (a clear 400)
            "name": {"required": False},
        }

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_version(self, workflow: Workflow) -> int | None:
        current = workflow.versions.order_by("-version").first()
        return current.version if current else None

    def to_representation(self, workflow: Workflow) -> dict[str, Any]:
        data = super().to_representation(workflow)
        current = workflow.versions.order_by("-version").first()
        data["steps"] = current.steps if current else []
        return data


class TriggerRequestSerializer(serializers.Serializer):
    user_id = serializers.UUIDField(required=False, help_text="One recipient")
    recipients = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="Several recipients (user ids)"
    )
    audience = serializers.CharField(
        required=False,
        max_length=150,
        help_text="A saved audience's id or name: one run per user it selects now",
    )
    data = serializers.DictField(  # type: ignore[assignment]  # the request's "data" field
        required=False, help_text="Trigger data, for templates/steps"
    )
    send_at = serializers.CharField(
        required=False,
        help_text="ISO 8601 with a zone, or the recipient's wall clock: '09:00 local',"
        " '2026-12-03T09:00 local'",
    )
    cancellation_key = serializers.CharField(required=False, max_length=255)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        one, many = attrs.get("user_id"), attrs.get("recipients")
        given = [one is not None, many is not None, attrs.get("audience") is not None]
        if sum(given) != 1:
            raise serializers.ValidationError(
                {
                    "recipients": [
                        "give exactly one of user_id, recipients (a list of user ids) or audience"
                    ]
                }
            )
        if many is not None and not many:
            raise serializers.ValidationError({"recipients": ["must not be empty"]})
        if attrs.get("audience") is None:
            attrs["recipients"] = [one] if one is not None else many
        attrs.pop("user_id", None)
        return attrs


class RunSummarySerializer(serializers.ModelSerializer):
    workflow = serializers.CharField(source="workflow.key", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)

    class Meta:
        model = WorkflowRun
        fields = ["id", "workflow", "version", "user", "state", "decision", "step_index"]


class TriggerResponseSerializer(serializers.Serializer):
    runs = RunSummarySerializer(many=True)
    created = serializers.BooleanField()


class CancelRequestSerializer(serializers.Serializer):
    cancellation_key = serializers.CharField(max_length=255)
    workflow = serializers.CharField(required=False, help_text="Only runs of this workflow key")
    recipients = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="Only these users' runs"
    )


class CancelResponseSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField()


class RunStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowRunStep
        fields = [
            "index",
            "step_type",
            "state",
            "decision",
            "due_at",
            "started_at",
            "finished_at",
            "attempts",
            "group_key",
            "detail",
            "notification_ids",
            "delivery_ids",
        ]


class RunSerializer(RunSummarySerializer):
    steps = RunStepSerializer(many=True, read_only=True)

    class Meta(RunSummarySerializer.Meta):
        fields = [
            *RunSummarySerializer.Meta.fields,
            "data",
            "variables",
            "cancellation_key",
            "send_at",
            "created_at",
            "updated_at",
            "finished_at",
            "steps",
        ]
