"""Vonage's SMS API: key/secret or signed sends, in-body errors, delivery receipts."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from .common import (
    PreparedReceipt,
    Provider,
    dumps,
    json_response,
    segments_for,
    utcnow,
)
from .signing import VONAGE_SIGNATURE_METHODS, vonage_signature
from .sms import MSISDN

VONAGE_ERRORS: dict[str, str] = {
    "1": "Throttled",
    "2": "Missing Parameters",
    "3": "Invalid Parameters",
    "4": "Bad Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number Barred",
    "8": "Partner Account Barred",
    "9": "Partner Quota Violation",
    "10": "Too Many Existing Binds",
    "11": "Account Not Enabled For HTTP",
    "12": "Message Too Long",
    "14": "Invalid Signature",
    "15": "Invalid Sender Address",
    "22": "Invalid Network Code",
    "23": "Invalid Callback Url",
    "29": "Non-Whitelisted Destination",
    "32": "Signature And API Secret Disallowed",
    "33": "Number De-activated",
}
VONAGE_OUTCOMES: dict[str, str] = {"1": "rate_limited", "4": "unauthorized", "14": "unauthorized"}
#: Generic receipt outcome -> (DLR status, err-code).
VONAGE_RECEIPTS: dict[str, tuple[str, str]] = {
    "delivered": ("delivered", "0"),
    "bounced": ("failed", "3"),  # absent subscriber - permanent
    "failed": ("failed", "8"),  # network error
    "complained": ("rejected", "6"),  # anti-spam rejection
    "expired": ("expired", "2"),
    "rejected": ("rejected", "6"),
    "accepted": ("accepted", "0"),
    "buffered": ("buffered", "0"),
    "unknown": ("unknown", "1"),
}
VONAGE_PRICE = "0.03330000"
VONAGE_NETWORK = "23410"


class Vonage(Provider):
    name = "vonage"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spent = 0.0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/sms/json", self.send)]

    def vonage_error(
        self, code: str, text: str | None = None, http_status: int = 200, to: str | None = None
    ) -> web.Response:
        message: dict[str, Any] = {
            "status": code,
            "error-text": text or VONAGE_ERRORS.get(code, ""),
        }
        if to:
            message = {"to": to, **message}
        return json_response(
            {"message-count": "1", "messages": [message]},
            http_status,
            self.retry_headers(http_status),
        )

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        code = {429: "1", 401: "4", 403: "4"}.get(status, "5")
        return self.vonage_error(code, message, status)

    def error_code_response(self, code: str | int) -> web.Response:
        code = str(code)
        headers = {"Retry-After": self.retry_headers(429)["Retry-After"]} if code == "1" else None
        response = self.vonage_error(code)
        if headers:
            response.headers.update(headers)
        return response

    def error_code_outcome(self, code: str | int, status: int) -> str:
        return VONAGE_OUTCOMES.get(str(code), "rejected")

    def in_body_error(
        self, rec: dict[str, Any], code: str, text: str | None = None
    ) -> web.Response:
        response = self.vonage_error(code, text, to=rec["recipient"])
        return self.finish(rec, response, outcome=VONAGE_OUTCOMES.get(code, "rejected"), error=code)

    async def params(self, request: web.Request) -> dict[str, str] | None:
        params: dict[str, str] = {k: v for k, v in request.query.items()}
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
            if not isinstance(data, dict):
                return None
            params.update({str(k): str(v) for k, v in data.items() if v is not None})
        else:
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        return params

    async def send(self, request: web.Request) -> web.StreamResponse:
        params = await self.params(request)
        rec = self.new_record(request)
        if params is None:
            if (failed := await self.guard(request, rec)) is not None:
                return failed
            return self.in_body_error(rec, "3", "Invalid JSON body")
        to = params.get("to", "").removeprefix("+")
        rec.update(
            recipient=to or None,
            recipients=[to] if to else [],
            sender=params.get("from") or None,
            body=params.get("text"),
        )
        rec["data"] = {
            "type": params.get("type", "text"),
            "client_ref": params.get("client-ref"),
            "callback": params.get("callback"),
            "api_key": params.get("api_key"),
        }
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        creds = self.credentials
        if not params.get("api_key"):
            return self.in_body_error(rec, "2", "Missing api_key")
        if params["api_key"] != creds.get("api_key"):
            return self.in_body_error(rec, "4", "Bad Credentials")
        if "sig" in params:
            if "api_secret" in params:
                return self.in_body_error(rec, "32")
            method = str(creds.get("signature_method") or "md5hash")
            if method not in VONAGE_SIGNATURE_METHODS:
                method = "md5hash"
            expected = vonage_signature(str(creds.get("signature_secret", "")), params, method)
            if params["sig"].lower() != expected:
                return self.in_body_error(rec, "14", "Invalid Signature")
        elif not params.get("api_secret"):
            return self.in_body_error(rec, "2", "Missing api_secret")
        elif params["api_secret"] != creds.get("api_secret"):
            return self.in_body_error(rec, "4", "Bad Credentials")
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        text = params.get("text", "")
        if not params.get("from"):
            return self.in_body_error(rec, "2", "Missing from param")
        if not to:
            return self.in_body_error(rec, "2", "Missing to param")
        if not text:
            return self.in_body_error(rec, "2", "Missing text param")
        if (
            not MSISDN.match(to)
            or to in self.cfg.invalid_recipients
            or ("+" + to in self.cfg.invalid_recipients)
        ):
            return self.in_body_error(rec, "3", "Invalid to address")
        callback = params.get("callback")
        if callback and not callback.startswith(("http://", "https://")):
            return self.in_body_error(rec, "23")
        if len(text) > 3200:
            return self.in_body_error(rec, "12")
        parts = segments_for(text)
        ids = [secrets.token_hex(8).upper() for _ in range(parts)]
        balance = float(creds.get("balance") or 0)
        messages = []
        for mid in ids:
            self.spent += float(VONAGE_PRICE)
            message = {
                "to": to,
                "message-id": mid,
                "status": "0",
                "remaining-balance": f"{max(balance - self.spent, 0.0):.8f}",
                "message-price": VONAGE_PRICE,
                "network": VONAGE_NETWORK,
            }
            if params.get("client-ref"):
                message["client-ref"] = params["client-ref"]
            messages.append(message)
        rec["message_id"] = ids[0]
        rec["data"]["message_ids"] = ids
        body = {"message-count": str(parts), "messages": messages}
        return self.accept(rec, json_response(body), callback_url=callback)

    def build_receipts(
        self, rec: dict[str, Any], url: str, outcome: str, recipient: str
    ) -> list[PreparedReceipt]:
        status, err = VONAGE_RECEIPTS.get(outcome, (outcome, "1"))
        creds = self.credentials
        ids: list[str] = rec["data"]["message_ids"]
        now = utcnow()
        receipts = []
        concat_ref = str(int(time.time()) % 256)
        for part, mid in enumerate(ids, 1):
            payload: dict[str, str] = {
                "msisdn": recipient,
                "to": rec["sender"] or "",
                "network-code": VONAGE_NETWORK,
                "messageId": mid,
                "price": VONAGE_PRICE,
                "status": status,
                "scts": now.strftime("%y%m%d%H%M"),
                "err-code": err,
                "api-key": str(creds.get("api_key", "")),
                "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
                "timestamp": str(int(time.time())),
                "nonce": str(uuid.uuid4()),
            }
            if rec["data"].get("client_ref"):
                payload["client-ref"] = rec["data"]["client_ref"]
            if len(ids) > 1:
                payload.update(
                    {
                        "concat": "true",
                        "concat-ref": concat_ref,
                        "concat-total": str(len(ids)),
                        "concat-part": str(part),
                    }
                )
            method = str(creds.get("signature_method") or "sha256")
            payload["sig"] = vonage_signature(
                str(creds.get("signature_secret", "")), payload, method
            )
            headers = {"Content-Type": "application/json", "User-Agent": "Vonage-DLR/1.0"}
            receipts.append(PreparedReceipt(url, dumps(payload), headers, status, recipient))
        return receipts
