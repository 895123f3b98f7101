"""SendGrid v3 Mail Send.

Env: SENDGRID_API_KEY, SENDGRID_WEBHOOK_PUBLIC_KEY (base64 DER of the Signed Event
Webhook's ECDSA P-256 key). Configuration: ``from_email``, ``api_base_url`` (default
https://api.sendgrid.com).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from providers import errors, replay
from providers.adapters.email.esp_base import EspAdapter, EspRequest
from providers.adapters.email.smtp import DELIVERY_HEADER
from providers.base import ReceiptSignatureError, receipt_json
from providers.types import OutboundMessage, Receipt, ReceiptStatus, SendResult

if TYPE_CHECKING:
    from django.http import HttpRequest

EVENTS = {
    "delivered": ReceiptStatus.DELIVERED,
    "bounce": ReceiptStatus.BOUNCED,
    "dropped": ReceiptStatus.FAILED,
    "spamreport": ReceiptStatus.COMPLAINED,
    "open": ReceiptStatus.OPENED,
    "click": ReceiptStatus.CLICKED,
    "unsubscribe": ReceiptStatus.UNSUBSCRIBED,
    "group_unsubscribe": ReceiptStatus.UNSUBSCRIBED,
}
_NO_ERROR = (ReceiptStatus.DELIVERED, *ReceiptStatus.ENGAGEMENT)


class SendGridAdapter(EspAdapter):
    kind = "sendgrid"
    channel = "email"
    default_base_url = "https://api.sendgrid.com"
    credential_env = {"api_key": "SENDGRID_API_KEY", "public_key": "SENDGRID_WEBHOOK_PUBLIC_KEY"}
    required_credentials = ("api_key",)

    def prepare(self, message: OutboundMessage) -> EspRequest:
        name, address = parseaddr(str(self.config.get("from_email") or settings.DEFAULT_FROM_EMAIL))
        sender: dict[str, Any] = {"email": address}
        if name:
            sender["name"] = name
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body = {
            "personalizations": [
                {
                    "to": [{"email": message.recipient}],
                    "custom_args": {"delivery_id": str(message.delivery_id)},
                }
            ],
            "from": sender,
            "subject": message.subject or "",
            "content": content,
            # "headers": a JSON object of header name → value (List-Unsubscribe, …-Post)
            "headers": {**message.headers, DELIVERY_HEADER: str(message.delivery_id)},
        }
        return EspRequest(
            "/v3/mail/send",
            {
                "Authorization": f"Bearer {self.env('api_key')}",
                "Content-Type": "application/json",
            },
            json.dumps(body).encode(),
        )

    def result(self, response: httpx.Response) -> SendResult:
        summary = self.raise_for_status(response)
        return SendResult(
            provider_message_id=response.headers.get("x-message-id"),
            response=summary,
            cost=self.provider.cost_per_message,
        )

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        body = summary.get("body")
        found = body.get("errors") if isinstance(body, dict) else None
        for error in found if isinstance(found, list) else []:
            field = str((error or {}).get("field") or "")
            if field.startswith("personalizations.") and ".to." in field:
                return errors.INVALID_RECIPIENT
        return None

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
        timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
        public_key = self.env("public_key")
        if not (signature and timestamp and public_key):
            raise ReceiptSignatureError("SendGrid signature headers or key missing")
        try:
            key = serialization.load_der_public_key(base64.b64decode(public_key))
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ReceiptSignatureError("SendGrid key is not an EC key")
            key.verify(
                base64.b64decode(signature),
                timestamp.encode() + request.body,
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise ReceiptSignatureError("SendGrid signature does not verify") from exc
        replay.check_timestamp(timestamp, provider=self.name)
        events = receipt_json(request)
        receipts: list[Receipt] = []
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, dict):
                continue
            status = EVENTS.get(str(event.get("event")))
            sg_id = str(event.get("sg_message_id") or "")
            if status is None or not sg_id:
                continue
            when = event.get("timestamp")
            receipts.append(
                Receipt(
                    # sg_message_id is "<X-Message-Id>.<filter suffix>"
                    provider_message_id=sg_id.split(".", 1)[0],
                    status=status,
                    event=str(event["event"]),
                    timestamp=datetime.fromtimestamp(float(when), UTC) if when else None,
                    recipient=event.get("email"),
                    error_code=f"SENDGRID_{event['event'].upper()}"
                    if status not in _NO_ERROR
                    else None,
                    description=event.get("reason"),
                    raw=event,
                    event_id=str(event.get("sg_event_id") or "") or None,
                    click_url=str(event.get("url") or "") or None,
                )
            )
        return receipts
