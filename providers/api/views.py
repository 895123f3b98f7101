"""Providers API: staff-only read access to the registry and health metrics, and the
public receipt endpoint providers post status callbacks to."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import permissions, viewsets

from notifyplatform.api_errors import error_body
from providers import selectors
from providers.api.serializers import ProviderHealthMetricSerializer, ProviderSerializer
from providers.base import ReceiptSignatureError
from providers.registry import UnknownAdapterError, get_adapter
from providers.services import receipt_apply

logger = logging.getLogger(__name__)


class ProviderViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProviderSerializer
    permission_classes = [permissions.IsAdminUser]
    lookup_field = "provider_name"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.provider_list(provider_type=self.request.query_params.get("provider_type"))


class ProviderHealthViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProviderHealthMetricSerializer
    permission_classes = [permissions.IsAdminUser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.provider_health_list(name=self.request.query_params.get("provider_name"))


@method_decorator(csrf_exempt, name="dispatch")
class ProviderEventsView(View):
    """``POST /api/v1/providers/<name>/events/``: a plain Django view, because the
    signature covers the raw body, which a DRF parser would consume first."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, name: str) -> JsonResponse:
        provider = selectors.provider_get(name=name)
        if provider is None:
            return JsonResponse(error_body("NOT_FOUND", f"no provider named {name!r}"), status=404)
        try:
            adapter = get_adapter(provider)
            receipts = adapter.parse_receipts(request)
        except UnknownAdapterError as exc:
            return JsonResponse(error_body("NOT_FOUND", str(exc)), status=404)
        except ReceiptSignatureError as exc:
            logger.warning("receipt for provider %s refused: %s", name, exc)
            return JsonResponse(error_body("SIGNATURE_INVALID", str(exc)), status=403)
        updated = sum(receipt_apply(provider=provider, receipt=r) for r in receipts)
        return JsonResponse({"received": len(receipts), "updated": updated})
