"""SMS providers: Twilio Programmable Messaging and the Vonage SMS API."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .common import (
    PreparedReceipt,
    Provider,
    dumps,
    json_response,
    rfc2822,
    segments_for,
    utcnow,
)
from .signing import VONAGE_SIGNATURE_METHODS, twilio_signature, vonage_signature

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MSISDN = re.compile(r"^[1-9]\d{6,14}$")
CHANNEL_PREFIXES = ("whatsapp:", "messenger:", "rcs:")


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


# =========================================================================== Twilio

TWILIO_API_VERSION = "2010-04-01"
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (
        400,
        "The 'From' number {from_} is not a valid phone number, shortcode, "
        "or alphanumeric sender ID.",
    ),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number: {to}",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}
TWILIO_STATUS_CODES: dict[int, int] = {
    401: 20003,
    404: 20404,
    429: 20429,
    500: 20500,
    503: 20503,
}
#: Generic receipt outcome -> (final MessageStatus, ErrorCode).
TWILIO_RECEIPTS: dict[str, tuple[str, str | None]] = {
    "delivered": ("delivered", None),
    "bounced": ("undelivered", "30003"),  # Unreachable destination handset
    "failed": ("failed", "30008"),  # Unknown error
    "complained": ("undelivered", "30007"),  # Message filtered (carrier violation)
    "sent": ("sent", None),
    "undelivered": ("undelivered", "30003"),
    "read": ("read", None),
    "canceled": ("canceled", None),
}


class Twilio(Provider):
    name = "twilio"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/2010-04-01/Accounts/{account_sid}/Messages.json", self.send),
            web.get("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json", self.fetch),
        ]

    def twilio_error(
        self, code: int, status: int | None = None, message: str | None = None, **fmt: str
    ) -> web.Response:
        default_status, template = TWILIO_ERRORS.get(code, (status or 400, "Error {code}"))
        status = status or default_status
        text = message or template.format(code=code, **{"to": "", "from_": "", "path": ""} | fmt)
        body: dict[str, Any] = {
            "code": code,
            "message": text,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        headers = self.retry_headers(status)
        if status == 401:
            body["detail"] = "Your AccountSid or AuthToken was incorrect."
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        headers["Twilio-Request-Id"] = "RQ" + uuid.uuid4().hex
        return json_response(body, status, headers)

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        code = TWILIO_STATUS_CODES.get(status, 20000 + status)
        return self.twilio_error(code, status, message)

    def error_code_response(self, code: str | int) -> web.Response:
        try:
            numeric = int(code)
        except ValueError:
            return self.error_response(400, str(code))
        return self.twilio_error(numeric)

    def authorized(self, request: web.Request) -> bool:
        creds = self.credentials
        auth = parse_basic_auth(request.headers.get("Authorization"))
        if auth is None:
            return False
        user, password = auth
        if user == creds.get("account_sid") and password == creds.get("auth_token"):
            return True
        key_sid, key_secret = creds.get("api_key_sid"), creds.get("api_key_secret")
        return bool(key_sid) and user == key_sid and password == key_secret

    async def send(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        to = str(form.get("To", "") or "")
        sender = str(form.get("From", "") or "")
        service_sid = str(form.get("MessagingServiceSid", "") or "")
        text = str(form.get("Body", "") or "")
        media = [str(m) for m in form.getall("MediaUrl", [])]
        callback = str(form.get("StatusCallback", "") or "") or None
        rec = self.new_record(
            request,
            recipient=to or None,
            recipients=[to] if to else [],
            sender=sender or service_sid or None,
            body=text,
        )
        rec["data"] = {
            "account_sid": request.match_info["account_sid"],
            "from": sender or None,
            "messaging_service_sid": service_sid or None,
            "status_callback": callback,
            "media_urls": media,
        }
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        if not self.authorized(request):
            return self.finish(rec, self.twilio_error(20003), error=20003)
        account_sid = self.credentials.get("account_sid")
        if request.match_info["account_sid"] != account_sid:
            return self.finish(rec, self.twilio_error(20404, path=request.path), error=20404)
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        error = self.validate(to, sender, service_sid, text, media)
        if error is not None:
            return self.finish(rec, self.twilio_error(error, to=to, from_=sender), error=error)
        now = utcnow()
        sid = "SM" + uuid.uuid4().hex
        rec["message_id"] = sid
        rec["data"]["date_created"] = rfc2822(now)
        rec["data"]["num_segments"] = segments_for(text) if text else 1
        resource = self.resource(rec, "accepted" if service_sid and not sender else "queued")
        response = json_response(resource, 201, {"Twilio-Request-Id": "RQ" + uuid.uuid4().hex})
        return self.accept(rec, response, callback_url=callback)

    def validate(
        self, to: str, sender: str, service_sid: str, text: str, media: list[str]
    ) -> int | None:
        if not to:
            return 21604
        if not sender and not service_sid:
            return 21603
        if not text and not media:
            return 21602
        bare_to = to
        for prefix in CHANNEL_PREFIXES:
            bare_to = bare_to.removeprefix(prefix)
        if not E164.match(bare_to) or to in self.cfg.invalid_recipients:
            return 21211
        if sender:
            bare_from = sender
            for prefix in CHANNEL_PREFIXES:
                bare_from = bare_from.removeprefix(prefix)
            if not (
                E164.match(bare_from)
                or ALPHANUMERIC_SENDER.match(bare_from)
                or bare_from.isdigit()  # short code
            ):
                return 21212
        if len(text) > 1600:
            return 21617
        return None

    def resource(self, rec: dict[str, Any], status: str) -> dict[str, Any]:
        account_sid = rec["data"]["account_sid"]
        sid = rec["message_id"]
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"
        date = rec["data"]["date_created"]
        return {
            "account_sid": account_sid,
            "api_version": TWILIO_API_VERSION,
            "body": rec["body"],
            "date_created": date,
            "date_sent": date if status not in ("queued", "accepted") else None,
            "date_updated": date,
            "direction": "outbound-api",
            "error_code": rec["data"].get("error_code"),
            "error_message": None,
            "from": rec["data"]["from"],
            "messaging_service_sid": rec["data"]["messaging_service_sid"],
            "num_media": str(len(rec["data"]["media_urls"])),
            "num_segments": str(rec["data"]["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"
            },
            "to": rec["recipient"],
            "uri": uri,
        }

    async def fetch(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return self.twilio_error(20003)
        rec = self.state.find_message(request.match_info["sid"])
        if rec is None or rec["provider"] != self.name or rec["outcome"] != "accepted":
            return self.twilio_error(20404, path=request.path)
        status = rec.get("delivery_status") or "queued"
        return json_response(self.resource(rec, status))

    def build_receipts(
        self, rec: dict[str, Any], url: str, outcome: str, recipient: str
    ) -> list[PreparedReceipt]:
        final, error_code = TWILIO_RECEIPTS.get(outcome, (outcome, None))
        steps: list[tuple[str, str | None]] = [("sent", None)]
        if final != "sent":
            steps.append((final, error_code))
        creds = self.credentials
        sid = rec["message_id"]
        receipts = []
        for status, code in steps:
            params = {
                "AccountSid": rec["data"]["account_sid"],
                "ApiVersion": TWILIO_API_VERSION,
                "From": rec["data"]["from"] or "+15005550006",
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": recipient,
            }
            if rec["data"]["messaging_service_sid"]:
                params["MessagingServiceSid"] = rec["data"]["messaging_service_sid"]
            if code:
                params["ErrorCode"] = code
                self.state.update_nested(rec, "data", error_code=int(code))
            if status == "delivered":
                params["RawDlrDoneDate"] = utcnow().strftime("%y%m%d%H%M")
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
                "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
                "X-Twilio-Signature": twilio_signature(str(creds["auth_token"]), url, params),
            }
            receipts.append(
                PreparedReceipt(url, urlencode(params).encode(), headers, status, recipient)
            )
        return receipts


# =========================================================================== Vonage

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
