"""Push providers: FCM HTTP v1 (plus its OAuth token endpoint) and Web Push (RFC 8030)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from .common import Provider, json_response
from .signing import verify_vapid_jwt

# =========================================================================== FCM

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: HTTP status -> (canonical status, default message, FCM errorCode or None).
FCM_STATUS: dict[int, tuple[str, str, str | None]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT"),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        None,
    ),
    403: ("PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
    404: ("NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
    429: (
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'.",
        "QUOTA_EXCEEDED",
    ),
    500: ("INTERNAL", "Internal error encountered.", "INTERNAL"),
    503: ("UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
}
FCM_ERROR_CODES: dict[str, int] = {
    "UNREGISTERED": 404,
    "INVALID_ARGUMENT": 400,
    "SENDER_ID_MISMATCH": 403,
    "QUOTA_EXCEEDED": 429,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
    "THIRD_PARTY_AUTH_ERROR": 401,
    "UNSPECIFIED_ERROR": 500,
}
TOKEN_CHARS = re.compile(r"^\S+$")


def _b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class FCM(Provider):
    name = "fcm"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/projects/{project_id}/messages:send", self.send),
            web.post("/token", self.token),
        ]

    def google_error(
        self,
        status: int,
        message: str | None = None,
        *,
        error_code: str | None = None,
        canonical: str | None = None,
        violations: list[tuple[str, str]] | None = None,
    ) -> web.Response:
        default_canonical, default_message, default_code = FCM_STATUS.get(
            status, ("UNKNOWN", "Unknown error.", "UNSPECIFIED_ERROR")
        )
        error: dict[str, Any] = {
            "code": status,
            "message": message or default_message,
            "status": canonical or default_canonical,
        }
        details: list[dict[str, Any]] = []
        code = default_code if error_code is None else error_code
        if code:
            details.append({"@type": FCM_ERROR_TYPE, "errorCode": code})
        if violations:
            details.append(
                {
                    "@type": BAD_REQUEST_TYPE,
                    "fieldViolations": [
                        {"field": field, "description": text} for field, text in violations
                    ],
                }
            )
        if details:
            error["details"] = details
        return json_response({"error": error}, status, self.retry_headers(status))

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        return self.google_error(status, message)

    def error_code_response(self, code: str | int) -> web.Response:
        code = str(code)
        return self.google_error(FCM_ERROR_CODES.get(code, 400), error_code=code)

    def authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        token = auth[7:].strip()
        static = self.credentials.get("access_token")
        return bool(token) and (token == static or token in self.state.issued_tokens)

    async def send(self, request: web.Request) -> web.StreamResponse:
        project_id = request.match_info["project_id"]
        raw = await request.read()
        rec = self.new_record(request)
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        message = data.get("message") if isinstance(data, dict) else None
        if isinstance(message, dict):
            target = message.get("token") or (
                f"/topics/{message['topic']}" if message.get("topic") else message.get("condition")
            )
            notification = message.get("notification")
            notification = notification if isinstance(notification, dict) else {}
            rec.update(
                recipient=target,
                recipients=[target] if target else [],
                subject=notification.get("title"),
                body=notification.get("body"),
            )
            rec["data"] = {
                "project_id": project_id,
                "data": message.get("data"),
                "platform_overrides": [k for k in ("android", "apns", "webpush") if k in message],
                "validate_only": bool(data.get("validate_only"))
                if isinstance(data, dict)
                else False,
            }
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        if not self.authorized(request):
            return self.finish(rec, self.google_error(401), error="UNAUTHENTICATED")
        expected_project = self.credentials.get("project_id")
        if expected_project and project_id != expected_project:
            response = self.google_error(
                403,
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project_id}' "
                "(or it may not exist).",
                error_code="",
            )
            return self.finish(rec, response, error="PERMISSION_DENIED")
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        if data is None:
            response = self.google_error(
                400,
                "Invalid JSON payload received. Unexpected token.",
                error_code="",
            )
            return self.finish(rec, response, error="INVALID_ARGUMENT")
        error = self.validate(data)
        if error is not None:
            return self.finish(rec, error, error="INVALID_ARGUMENT")
        assert isinstance(message, dict)
        token = message.get("token")
        if token and token in self.cfg.invalid_recipients:
            return self.finish(rec, self.google_error(404), error="UNREGISTERED")
        if data.get("validate_only"):
            name = f"projects/{project_id}/messages/fake_message_id"
        else:
            name = (
                f"projects/{project_id}/messages/0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
            )
        rec["message_id"] = name
        return self.accept(rec, json_response({"name": name}))

    def validate(self, data: Any) -> web.Response | None:
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            return self.google_error(
                400, violations=[("message", "Message must be set.")], error_code="INVALID_ARGUMENT"
            )
        message = data["message"]
        targets = [k for k in ("token", "topic", "condition") if message.get(k)]
        if len(targets) != 1:
            return self.google_error(
                400,
                violations=[("message", "Exactly one of token, topic or condition must be set.")],
            )
        token = message.get("token")
        if token is not None and (not isinstance(token, str) or not TOKEN_CHARS.match(token)):
            return self.google_error(
                400,
                "The registration token is not a valid FCM registration token",
                violations=[("message.token", "Invalid registration token")],
            )
        payload = message.get("data")
        if payload is not None:
            if not isinstance(payload, dict):
                return self.google_error(
                    400, violations=[("message.data", "data must be a map of strings")]
                )
            for index, (key, value) in enumerate(payload.items()):
                if not isinstance(value, str):
                    return self.google_error(
                        400,
                        f"Invalid value at 'message.data[{index}].value' (TYPE_STRING), {value}",
                        violations=[
                            (f"message.data[{index}].value", f"Invalid value at key {key!r}")
                        ],
                    )
        notification = message.get("notification")
        if notification is not None and not isinstance(notification, dict):
            return self.google_error(
                400, violations=[("message.notification", "notification must be an object")]
            )
        return None

    async def token(self, request: web.Request) -> web.StreamResponse:
        """Google OAuth 2 token endpoint for the service-account (JWT bearer) flow."""
        form = await request.post()
        grant_type = str(form.get("grant_type", ""))
        if grant_type != JWT_BEARER:
            return json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"Invalid grant_type: {grant_type}",
                },
                400,
            )
        assertion = str(form.get("assertion", ""))
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError
            header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400
            )
        now = time.time()
        exp = claims.get("exp")
        iat = claims.get("iat", now)
        if (
            not isinstance(exp, int | float)
            or not isinstance(iat, int | float)
            or (exp < now - 60 or exp - iat > 3600 + 60 or not claims.get("iss"))
        ):
            return json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: Token must be a short-lived token (60 "
                    "minutes) and in a reasonable timeframe. Check your iat and exp values in "
                    "the JWT claim.",
                },
                400,
            )
        access_token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self.state.lock:
            self.state.issued_tokens.add(access_token)
        self.state.count(self.name, "tokens_issued")
        return json_response(
            {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}
        )


# =========================================================================== Web Push

AUTOPUSH_DOCS = "https://autopush.readthedocs.io/en/latest/http.html#error-codes"
WEBPUSH_ERRORS: dict[int, tuple[str, int]] = {
    400: ("Bad Request", 110),
    401: ("Unauthorized", 109),
    403: ("Forbidden", 109),
    404: ("Not Found", 102),
    410: ("Gone", 106),
    413: ("Payload Too Large", 104),
    429: ("Too Many Requests", 0),
    500: ("Internal Server Error", 999),
    503: ("Service Unavailable", 201),
}
MAX_PUSH_PAYLOAD = 4096
VAPID_MAX_LIFETIME = 24 * 3600


class WebPush(Provider):
    name = "webpush"
    record_headers = ("TTL", "Urgency", "Topic", "Content-Encoding", "Crypto-Key", "Encryption")

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/push/{subscription_id}", self.send)]

    def push_error(self, status: int, message: str, errno: int | None = None) -> web.Response:
        reason, default_errno = WEBPUSH_ERRORS.get(status, ("Error", 999))
        body = {
            "code": status,
            "errno": errno if errno is not None else default_errno,
            "error": reason,
            "message": message,
            "more_info": AUTOPUSH_DOCS,
        }
        return json_response(body, status, self.retry_headers(status))

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        return self.push_error(status, message or WEBPUSH_ERRORS.get(status, ("Error", 0))[0])

    def error_code_response(self, code: str | int) -> web.Response:
        try:
            status = int(code)
        except ValueError:
            status = 400
        return self.error_response(status)

    def check_vapid(self, request: web.Request, rec: dict[str, Any]) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        creds = self.credentials
        token = key = None
        scheme, _, rest = auth.partition(" ")
        if scheme.lower() == "vapid":
            for item in rest.split(","):
                name, _, value = item.strip().partition("=")
                if name == "t":
                    token = value
                elif name == "k":
                    key = value
        elif scheme.lower() == "webpush":  # draft VAPID with Crypto-Key: p256ecdsa=...
            token = rest.strip()
            for item in request.headers.get("Crypto-Key", "").replace(",", ";").split(";"):
                name, _, value = item.strip().partition("=")
                if name == "p256ecdsa":
                    key = value
        if token is None or key is None:
            if creds.get("require_vapid", True):
                return self.push_error(401, "Missing or malformed VAPID Authorization header", 109)
            return None
        claims = verify_vapid_jwt(token, key)
        if claims is None:
            return self.push_error(401, "Request did not validate: invalid VAPID signature", 109)
        rec["data"]["vapid"] = {"k": key, "sub": claims.get("sub"), "aud": claims.get("aud")}
        pinned = creds.get("vapid_public_key")
        if pinned and pinned.rstrip("=") != key.rstrip("="):
            return self.push_error(403, "VAPID public key does not match the subscription", 109)
        origin = f"{request.scheme}://{request.host}"
        exp = claims.get("exp")
        now = time.time()
        if claims.get("aud") != origin:
            return self.push_error(401, f"VAPID aud claim must be {origin}", 109)
        if not isinstance(exp, int | float) or exp < now or exp > now + VAPID_MAX_LIFETIME + 60:
            return self.push_error(401, "VAPID exp claim missing, expired or too far ahead", 109)
        return None

    async def send(self, request: web.Request) -> web.StreamResponse:
        subscription_id = request.match_info["subscription_id"]
        try:
            body = await request.read()
        except RequestPayloadError:  # e.g. gzip-declared bytes that do not decompress
            return self.push_error(400, "Unknown Content-Encoding", 110)
        rec = self.new_record(request, recipient=subscription_id, recipients=[subscription_id])
        rec["data"] = {"size": len(body), "ttl": request.headers.get("TTL")}
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        cfg = self.cfg
        if subscription_id in cfg.gone_ids or subscription_id in cfg.invalid_recipients:
            response = self.push_error(410, "Request did not validate: subscription has expired")
            return self.finish(rec, response, error="gone")
        if subscription_id in cfg.unknown_ids:
            response = self.push_error(404, "Request did not validate: invalid token", 102)
            return self.finish(rec, response, error="not_found")
        if (denied := self.check_vapid(request, rec)) is not None:
            return self.finish(rec, denied, error="vapid")
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        ttl = request.headers.get("TTL")
        if ttl is None:
            return self.finish(rec, self.push_error(400, "Missing TTL header", 111), error="ttl")
        if not ttl.isdigit():
            return self.finish(rec, self.push_error(400, "Invalid TTL header", 112), error="ttl")
        if len(body) > MAX_PUSH_PAYLOAD:
            response = self.push_error(
                413,
                "This message is intended for a constrained device and is limited in size.",
                104,
            )
            return self.finish(rec, response, error="size")
        encoding = request.headers.get("Content-Encoding")
        if body:
            if encoding not in ("aes128gcm", "aesgcm"):
                response = self.push_error(400, "Unknown Content-Encoding", 110)
                return self.finish(rec, response, error="encoding")
            if encoding == "aes128gcm" and (len(body) < 21 or len(body) < 21 + body[20] + 17):
                response = self.push_error(400, "Invalid aes128gcm payload", 110)
                return self.finish(rec, response, error="encoding")
        message_id = secrets.token_urlsafe(24)
        rec["message_id"] = message_id
        location = f"{request.scheme}://{request.host}/m/{message_id}"
        response = web.Response(status=201, headers={"Location": location, "TTL": ttl})
        return self.accept(rec, response)
