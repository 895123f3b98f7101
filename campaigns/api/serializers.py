"""A batch job as the staff API shows it: its counters, error summary and progress."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import NotificationBatchJob
from ..selectors import batch_progress, error_summary


class BatchJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    # the serializer's metaclass moves declared fields off the class: Serializer.errors stays
    errors = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta:
        model = NotificationBatchJob
        fields = [
            "id",
            "job_name",
            "job_type",
            "invitation_type",
            "status",
            "total_notifications",
            "processed_notifications",
            "successful_notifications",
            "failed_notifications",
            "job_config",
            "errors",
            "progress",
            "started_at",
            "completed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_progress(self, obj: NotificationBatchJob) -> dict[str, Any]:
        p = batch_progress(obj)
        return {
            k: p[k]
            for k in (
                "percent",
                "chunks_total",
                "chunks_done",
                "rate_per_second",
                "eta_seconds",
                "finished",
            )
        }

    def get_errors(self, obj: NotificationBatchJob) -> dict[str, Any]:
        return error_summary(obj)
