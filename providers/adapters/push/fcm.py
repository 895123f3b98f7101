"""Firebase Cloud Messaging, HTTP v1 API.

Credentials (env, names overridable with ``configuration["credential_env"]``), either:

- ``FCM_SERVICE_ACCOUNT_JSON``: a Google service-account key, as JSON text or the path of
  the JSON file. The adapter mints the OAuth2 access token itself: an RS256-signed JWT
  assertion (``iss`` = client_email, ``scope`` = firebase.messaging, ``aud`` = the token
  endpoint) exchanged at the token endpoint (``configuration["token_url"]``, else the key's
  ``token_uri``, else Google's), cached per process until ``token_refresh_margin_seconds``
  (default 300) before it expires;
- or ``FCM_ACCESS_TOKEN``: a ready bearer token (refreshed by something else).

Either one satisfies the other when a row lists it in ``credentials_required``.
Configuration: ``project_id`` (else the service account's), ``api_base_url`` (default
https://fcm.googleapis.com), ``token_url``. The recipient is the device registration token;
a web push subscription (an URL recipient) is left to the ``webpush`` provider.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers import errors, policy
from providers.base import HttpAdapter, response_summary
from providers.types import OutboundMessage, SendResult

from .rich import fcm_image

INVALID_TOKEN_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # Google's maximum


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Token:
    value: str
    expires_at: float  # time.time()


_tokens: dict[tuple[str, str, str], _Token] = {}
_tokens_lock = threading.Lock()


def service_account_info(raw: str) -> dict[str, Any]:
    """The service-account key from JSON text or a file path; UNCONFIGURED-style errors."""
    text = raw.strip()
    try:
        if not text.startswith("{"):
            with open(text, encoding="utf-8") as fh:
                text = fh.read()
        info = json.loads(text)
    except (OSError, ValueError) as exc:
        raise errors.permanent(
            f"FCM_SERVICE_ACCOUNT_JSON is neither JSON nor a readable JSON file: {exc}",
            errors.AUTH_FAILED,
        ) from exc
    if not isinstance(info, dict) or not info.get("client_email") or not info.get("private_key"):
        raise errors.permanent(
            "FCM service account needs client_email and private_key", errors.AUTH_FAILED
        )
    return info


def signed_assertion(info: dict[str, Any], token_url: str, now: float | None = None) -> str:
    """The RS256 JWT a service account presents to the token endpoint."""
    issued = int(now if now is not None else time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    if info.get("private_key_id"):
        header["kid"] = str(info["private_key_id"])
    claims = {
        "iss": info["client_email"],
        "scope": FCM_SCOPE,
        "aud": token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    try:
        key = serialization.load_pem_private_key(str(info["private_key"]).encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise errors.permanent(
            f"FCM service account private_key is not a PEM key: {exc}", errors.AUTH_FAILED
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise errors.permanent("FCM service account key must be RSA", errors.AUTH_FAILED)
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


def forget_tokens() -> None:
    """Drop every cached access token (a key rotation, or tests)."""
    with _tokens_lock:
        _tokens.clear()


class FcmAdapter(HttpAdapter):
    kind = "fcm"
    channel = "push"
    default_base_url = "https://fcm.googleapis.com"
    not_found_is_invalid_recipient = True  # 404 UNREGISTERED: the token is gone
    credential_env = {
        "access_token": "FCM_ACCESS_TOKEN",
        "service_account": "FCM_SERVICE_ACCOUNT_JSON",
    }
    required_credentials = ()  # one of the two; see missing_credentials

    def missing_credentials(self) -> list[str]:
        alternatives = [self.env_name("service_account"), self.env_name("access_token")]
        have_one = any(os.environ.get(name) for name in alternatives)
        missing = [name for name in super().missing_credentials() if name not in alternatives]
        if not have_one:
            missing.append(" or ".join(alternatives))
        return missing

    # -- OAuth ---------------------------------------------------------------------
    def _service_account(self) -> dict[str, Any] | None:
        raw = self.env("service_account")
        return service_account_info(raw) if raw else None

    def token_url(self, info: dict[str, Any]) -> str:
        configured = self.config.get("token_url")
        if configured:
            # the signed assertion sent there is worth an access token: a known host only
            problem = policy.url_problem(self.kind, "token_url", configured)
            if problem:
                raise self.refused(problem)
            return str(configured)
        return str(info.get("token_uri") or GOOGLE_TOKEN_URL)

    def _cache_key(self, info: dict[str, Any]) -> tuple[str, str, str]:
        return (
            str(info["client_email"]),
            str(info.get("private_key_id") or ""),
            self.token_url(info),
        )

    def access_token(self) -> str:
        """A bearer token: minted from the service account (cached), else FCM_ACCESS_TOKEN."""
        info = self._service_account()
        if info is None:
            return self.env("access_token")
        key = self._cache_key(info)
        margin = float(self.config.get("token_refresh_margin_seconds", 300))
        with _tokens_lock:  # one mint per process at a time; the others reuse its token
            cached = _tokens.get(key)
            if cached is not None and time.time() < cached.expires_at - margin:
                return cached.value
            token = self._mint(info)
            _tokens[key] = token
            return token.value

    def _mint(self, info: dict[str, Any]) -> _Token:
        url = self.token_url(info)
        response = self.request(
            "POST",
            url,
            data={"grant_type": JWT_BEARER, "assertion": signed_assertion(info, url)},
        )
        summary = response_summary(response)
        if response.status_code in (400, 401, 403):  # invalid_grant: the key is wrong or revoked
            raise errors.permanent(
                f"{self.name}: token endpoint refused the service account "
                f"(HTTP {response.status_code} {self.error_detail(summary)})",
                errors.AUTH_FAILED,
                summary,
            )
        self.raise_for_status(response)
        body = summary.get("body")
        if not isinstance(body, dict) or not body.get("access_token"):
            raise errors.transient(
                f"{self.name}: token endpoint answered without an access_token",
                errors.PROVIDER_UNAVAILABLE,
                response=summary,
            )
        expires_in = float(body.get("expires_in") or 3600)
        return _Token(str(body["access_token"]), time.time() + expires_in)

    def _forget(self) -> None:
        info = self._service_account()
        if info is not None:
            with _tokens_lock:
                _tokens.pop(self._cache_key(info), None)

    # -- sending -------------------------------------------------------------------
    def project_id(self) -> str:
        configured = self.config.get("project_id")
        if configured:
            return str(configured)
        info = self._service_account()
        return str((info or {}).get("project_id") or "notifyplatform")

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        recipient = (message.recipient or "").strip()
        if isinstance((message.data or {}).get("subscription"), dict) or recipient.startswith(
            ("https://", "http://", "{")
        ):
            # A browser's web push subscription: the webpush provider's. Retryable, so the
            # failover moves on, and not a health error, so our circuit is not touched.
            raise errors.transient(
                f"{self.name}: recipient is a web push subscription, not an FCM token",
                errors.INVALID_RECIPIENT,
            )
        data = {
            str(k): v if isinstance(v, str) else json.dumps(v, default=str)
            for k, v in (message.data or {}).items()
            if v is not None
        }
        data["delivery_id"] = str(message.delivery_id)
        notification = {"title": message.subject or "", "body": message.text}
        image = fcm_image((message.data or {}).get("rich_content"))
        if image:
            notification["image"] = image  # buttons travel in data["rich_content"]
        body = {"message": {"token": recipient, "notification": notification, "data": data}}
        token = self.access_token()
        response = self.request(
            "POST",
            f"/v1/projects/{self.project_id()}/messages:send",
            idempotency_key=message.idempotency_key,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            self._forget()  # revoked or expired early: the next send mints a fresh one
        summary = self.raise_for_status(response)
        return SendResult(
            provider_message_id=(summary.get("body") or {}).get("name"),
            response=summary,
            cost=self.provider.cost_per_message,
        )

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        body = summary.get("body")
        error = body.get("error") if isinstance(body, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, dict) and detail.get("errorCode") in INVALID_TOKEN_CODES:
                return errors.INVALID_RECIPIENT
        return None
