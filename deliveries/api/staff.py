"""Staff-only delivery operations: list/filter every delivery, retry and cancel one.

Retry and cancel go through ``deliveries.services.operations`` (the admin console's actions
call the same functions); a delivery whose state does not allow the action is 409 with the
service's error code and nothing changes.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notifyplatform.schema import error_response

from ..filters import DeliveryFilter
from ..models import NotificationDelivery
from ..services.operations import delivery_cancel, delivery_retry
from .serializers import DeliverySerializer


class StaffDeliverySerializer(DeliverySerializer):
    notification_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta(DeliverySerializer.Meta):
        fields = [
            *DeliverySerializer.Meta.fields,
            "notification_id",
            "invitation_id",
            "provider_type",
            "provider_priority",
            "cost_per_message",
            "delivered_at",
            "provider_response",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = StaffDeliverySerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_class = DeliveryFilter
    ordering_fields = ["created_at", "sent_at", "scheduled_at", "id", "cost_per_message"]
    ordering = ["-created_at", "-id"]
    queryset = NotificationDelivery.objects.all()
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return NotificationDelivery.objects.all()

    @extend_schema(
        request=None,
        responses={200: StaffDeliverySerializer, 409: error_response("Not in a retryable state.")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        delivery = delivery_retry(delivery=self.get_object())
        return Response(StaffDeliverySerializer(delivery).data)

    @extend_schema(
        request=None,
        responses={200: StaffDeliverySerializer, 409: error_response("Not pending.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        delivery = delivery_cancel(delivery=self.get_object())
        return Response(StaffDeliverySerializer(delivery).data)
