"""Staff-only suppression list: ``GET/POST /api/v1/suppressions/``, ``GET
/api/v1/suppressions/{id}/``, ``POST /api/v1/suppressions/{id}/lift/``.

POST suppresses an address (reason ``manual`` unless given; 201, or 200 with the active row
when it is already suppressed); ``lift/`` lifts it. Lifting is an action, not a DELETE: the
row stays readable (``active: false``, ``lifted_at``, ``lifted_by``) as the list's history,
so a DELETE that left the resource in place would break HTTP's contract. Both go through
``deliveries.services.suppression``, as the admin does.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notifyplatform.choices import Channel

from ..models import Suppression, SuppressionReason
from ..selectors import normalise_address, suppression_list
from ..services.suppression import suppression_add, suppression_lift


class SuppressionSerializer(serializers.ModelSerializer[Suppression]):
    active = serializers.SerializerMethodField()
    created_by = serializers.CharField(
        source="created_by.email", default=None, allow_null=True, read_only=True
    )
    lifted_by = serializers.CharField(
        source="lifted_by.email", default=None, allow_null=True, read_only=True
    )

    class Meta:
        model = Suppression
        fields = [
            "id",
            "channel",
            "address",
            "reason",
            "category",
            "active",
            "delivery_id",
            "receipt",
            "created_by",
            "created_at",
            "lifted_at",
            "lifted_by",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "reason": {
                "help_text": "hard_bounce or complaint (a signed receipt), unsubscribe "
                "(one-click or the ESP's event), manual (staff)"
            },
            "category": {
                "help_text": "Empty: every notification to the address; set: only that "
                "category (an unsubscribe is scoped to its email's category)"
            },
        }

    def get_active(self, row: Suppression) -> bool:
        return row.lifted_at is None


class SuppressionCreateSerializer(serializers.Serializer[Any]):
    channel = serializers.ChoiceField(choices=[c for c in Channel.values if c != Channel.IN_APP])
    address = serializers.CharField(max_length=255, trim_whitespace=True)
    reason = serializers.ChoiceField(
        choices=SuppressionReason.values, default=SuppressionReason.MANUAL
    )


_FILTERS = [
    OpenApiParameter("channel", OpenApiTypes.STR, description="Only this channel."),
    OpenApiParameter("address", OpenApiTypes.STR, description="Only this address (normalised)."),
    OpenApiParameter("active", OpenApiTypes.BOOL, description="true: not lifted; false: lifted."),
]


@extend_schema_view(list=extend_schema(parameters=_FILTERS))
class SuppressionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Suppression],
):
    serializer_class = SuppressionSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = Suppression.objects.all()
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        rows = suppression_list()
        if self.action != "list":
            return rows
        params = self.request.query_params
        channel = params.get("channel")
        if channel:
            rows = rows.filter(channel=channel)
        address = params.get("address")
        if address:
            forms = {normalise_address(c, address) for c in ([channel] if channel else Channel)}
            rows = rows.filter(address__in=forms)
        active = params.get("active")
        if active is not None:
            wanted = active.lower()
            if wanted not in ("true", "false", "1", "0"):
                raise serializers.ValidationError({"active": ["must be true or false"]})
            rows = rows.filter(lifted_at__isnull=wanted in ("true", "1"))
        return rows.order_by("-created_at", "-id")

    @extend_schema(
        request=SuppressionCreateSerializer,
        responses={201: SuppressionSerializer, 200: SuppressionSerializer},
    )
    def create(self, request: Request) -> Response:
        given = SuppressionCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        row, created = suppression_add(
            channel=given.validated_data["channel"],
            address=given.validated_data["address"],
            reason=given.validated_data["reason"],
            by=request.user,
        )
        return Response(
            SuppressionSerializer(row).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=None, responses={200: SuppressionSerializer})
    @action(detail=True, methods=["post"])
    def lift(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Lift the suppression (idempotent: lifting a lifted one changes nothing)."""
        row = self.get_object()
        suppression_lift(row, by=request.user)
        return Response(SuppressionSerializer(row).data)
