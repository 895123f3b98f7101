"""Twilio's Messages API: form-encoded sends, basic auth, signed status callbacks."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .common import (
    PreparedReceipt,
    Provider,
    json_response,
    parse_basic_auth,
    rfc2822,
    segments_for,
    utcnow,
)
from .signing import twilio_signature
from .sms import ALPHANUMERIC_SENDER, CHANNEL_PREFIXES, E164

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
