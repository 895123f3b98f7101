"""Providers API: staff-only read access to the registry and health metrics. (The public
receipt endpoint is the pipeline's: ``deliveries.api.receipts``.)"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from providers import selectors
from providers.api.serializers import (
    ProviderHealthMetricSerializer,
    ProviderSerializer,
    ProviderUpdateSerializer,
)
from providers.filters import ProviderHealthFilter
from providers.models import Provider, ProviderHealthMetric
from providers.services import (
    provider_audit_configuration,
    provider_sensitive_values,
)

logger = logging.getLogger(__name__)


class ProviderViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Staff: the provider registry. ``PATCH`` enables/disables a provider or changes its
    priority; routing reads both on every send, so it takes effect for the next delivery."""

    serializer_class = ProviderSerializer
    permission_classes = [permissions.IsAdminUser]
    lookup_field = "provider_name"
    queryset = Provider.objects.none()
    filterset_fields = ["provider_type", "is_enabled", "is_healthy"]
    ordering_fields = ["provider_name", "priority", "cost_per_message"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Provider]:
        return selectors.provider_list()

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action in ("update", "partial_update"):
            return ProviderUpdateSerializer
        return ProviderSerializer

    @extend_schema(request=ProviderUpdateSerializer, responses={200: ProviderSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        provider = self.get_object()
        serializer = ProviderUpdateSerializer(
            data=request.data, partial=True, context={"provider": provider}
        )
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data:
            before = provider_sensitive_values(provider)
            with transaction.atomic():
                Provider.objects.filter(pk=provider.pk).update(
                    **serializer.validated_data, updated_at=timezone.now()
                )
                provider.refresh_from_db()
                provider_audit_configuration(
                    provider=provider, before=before, actor=request.user, via="API"
                )
        return Response(ProviderSerializer(provider).data)


class ProviderHealthViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProviderHealthMetricSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = ProviderHealthMetric.objects.none()
    filterset_class = ProviderHealthFilter

    def get_queryset(self) -> QuerySet[ProviderHealthMetric]:
        return selectors.provider_health_list()
