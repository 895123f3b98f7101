"""Mailgun Messages API.

Env: MAILGUN_API_KEY, MAILGUN_WEBHOOK_SIGNING_KEY (receipts). Configuration:
``domain``, ``from_email``, ``api_base_url`` (default https://api.mailgun.net; the EU
region is https://api.eu.mailgun.net).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
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
    "complained": ReceiptStatus.COMPLAINED,
    "rejected": ReceiptStatus.FAILED,
    "opened": ReceiptStatus.OPENED,
    "clicked": ReceiptStatus.CLICKED,
    "unsubscribed": ReceiptStatus.UNSUBSCRIBED,
}


class MailgunAdapter(EspAdapter):
    kind = "mailgun"
    channel = "email"
    default_base_url = "https://api.mailgun.net"
    credential_env = {"api_key": "MAILGUN_API_KEY", "signing_key": "MAILGUN_WEBHOOK_SIGNING_KEY"}
    required_credentials = ("api_key",)

    def prepare(self, message: OutboundMessage) -> EspRequest:
        from_email = str(self.config.get("from_email") or settings.DEFAULT_FROM_EMAIL)
        domain = str(self.config.get("domain") or from_email.rsplit("@", 1)[-1].strip(">"))
        form = {
            "from": from_email,
            "to": message.recipient,
            "subject": message.subject or "",
            "text": message.text,
            f"h:{DELIVERY_HEADER}": str(message.delivery_id),
            "v:delivery_id": str(message.delivery_id),
        }
        # custom MIME headers are "h:<Name>" form fields (List-Unsubscribe, …-Post)
        for header, value in message.headers.items():
            form[f"h:{header}"] = value
        if message.html:
            form["html"] = message.html
        login = base64.b64encode(f"api:{self.env('api_key')}".encode()).decode()
        return EspRequest(
            f"/v3/{domain}/messages",
            {
                "Authorization": f"Basic {login}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            urlencode(form).encode(),
        )

    def result(self, response: httpx.Response) -> SendResult:
        summary = self.raise_for_status(response)
        message_id = str((summary.get("body") or {}).get("id") or "").strip("<>") or None
        return SendResult(
            provider_message_id=message_id, response=summary, cost=self.provider.cost_per_message
        )

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        body = summary.get("body")
        text = str(body.get("message", "")) if isinstance(body, dict) else str(body)
        lowered = text.lower()
        if response.status_code == 400 and ("to parameter" in lowered or "'to'" in lowered):
            return errors.INVALID_RECIPIENT
        return None

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        payload = receipt_json(request)
        try:
            sig = payload["signature"]
            timestamp, token, signature = (
                str(sig["timestamp"]),
                str(sig["token"]),
                str(sig["signature"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ReceiptSignatureError("unreadable Mailgun webhook") from exc
        key = self.env("signing_key")
        expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not key or not hmac.compare_digest(expected, signature):
            raise ReceiptSignatureError("Mailgun signature does not verify")
        replay.check_timestamp(timestamp, provider=self.name)
        scope = f"mailgun:{self.name}"
        replay.claim_nonce(scope, token)
        self.claimed_nonces.append((scope, token))
        data = payload.get("event-data") or {}
        if not isinstance(data, dict):
            return []
        event = str(data.get("event") or "")
        if event == "failed":
            status = ReceiptStatus.BOUNCED if data.get("severity") == "permanent" else None
        else:
            status = EVENTS.get(event)
        message_id = str(((data.get("message") or {}).get("headers") or {}).get("message-id") or "")
        if status is None or not message_id:
            return []  # temporary failures are retried by Mailgun itself
        when = data.get("timestamp")
        delivery_status = data.get("delivery-status") or {}
        return [
            Receipt(
                provider_message_id=message_id.strip("<>"),
                status=status,
                event=event,
                timestamp=datetime.fromtimestamp(float(when), UTC) if when else None,
                recipient=data.get("recipient"),
                error_code="MAILGUN_BOUNCE" if status == ReceiptStatus.BOUNCED else None,
                description=delivery_status.get("message") or None,
                raw=data,
                event_id=str(data.get("id") or "") or None,
                click_url=str(data.get("url") or "") or None,
            )
        ]
