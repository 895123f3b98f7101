"""Vonage (Nexmo) SMS API.

Env: VONAGE_API_KEY, VONAGE_API_SECRET, and VONAGE_SIGNATURE_SECRET to verify
delivery receipts (signed messages; ``configuration["signature_method"]``, default
sha256). Configuration: ``from`` (sender), ``api_base_url`` (default
https://rest.nexmo.com), ``receipt_url``.

Vonage answers 200 even for errors; the outcome is ``messages[i].status``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from providers import errors, replay
from providers.adapters.sms.common import e164, receipt_url
from providers.base import (
    HttpAdapter,
    ReceiptMalformedError,
    ReceiptSignatureError,
    receipt_json,
)
from providers.errors import ProviderError
from providers.types import OutboundMessage, Receipt, ReceiptStatus, SendResult

if TYPE_CHECKING:
    from django.http import HttpRequest

# status → (code, retryable)
STATUS_CODES: dict[str, tuple[str, bool]] = {
    "1": (errors.RATE_LIMITED, True),
    "2": (errors.REJECTED, False),
    "3": (errors.INVALID_RECIPIENT, False),
    "4": (errors.AUTH_FAILED, False),
    "5": (errors.PROVIDER_UNAVAILABLE, True),
    "6": (errors.REJECTED, False),
    "7": (errors.INVALID_RECIPIENT, False),
    "8": (errors.AUTH_FAILED, False),
    "9": (errors.REJECTED, False),
    "14": (errors.AUTH_FAILED, False),
    "15": (errors.REJECTED, False),
    "29": (errors.INVALID_RECIPIENT, False),
    "33": (errors.INVALID_RECIPIENT, False),
}
BOUNCE_ERR_CODES = {"1", "3", "5", "6", "50"}  # unknown/absent subscriber, portability


def vonage_signature(secret: str, params: dict[str, Any], method: str) -> str:
    text = "".join(
        "&{}={}".format(key, str(params[key]).replace("&", "_").replace("=", "_"))
        for key in sorted(params)
        if key != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((text + secret).encode()).hexdigest()  # noqa: S324 - Vonage's scheme
    return hmac.new(secret.encode(), text.encode(), method).hexdigest()


class VonageAdapter(HttpAdapter):
    kind = "vonage"
    channel = "sms"
    default_base_url = "https://rest.nexmo.com"
    credential_env = {
        "api_key": "VONAGE_API_KEY",
        "api_secret": "VONAGE_API_SECRET",
        "signature_secret": "VONAGE_SIGNATURE_SECRET",
    }
    required_credentials = ("api_key", "api_secret")

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        to = e164(message.recipient).removeprefix("+")
        form: dict[str, str] = {
            "api_key": self.env("api_key"),
            "api_secret": self.env("api_secret"),
            "from": str(self.config.get("from") or "notify"),
            "to": to,
            "text": message.text,
            "client-ref": message.idempotency_key[:100],
        }
        if any(ord(ch) > 127 for ch in message.text):
            form["type"] = "unicode"
        callback = receipt_url(self.name, self.config)
        if callback:
            form["callback"] = callback
        response = self.request(
            "POST", "/sms/json", idempotency_key=message.idempotency_key, data=form
        )
        summary = self.raise_for_status(response)
        messages = (summary.get("body") or {}).get("messages") or []
        if not messages:
            raise errors.transient(f"{self.name}: empty answer", errors.UNKNOWN, response=summary)
        for part in messages:
            status = str(part.get("status"))
            if status != "0":
                raise self._status_error(status, part, summary)
        cost = Decimal(0)
        for part in messages:
            with contextlib.suppress(InvalidOperation):
                cost += Decimal(str(part.get("message-price") or 0))
        return SendResult(
            provider_message_id=messages[0].get("message-id"),
            response=summary,
            cost=cost or self.provider.cost_per_message,
        )

    def _status_error(
        self, status: str, part: dict[str, Any], summary: dict[str, Any]
    ) -> ProviderError:
        code, retryable = STATUS_CODES.get(status, (errors.REJECTED, False))
        text = f"{self.name}: status {status} {part.get('error-text', '')}".strip()
        if retryable:
            return errors.transient(text, code, response=summary)
        return errors.permanent(text, code, summary)

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        if request.content_type == "application/json":
            body = receipt_json(request)
            if not isinstance(body, dict):
                raise ReceiptMalformedError("a Vonage receipt is a JSON object")
            params = {k: str(v) for k, v in body.items()}
        else:
            params = request.POST.dict() or request.GET.dict()
        secret = self.env("signature_secret")
        method = str(self.config.get("signature_method") or "sha256")
        sig = params.get("sig", "").lower()
        if (
            not secret
            or not sig
            or not hmac.compare_digest(vonage_signature(secret, params, method), sig)
        ):
            raise ReceiptSignatureError("Vonage sig does not verify")
        replay.check_timestamp(params.get("timestamp"), provider=self.name)
        if params.get("nonce"):  # signed, one per callback
            scope = f"vonage:{self.name}"
            replay.claim_nonce(scope, params["nonce"])
            self.claimed_nonces.append((scope, params["nonce"]))
        status = params.get("status", "")
        err = params.get("err-code", "")
        normalised = {
            "delivered": ReceiptStatus.DELIVERED,
            "failed": ReceiptStatus.BOUNCED if err in BOUNCE_ERR_CODES else ReceiptStatus.FAILED,
            "expired": ReceiptStatus.FAILED,
            "rejected": ReceiptStatus.FAILED,
        }.get(status)
        if normalised is None or not params.get("messageId"):
            return []
        return [
            Receipt(
                provider_message_id=params["messageId"],
                status=normalised,
                event=status,
                recipient=params.get("msisdn"),
                error_code=f"VONAGE_{err}" if err and err != "0" else None,
                raw=params,
            )
        ]
