"""Staff API for batch jobs: ``/api/v1/batch-jobs/`` (list/retrieve, filter by ``status``
and ``job_type``), ``POST …/{id}/cancel/`` and ``POST …/{id}/resume/``. Starting a job stays
with the command and the admin (it may read a server-side CSV file)."""

from __future__ import annotations

from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..filters import BatchJobFilter
from ..models import NotificationBatchJob
from ..services import batch_cancel, batch_resume
from .serializers import BatchJobSerializer


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
