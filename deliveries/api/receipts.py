"""``POST /api/v1/providers/<name>/events/``: providers' signed status callbacks.

The provider's adapter verifies the callback (signature, timestamp within the tolerance,
one-time token) and normalises it into ``Receipt``s; the pipeline applies them
(``deliveries.services.receipts``). A plain Django view, because the signature covers the
raw body, which a DRF parser would consume first.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from notifyplatform.api_errors import error_body
from providers import replay, selectors
from providers.base import ReceiptMalformedError, ReceiptSignatureError
from providers.registry import UnknownAdapterError, get_adapter

from ..services.receipts import receipt_apply

logger = logging.getLogger(__name__)


def _refusal_code(exc: ReceiptSignatureError) -> str:
    if isinstance(exc, replay.ReceiptExpiredError):
        return "SIGNATURE_EXPIRED"
    if isinstance(exc, replay.ReceiptReplayedError):
        return "RECEIPT_REPLAYED"
    return "SIGNATURE_INVALID"


@method_decorator(csrf_exempt, name="dispatch")
class ProviderEventsView(View):
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
        except ReceiptMalformedError as exc:
            return JsonResponse(error_body("MALFORMED_REQUEST", str(exc)), status=400)
        except ReceiptSignatureError as exc:
            logger.warning("receipt for provider %s refused: %s", name, exc)
            return JsonResponse(error_body(_refusal_code(exc), str(exc)), status=403)
        except replay.ReceiptStoreUnavailableError:
            logger.warning("receipt for provider %s deferred: token store unavailable", name)
            response = JsonResponse(
                error_body("SERVICE_UNAVAILABLE", "receipts cannot be checked now; retry"),
                status=503,
            )
            response["Retry-After"] = "30"
            return response
        try:
            updated = sum(receipt_apply(provider_name=name, receipt=r) for r in receipts)
        except Exception:
            for scope, nonce in adapter.claimed_nonces:
                replay.release_nonce(scope, nonce)
            raise
        return JsonResponse({"received": len(receipts), "updated": updated})
