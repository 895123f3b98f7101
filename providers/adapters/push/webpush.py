"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291).

Env (names overridable per row with ``configuration["credential_env"]``):
``WEBPUSH_VAPID_PRIVATE_KEY`` — the application server's P-256 key: base64url raw (32 bytes)
or DER, a PEM, or the path of a PEM file; ``WEBPUSH_VAPID_SUBJECT`` — ``mailto:`` or
``https:`` contact (``configuration["vapid_subject"]`` may stand in for it).
Configuration: ``ttl_seconds`` (default 86400), ``content_encoding`` (``aes128gcm``).

Addressing (what ``deliveries.services.notify`` writes): a push delivery addressed to a
browser has ``recipient`` = the subscription's endpoint URL, and the whole subscription
``{"endpoint", "keys": {"p256dh", "auth"}}`` in ``delivery_metadata["subscription"]``, which
the pipeline hands over as ``message.data["subscription"]``. A recipient that is itself the
subscription JSON is accepted too. A recipient that is no URL (an FCM device token) is not
ours: it fails with a *retryable* INVALID_RECIPIENT so failover moves on to FCM, without
counting against this provider's circuit.

The endpoint is chosen by the user's browser, so it goes through the SSRF guard
(``providers.netguard``) like a webhook URL, and the request is pinned to the checked
address. Answers: 201 → sent (the ``Location`` is the message id); 404/410 → the
subscription is gone (INVALID_RECIPIENT, permanent: drop it); 429 → RATE_LIMITED with
``Retry-After``; 5xx → PROVIDER_UNAVAILABLE; 401/403 → AUTH_FAILED (VAPID); 413/400 → REJECTED.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher, WebPushException

from providers import errors
from providers.base import HttpAdapter, response_summary
from providers.netguard import resolve_public
from providers.types import OutboundMessage, SendResult

from .rich import rich_push_fields

# An encrypted record must fit in 4096 bytes; aes128gcm adds 86 bytes of header, tag and
# padding delimiter, so the plaintext budget is a little under 4 KiB.
MAX_PLAINTEXT = 3900
VAPID_LIFETIME = 12 * 3600  # push services refuse tokens valid for more than 24 h


def subscription_of(message: OutboundMessage) -> dict[str, Any] | None:
    """The push subscription a message is addressed to, or None when it has none."""
    data = message.data or {}
    subscription = data.get("subscription")
    if isinstance(subscription, dict) and subscription.get("endpoint"):
        return subscription
    recipient = (message.recipient or "").strip()
    if recipient.startswith("{"):
        try:
            parsed = json.loads(recipient)
        except ValueError:
            return None
        if isinstance(parsed, dict) and parsed.get("endpoint"):
            return parsed
    return None


def is_push_endpoint(value: str) -> bool:
    return value.startswith(("https://", "http://"))


def load_vapid(value: str) -> Vapid:
    """A Vapid signer from a PEM, a PEM file path, or base64url raw/DER key text."""
    value = value.strip()
    try:
        if value.startswith("-----BEGIN"):
            return Vapid.from_pem(value.encode())
        if os.path.isfile(value):
            return Vapid.from_file(value)
        return Vapid.from_string(value)
    except (VapidException, ValueError, TypeError) as exc:
        raise errors.permanent(
            f"WEBPUSH_VAPID_PRIVATE_KEY is not a usable P-256 key: {exc}", errors.AUTH_FAILED
        ) from exc


