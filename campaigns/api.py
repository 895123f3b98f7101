"""Staff API for batch jobs: ``/api/v1/batch-jobs/`` (list/retrieve, filter by ``status``
and ``job_type``), ``POST …/{id}/cancel/`` and ``POST …/{id}/resume/``. Starting a job stays
with the command and the admin (it may read a server-side CSV file)."""

from __future__ import annotations

from typing import Any

import django_filters
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from .models import BatchJobStatus, BatchJobType, NotificationBatchJob
from .selectors import batch_progress, error_summary
from .services import batch_cancel, batch_resume


class BatchJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BatchJobStatus.choices)
    job_type = django_filters.ChoiceFilter(choices=BatchJobType.choices)

    class Meta:
        model = NotificationBatchJob
        fields = ["status", "job_type"]


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


class BatchJobViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = BatchJobSerializer
    filterset_class = BatchJobFilter
    ordering_fields = ["created_at", "started_at", "id"]
    queryset = NotificationBatchJob.objects.order_by("-created_at", "-id")

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        job = batch_cancel(job.pk)
        return Response(BatchJobSerializer(job).data)

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        job, count = batch_resume(job.pk)
        return Response({**BatchJobSerializer(job).data, "chunks_enqueued": count})


router = DefaultRouter()
router.register("batch-jobs", BatchJobViewSet, basename="batch-job")
urlpatterns = router.urls
