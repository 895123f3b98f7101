"""Broadcasts over the staff API: ``POST /api/v1/broadcasts/`` (a ``template_key`` or a
``workflow_key`` to start per recipient; ``Idempotency-Key`` handled
like the notifications API), ``GET …/{id}/`` with the job's progress, ``POST …/{id}/cancel/``
and ``POST …/cancel/`` (every broadcast with a ``cancellation_key`` that has not started)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deliveries.services.idempotency import request_fingerprint
from notifyplatform.schema import error_response
from users.models import User

from ..models import Audience, Broadcast
from ..selectors import batch_progress
from ..services import broadcast_cancel, broadcast_create, broadcasts_cancel_by_key


class BroadcastRequestSerializer(serializers.Serializer):
    audience = serializers.PrimaryKeyRelatedField(queryset=Audience.objects.all())
    template_key = serializers.CharField(max_length=100, required=False)
    workflow_key = serializers.CharField(
        max_length=100, required=False, help_text="instead of template_key: start this workflow"
    )
    channels = serializers.ListField(child=serializers.CharField(), required=False)
    context = serializers.DictField(required=False)  # type: ignore[assignment]
    name = serializers.CharField(max_length=255, required=False)
    send_at = serializers.DateTimeField(required=False, help_text="absolute time, with offset")
    send_at_local = serializers.CharField(
        required=False,
        help_text="YYYY-MM-DDTHH:MM, no offset: that time in each recipient's timezone",
    )
    cancellation_key = serializers.CharField(max_length=255, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("template_key" in attrs) == ("workflow_key" in attrs):
            raise serializers.ValidationError(
                {"template_key": ["give template_key or workflow_key (exactly one)"]}
            )
        return attrs


class BroadcastCancelByKeySerializer(serializers.Serializer):
    cancellation_key = serializers.CharField(max_length=255)


class BroadcastSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Broadcast
        fields = [
            "id",
            "name",
            "audience",
            "template_key",
            "workflow_key",
            "channels",
            "context",
            "send_at",
            "local_send_at",
            "starts_at",
            "status",
            "cancellation_key",
            "job",
            "error",
            "progress",
            "started_at",
            "cancelled_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_progress(self, obj: Broadcast) -> dict[str, Any] | None:
        """The job's figures (total, processed, successful, failed, percent, chunks, rate,
        status…); null until the broadcast has started."""
        return batch_progress(obj.job) if obj.job is not None else None


class BroadcastViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = BroadcastSerializer
    queryset = Broadcast.objects.select_related("job").order_by("-id")
    filterset_fields = ["status", "cancellation_key"]
    ordering_fields = ["id", "starts_at", "created_at"]

    @extend_schema(
        request=BroadcastRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Scoped to the caller (API token or user): a repeat with the same"
                " body returns the first broadcast (200); another body is 422"
                " IDEMPOTENCY_KEY_REUSED.",
            )
        ],
        responses={
            201: BroadcastSerializer,
            200: BroadcastSerializer,
            422: error_response("The Idempotency-Key was used with a different request."),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = BroadcastRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        key = request.headers.get("Idempotency-Key")
        idempotency = None
        if key:
            if len(key) > 255:
                raise serializers.ValidationError({"idempotency_key": ["at most 255 characters"]})
            fingerprint = request_fingerprint(
                method=request.method or "POST", path=request.path, body=request.data
            )
            idempotency = (_caller_scope(request), key, fingerprint)
        broadcast, created = broadcast_create(
            audience=data.pop("audience"),
            template_key=data.pop("template_key", None),
            workflow_key=data.pop("workflow_key", None),
            created_by=_staff(request),
            idempotency=idempotency,
            **data,
        )
        broadcast.refresh_from_db()
        return Response(
            BroadcastSerializer(broadcast).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=None,
        responses={200: BroadcastSerializer, 409: error_response("It has already finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        broadcast = broadcast_cancel(self.get_object().pk)
        return Response(BroadcastSerializer(broadcast).data)

    @extend_schema(
        operation_id="broadcasts_cancel_by_key",
        request=BroadcastCancelByKeySerializer,
        responses={
            200: inline_serializer(
                "BroadcastsCancelled",
                {"cancelled": serializers.ListField(child=serializers.IntegerField())},
            )
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="cancel",
        url_name="cancel-by-key",
        filter_backends=[],
    )
    def cancel_by_key(self, request: Request) -> Response:
        given = BroadcastCancelByKeySerializer(data=request.data)
        given.is_valid(raise_exception=True)  # a 400 naming the field, never a 500 (NUL bytes)
        rows = broadcasts_cancel_by_key(given.validated_data["cancellation_key"])
        return Response({"cancelled": [row.pk for row in rows]})


def _staff(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # IsAdminUser let only a signed-in staff user in
    return user


def _caller_scope(request: Request) -> str:
    """Whose idempotency keys these are: the API token's, else the signed-in user's."""
    token = request.auth
    if token is not None and getattr(token, "pk", None) is not None:
        return f"token:{token.pk}"
    return f"user:{request.user.pk}"
