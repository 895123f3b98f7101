"""Webhook delivery, signed per Standard Webhooks (standardwebhooks.com).

Headers: ``webhook-id`` (the delivery's idempotency key, so a receiver can drop a
duplicate from a failover or a retry), ``webhook-timestamp`` (unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`` where the key is
the base64-decoded part of a ``whsec_<base64>`` secret read from the environment
variable named by ``configuration["secret_env"]`` or the first ``credentials_required``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from providers import errors, policy
from providers.base import HttpAdapter, response_summary
from providers.netguard import ResolvedTarget, resolve_public, resolve_public_async
from providers.types import OutboundMessage, SendResult


def secret_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        return raw.encode()


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookAdapter(HttpAdapter):
    kind = "webhook"
    channel = "webhook"
    idempotency_header = None  # webhook-id carries it
    not_found_is_invalid_recipient = True

    def secret_name(self) -> str | None:
        return self.config.get("secret_env") or next(
            iter(self.provider.credentials_required or []), None
        )

    def secret(self) -> str:
        name = self.secret_name()
        return self.env_var(name) if name else ""

    def configuration_refused(self) -> list[str]:
        refused = super().configuration_refused()
        name = self.secret_name()
        problem = policy.env_name_problem(self.kind, name) if name else None
        return [*refused, f"credentials_required: {problem}"] if problem else refused

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        return {
            "type": message.metadata.get("event_type")
            or message.data.get("event_type")
            or "notification",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {
                "delivery_id": message.delivery_id,
                "user_id": message.user_id,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "data": message.data,
            },
        }

    def _prepare(
        self, message: OutboundMessage, target: ResolvedTarget
    ) -> tuple[bytes, dict[str, str]]:
        """The signed body and headers of one webhook call (both send paths)."""
        body = json.dumps(self.payload(message), separators=(",", ":"), default=str).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": timestamp,
        }
        secret = self.secret()
        if secret:
            headers["webhook-signature"] = sign(secret, message.idempotency_key, timestamp, body)
        return body, headers

    def _result(
        self, message: OutboundMessage, target: ResolvedTarget, response: httpx.Response
    ) -> SendResult:
        if 300 <= response.status_code < 400:
            raise errors.permanent(
                f"{self.name}: webhook answered a redirect ({response.status_code}); "
                "redirects are not followed",
                errors.REJECTED,
                response_summary(response),
            )
        summary = self.raise_for_status(response)
        summary["target_ip"] = target.ip
        return SendResult(provider_message_id=message.idempotency_key, response=summary)

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        target = resolve_public(message.recipient)  # refuses before any connection
        body, headers = self._prepare(message, target)
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        response = self.request(
            "POST", str(target.url), content=body, headers=headers, extensions=extensions
        )
        return self._result(message, target, response)

    async def asend(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        target = await resolve_public_async(message.recipient)  # refuses before any connection
        body, headers = self._prepare(message, target)
        response = await self.arequest(
            "POST",
            str(target.url),
            content=body,
            headers=headers,
            server_hostname=target.sni_hostname,
        )
        return self._result(message, target, response)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if kwargs.get("extensions") is None:
            kwargs.pop("extensions", None)
        return super().request(method, url, **kwargs)
