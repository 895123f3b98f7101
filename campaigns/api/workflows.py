"""Workflow API.

* ``/workflows/`` (staff): list, create, retrieve, update by ``key``; writing ``steps`` adds a
  version, validated (400 naming ``steps[i].field``).
* ``POST /workflows/{key}/trigger/`` (staff or a service API token): start runs for one user,
  a list, or a saved ``audience`` (id or name; larger fan-outs: a broadcast), with ``data``, ``send_at`` and ``cancellation_key``; ``Idempotency-Key`` is
  scoped to the caller like ``POST /notifications/``.
* ``POST /workflows/cancel/`` (staff or a service token): cancel runs by cancellation key.
* ``/workflow-runs/`` and ``/workflow-runs/{id}/``: a run with its steps, states, times and
  decisions — a user sees their own runs, staff every run.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deliveries.services.idempotency import request_fingerprint
from notifyplatform.schema import error_response

from ..models import Workflow, WorkflowRun
from ..services import workflows
from .workflow_serializers import (
    CancelRequestSerializer,
    CancelResponseSerializer,
    RunSerializer,
    TriggerRequestSerializer,
    TriggerResponseSerializer,
    WorkflowSerializer,
)


class CanTrigger(permissions.BasePermission):
    """Staff users, or a service API token (``ApiToken.is_service``)."""

    message = "Triggering workflows needs a staff account or a service API token."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return bool(user.is_staff or getattr(request.auth, "is_service", False))


def _caller_scope(request: Request) -> str:
    token = request.auth
    if token is not None and getattr(token, "pk", None) is not None:
        return f"token:{token.pk}"
    return f"user:{request.user.pk}"


class WorkflowViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = WorkflowSerializer
    queryset = Workflow.objects.order_by("key")
    lookup_field = "key"
    lookup_value_regex = "[a-z0-9][a-z0-9_-]*"
    filterset_fields = ["is_active"]
    ordering_fields = ["key", "created_at"]

    def get_permissions(self) -> list[Any]:
        if self.action in ("trigger", "cancel"):
            return [CanTrigger()]
        return [permissions.IsAdminUser()]

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = workflows.workflow_save(
            key=data["key"],
            name=data.get("name"),
            description=data.get("description"),
            is_active=data.get("is_active"),
            steps=data.get("steps"),
            by=self.request.user,
            create=True,
        )

    def perform_update(self, serializer: Any) -> None:
        data = serializer.validated_data
        if "key" in data and data["key"] != serializer.instance.key:
            raise workflows.WorkflowError(
                "INVALID_WORKFLOW", "a workflow's key cannot change", "key"
            )
        serializer.instance = workflows.workflow_save(
            key=serializer.instance.key,
            name=data.get("name"),
            description=data.get("description"),
            is_active=data.get("is_active"),
            steps=data.get("steps"),
            by=self.request.user,
            create=False,
        )

    @extend_schema(
        request=TriggerRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Scoped to the caller and kept for NP_IDEMPOTENCY_KEY_TTL_HOURS: a"
                " repeat with the same body returns the first runs (200); the same key with"
                " another body is 422 IDEMPOTENCY_KEY_REUSED.",
            )
        ],
        responses={
            201: TriggerResponseSerializer,
            200: TriggerResponseSerializer,
            404: error_response("No such workflow."),
            409: error_response("The workflow is not active."),
            422: error_response("The Idempotency-Key was used with a different request."),
        },
    )
    @action(detail=True, methods=["post"])
    def trigger(self, request: Request, key: str | None = None) -> Response:
        serializer = TriggerRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        kwargs = {
            "recipients": data.get("recipients"),
            "audience": data.get("audience"),
            "data": data.get("data") or {},
            "send_at": data.get("send_at"),
            "cancellation_key": data.get("cancellation_key"),
        }
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None:
            result = workflows.workflow_trigger_idempotent(
                str(key),
                scope=_caller_scope(request),
                idempotency_key=idempotency_key,
                fingerprint=request_fingerprint(
                    method=request.method or "POST", path=request.path, body=request.data
                ),
                **kwargs,
            )
        else:
            result = workflows.workflow_trigger(str(key), **kwargs)
        body = TriggerResponseSerializer({"runs": result.runs, "created": result.created}).data
        return Response(
            body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )

    @extend_schema(request=CancelRequestSerializer, responses={200: CancelResponseSerializer})
    @action(detail=False, methods=["post"])
    def cancel(self, request: Request) -> Response:
        serializer = CancelRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        cancelled = workflows.workflow_cancel(
            cancellation_key=data["cancellation_key"],
            workflow_key=data.get("workflow"),
            user_ids=data.get("recipients"),
        )
        return Response({"cancelled": cancelled})


class WorkflowRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: your own (staff: all), newest first; ``POST …/{id}/cancel/`` (staff)."""

    serializer_class = RunSerializer
    queryset = WorkflowRun.objects.none()
    filterset_fields = ["state", "cancellation_key"]
    ordering_fields = ["id", "created_at"]

    def get_permissions(self) -> list[Any]:
        if self.action == "cancel":
            return [permissions.IsAdminUser()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self) -> QuerySet[WorkflowRun]:
        runs = WorkflowRun.objects.select_related("workflow", "version").prefetch_related("steps")
        if not self.request.user.is_staff:
            runs = runs.filter(user_id=str(self.request.user.pk))
        return runs.order_by("-id")

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        run = self.get_object()
        workflows.runs_cancel([run.pk])
        return Response(RunSerializer(self.get_queryset().get(pk=run.pk)).data)
