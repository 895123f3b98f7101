"""Postmark Email API.

Env: POSTMARK_SERVER_TOKEN; webhooks are authenticated with HTTP Basic credentials in
POSTMARK_WEBHOOK_USERNAME / POSTMARK_WEBHOOK_PASSWORD. Configuration: ``from_email``,
``message_stream`` (default "outbound"), ``api_base_url`` (default
https://api.postmarkapp.com).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.utils.dateparse import parse_datetime

from providers import errors
from providers.adapters.email.esp_base import EspAdapter, EspRequest
from providers.adapters.email.smtp import DELIVERY_HEADER
from providers.base import ReceiptMalformedError, ReceiptSignatureError, receipt_json
from providers.types import OutboundMessage, Receipt, ReceiptStatus, SendResult

if TYPE_CHECKING:
    from django.http import HttpRequest

INVALID_RECIPIENT_CODES = {300, 406}
AUTH_CODES = {10}


class PostmarkAdapter(EspAdapter):
    kind = "postmark"
    channel = "email"
    default_base_url = "https://api.postmarkapp.com"
    credential_env = {
        "server_token": "POSTMARK_SERVER_TOKEN",
        "webhook_username": "POSTMARK_WEBHOOK_USERNAME",
        "webhook_password": "POSTMARK_WEBHOOK_PASSWORD",
    }
    required_credentials = ("server_token",)

    def prepare(self, message: OutboundMessage) -> EspRequest:
        body: dict[str, Any] = {
            "From": str(self.config.get("from_email") or settings.DEFAULT_FROM_EMAIL),
            "To": message.recipient,
            "Subject": message.subject or "",
            "TextBody": message.text,
            "MessageStream": str(self.config.get("message_stream") or "outbound"),
            "Metadata": {"delivery_id": str(message.delivery_id)},
            # "Headers": a list of {"Name", "Value"} (List-Unsubscribe, …-Post)
            "Headers": [
                *({"Name": name, "Value": value} for name, value in message.headers.items()),
                {"Name": DELIVERY_HEADER, "Value": str(message.delivery_id)},
            ],
        }
        if message.html:
            body["HtmlBody"] = message.html
        return EspRequest(
            "/email",
            {
                "X-Postmark-Server-Token": self.env("server_token"),
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            json.dumps(body).encode(),
        )

    def result(self, response: httpx.Response) -> SendResult:
        summary = self.raise_for_status(response)
        return SendResult(
            provider_message_id=(summary.get("body") or {}).get("MessageID"),
            response=summary,
            cost=self.provider.cost_per_message,
        )

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        body = summary.get("body")
        code = body.get("ErrorCode") if isinstance(body, dict) else None
        if code in INVALID_RECIPIENT_CODES:
            return errors.INVALID_RECIPIENT
        if code in AUTH_CODES:
            return errors.AUTH_FAILED
        return None

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        user, password = self.env("webhook_username"), self.env("webhook_password")
        header = request.headers.get("Authorization", "")
        try:
            given = base64.b64decode(header.removeprefix("Basic ").strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ReceiptSignatureError("Postmark basic auth missing") from exc
        if not user or not hmac.compare_digest(given, f"{user}:{password}"):
            raise ReceiptSignatureError("Postmark basic auth does not match")
        payload = receipt_json(request)
        if not isinstance(payload, dict):
            raise ReceiptMalformedError("a Postmark webhook is a JSON object")
        record = payload.get("RecordType")
        if record in ENGAGEMENT_RECORDS:
            return _engagement(payload)
        if record == "Delivery":
            status = ReceiptStatus.DELIVERED
        elif record == "SpamComplaint":
            status = ReceiptStatus.COMPLAINED
        elif record == "Bounce":
            status = (
                ReceiptStatus.BOUNCED
                if payload.get("Type") in ("HardBounce", "BadEmailAddress", "ManuallyDeactivated")
                else ReceiptStatus.FAILED
            )
        else:
            return []
        if not payload.get("MessageID"):
            return []
        return [
            Receipt(
                provider_message_id=str(payload["MessageID"]),
                status=status,
                event=str(payload.get("Type") or record),
                recipient=payload.get("Recipient") or payload.get("Email"),
                error_code=f"POSTMARK_{payload['Type'].upper()}" if payload.get("Type") else None,
                description=payload.get("Description"),
                raw=payload,
            )
        ]


# Open, Click, and a SubscriptionChange that suppresses sending because the recipient
# unsubscribed (ManualSuppression; Postmark's hard bounce and complaint records say those)
ENGAGEMENT_RECORDS = ("Open", "Click", "SubscriptionChange")
_STAMP_FIELDS = {"Open": "ReceivedAt", "Click": "ReceivedAt", "SubscriptionChange": "ChangedAt"}


def _when(stamp: str) -> datetime | None:
    try:
        return parse_datetime(stamp) if stamp else None
    except ValueError:
        return None


def _engagement(payload: dict[str, Any]) -> list[Receipt]:
    record = str(payload["RecordType"])
    if record == "SubscriptionChange":
        unsubscribed = payload.get("SuppressSending") is True and (
            payload.get("SuppressionReason") == "ManualSuppression"
        )
        if not unsubscribed:
            return []
        status = ReceiptStatus.UNSUBSCRIBED
    else:
        status = ReceiptStatus.OPENED if record == "Open" else ReceiptStatus.CLICKED
    if not payload.get("MessageID"):
        return []
    stamp = str(payload.get(_STAMP_FIELDS[record]) or "")
    return [
        Receipt(
            provider_message_id=str(payload["MessageID"]),
            status=status,
            event=record,
            timestamp=_when(stamp),
            recipient=payload.get("Recipient"),
            raw=payload,
            # Postmark gives no event id: the record and its own time name the event
            event_id=f"{record}:{stamp}" if stamp else None,
            click_url=str(payload.get("OriginalLink") or "") or None,
        )
    ]
