"""Twilio Programmable Messaging (REST API 2010-04-01).

Env: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (rename per row with
``configuration["credential_env"]``). Configuration: ``from_number`` or
``messaging_service_sid``, ``api_base_url`` (default https://api.twilio.com),
``receipt_url``. Status callbacks are verified with ``X-Twilio-Signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import httpx

from providers import errors
from providers.adapters.sms.common import e164, receipt_url
from providers.base import HttpAdapter, ReceiptSignatureError
from providers.types import OutboundMessage, Receipt, ReceiptStatus, SendResult

if TYPE_CHECKING:
    from django.http import HttpRequest

# Twilio error codes that mean the number itself is wrong or cannot receive.
INVALID_RECIPIENT_CODES = {21211, 21214, 21217, 21407, 21408, 21612, 21614, 21610}
# Delivery error codes (status callbacks) that mean the handset/number is unreachable.
BOUNCE_CODES = {"30003", "30005", "30006"}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


class TwilioAdapter(HttpAdapter):
    kind = "twilio"
    channel = "sms"
    default_base_url = "https://api.twilio.com"
    idempotency_header = "I-Twilio-Idempotency-Token"
    credential_env = {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN"}
    required_credentials = ("account_sid", "auth_token")

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        to = e164(message.recipient)
        sid, token = self.env("account_sid"), self.env("auth_token")
        form: dict[str, str] = {"To": to, "Body": message.text}
        if self.config.get("messaging_service_sid"):
            form["MessagingServiceSid"] = str(self.config["messaging_service_sid"])
        if self.config.get("from_number"):
            form["From"] = str(self.config["from_number"])
        callback = receipt_url(self.name, self.config)
        if callback:
            form["StatusCallback"] = callback
        response = self.request(
            "POST",
            f"/2010-04-01/Accounts/{sid}/Messages.json",
            idempotency_key=message.idempotency_key,
            data=form,
            auth=(sid, token),
        )
        summary = self.raise_for_status(response)
        body = summary.get("body") or {}
        return SendResult(
            provider_message_id=body.get("sid"),
            response=summary,
            cost=_price(body.get("price")) or self.provider.cost_per_message,
        )

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        body = summary.get("body")
        code = body.get("code") if isinstance(body, dict) else None
        if code in INVALID_RECIPIENT_CODES:
            return errors.INVALID_RECIPIENT
        if code == 20003:
            return errors.AUTH_FAILED
        return None

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        params = {key: request.POST.get(key, "") for key in request.POST}
        signature = request.headers.get("X-Twilio-Signature", "")
        token = self.env("auth_token")
        urls = [u for u in (receipt_url(self.name, self.config), request.build_absolute_uri()) if u]
        if (
            not token
            or not signature
            or not any(
                hmac.compare_digest(twilio_signature(token, url, params), signature) for url in urls
            )
        ):
            raise ReceiptSignatureError("X-Twilio-Signature does not verify")
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        code = params.get("ErrorCode") or None
        normalised = {
            "delivered": ReceiptStatus.DELIVERED,
            "read": ReceiptStatus.DELIVERED,
            "failed": ReceiptStatus.FAILED,
            "undelivered": ReceiptStatus.FAILED,
        }.get(status)
        if status == "undelivered" and code in BOUNCE_CODES:
            normalised = ReceiptStatus.BOUNCED
        elif status == "undelivered" and code == "30007":
            normalised = ReceiptStatus.COMPLAINED
        if normalised is None or not params.get("MessageSid"):
            return []  # queued/sent/sending: progress, not an outcome
        return [
            Receipt(
                provider_message_id=params["MessageSid"],
                status=normalised,
                event=status,
                recipient=params.get("To"),
                error_code=f"TWILIO_{code}" if code else None,
                raw=params,
            )
        ]


def _price(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return abs(Decimal(str(value)))  # Twilio reports prices as negative numbers
    except InvalidOperation:
        return None