class WebPushAdapter(HttpAdapter):
    kind = "webpush"
    channel = "push"
    idempotency_header = None  # Web Push has none; the delivery's lease prevents repeats
    not_found_is_invalid_recipient = True  # 404/410: the subscription expired or was revoked
    credential_env = {
        "private_key": "WEBPUSH_VAPID_PRIVATE_KEY",
        "subject": "WEBPUSH_VAPID_SUBJECT",
    }
    required_credentials = ("private_key", "subject")

    def missing_credentials(self) -> list[str]:
        missing = super().missing_credentials()
        if self.config.get("vapid_subject"):  # a row may carry the (non-secret) subject
            missing = [name for name in missing if name != self.env_name("subject")]
        return missing

    @property
    def subject(self) -> str:
        return self.env("subject") or str(self.config.get("vapid_subject") or "")

    def payload(self, message: OutboundMessage) -> bytes:
        """The JSON a service worker's ``push`` event reads, kept under the size limit."""
        data = message.data or {}
        body: dict[str, Any] = {
            "title": message.subject or "",
            "body": message.text,
            "delivery_id": message.delivery_id,
            "notification_id": data.get("notification_id"),
            "event_type": data.get("event_type") or message.metadata.get("event_type"),
            # the tracked link (records the click, then redirects) when there is one
            "url": data.get("tracked_action_url") or data.get("action_url"),
        }
        body.update(rich_push_fields(data.get("rich_content")))
        encoded = json.dumps(body, separators=(",", ":"), default=str).encode()
        if len(encoded) > MAX_PLAINTEXT:  # long texts are cut, never refused
            overflow = len(encoded) - MAX_PLAINTEXT
            body["body"] = message.text[: max(0, len(message.text) - overflow - 3)] + "..."
            encoded = json.dumps(body, separators=(",", ":"), default=str).encode()
        return encoded

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        subscription = subscription_of(message)
        endpoint = str((subscription or {}).get("endpoint") or message.recipient or "").strip()
        if not is_push_endpoint(endpoint):
            # A device token: FCM's business. Retryable so failover tries the next provider.
            raise errors.transient(
                f"{self.name}: recipient is not a web push subscription endpoint",
                errors.INVALID_RECIPIENT,
            )
        keys = (subscription or {}).get("keys")
        if not isinstance(keys, dict) or not keys.get("p256dh") or not keys.get("auth"):
            raise errors.permanent(
                f"{self.name}: push subscription has no keys (p256dh, auth) to encrypt for",
                errors.INVALID_RECIPIENT,
            )
        target = resolve_public(endpoint)  # refuses private targets before any connection
        encoding = str(self.config.get("content_encoding") or "aes128gcm")
        try:
            pusher = WebPusher({"endpoint": endpoint, "keys": keys})
            encrypted = pusher.encode(self.payload(message), encoding)
        except (WebPushException, ValueError, TypeError) as exc:
            raise errors.permanent(
                f"{self.name}: invalid push subscription keys: {exc}", errors.INVALID_RECIPIENT
            ) from exc
        origin = f"{httpx.URL(endpoint).scheme}://{target.host_header}"
        vapid = load_vapid(self.env("private_key"))
        claims = {"sub": self.subject, "aud": origin, "exp": int(time.time()) + VAPID_LIFETIME}
        try:
            auth_headers = vapid.sign(claims)
        except VapidException as exc:
            raise errors.permanent(f"{self.name}: VAPID: {exc}", errors.AUTH_FAILED) from exc
        headers = {
            "Host": target.host_header,
            "TTL": str(int(self.config.get("ttl_seconds") or 86400)),
            "Urgency": "high"
            if message.metadata.get("priority") in ("high", "urgent")
            else "normal",
            "Content-Type": "application/octet-stream",
            "Content-Encoding": encoding,
            **auth_headers,
        }
        if "crypto_key" in encrypted:  # legacy aesgcm carries its keys in headers
            headers["Crypto-Key"] = "dh=" + encrypted["crypto_key"].decode()
            if "salt" in encrypted:
                headers["Encryption"] = "salt=" + encrypted["salt"].decode()
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        response = self.request(
            "POST",
            str(target.url),
            content=encrypted["body"],
            headers=headers,
            extensions=extensions,
        )
        if 300 <= response.status_code < 400:
            raise errors.permanent(
                f"{self.name}: push service answered a redirect ({response.status_code})",
                errors.REJECTED,
                response_summary(response),
            )
        summary = self.raise_for_status(response)
        location = response.headers.get("location")
        summary["location"] = location
        summary["target_ip"] = target.ip
        return SendResult(
            provider_message_id=location or message.idempotency_key,
            response=summary,
            cost=self.provider.cost_per_message,
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if kwargs.get("extensions") is None:
            kwargs.pop("extensions", None)
        return super().request(method, url, **kwargs)
