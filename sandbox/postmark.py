"""Postmark's email API: single and batch sends, server token auth, delivery webhooks."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from aiohttp import web

from .common import (
    PreparedReceipt,
    Provider,
    cache_entry,
    dumps,
    json_response,
    utcnow,
)
from .mail import addresses, raw_addresses, valid_email

POSTMARK_ERRORS: dict[int, tuple[int, str]] = {
    10: (
        401,
        "The Server Token you provided in the X-Postmark-Server-Token request header was "
        "invalid. Please verify that you are using a valid token.",
    ),
    300: (422, "Invalid email request"),
    402: (422, "Received invalid JSON input."),
    405: (422, "Not allowed to send: Your account has run out of credits."),
    406: (
        422,
        "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
        "addresses: {addresses}. Inactive recipients are ones that have generated a hard "
        "bounce, a spam complaint, or a manual suppression.",
    ),
    409: (422, "JSON data required."),
    412: (422, "Your account is pending approval."),
}
POSTMARK_RECEIPTS: dict[str, str] = {
    "delivered": "Delivery",
    "delivery": "Delivery",
    "bounced": "HardBounce",
    "bounce": "HardBounce",
    "failed": "SoftBounce",
    "complained": "SpamComplaint",
    "spamcomplaint": "SpamComplaint",
}


def has_template(msg: dict[str, Any]) -> bool:
    return bool(msg.get("TemplateId") or msg.get("TemplateAlias"))


def postmark_time() -> str:
    now = utcnow()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0Z"


class Postmark(Provider):
    name = "postmark"
    record_headers = ("X-Postmark-Server-Token", "Accept")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bounce_ids = 4323372036854775000

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/email", self.send), web.post("/email/batch", self.send_batch)]

    def pm_error(
        self, code: int, status: int | None = None, message: str | None = None, **fmt: str
    ) -> web.Response:
        default_status, template = POSTMARK_ERRORS.get(code, (status or 422, "Error"))
        status = status or default_status
        text = message or template.format(addresses=fmt.get("addresses", ""))
        return json_response(
            {"ErrorCode": code, "Message": text}, status, self.retry_headers(status)
        )

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        if status == 401:
            return self.pm_error(10, 401, message)
        default = {
            429: "Rate limit exceeded. Please slow down and retry later.",
            500: "Internal server error.",
            503: "Service unavailable. Please retry later.",
        }.get(status, "Request failed.")
        return self.pm_error(status, status, message or default)

    def error_code_response(self, code: str | int) -> web.Response:
        try:
            numeric = int(code)
        except ValueError:
            return self.pm_error(300, 422, str(code))
        return self.pm_error(numeric, addresses="someone@example.com")

    def check_auth(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("X-Postmark-Server-Token")
        if not token:
            return self.pm_error(
                10,
                401,
                "No Account or Server API tokens were supplied in the HTTP headers. Please add "
                "a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.",
            )
        if token != self.credentials.get("server_token"):
            return self.pm_error(10)
        return None

    def describe(self, rec: dict[str, Any], msg: dict[str, Any]) -> None:
        recipients = addresses([str(msg.get(k) or "") for k in ("To", "Cc", "Bcc") if msg.get(k)])
        rec.update(
            recipient=recipients[0] if recipients else None,
            recipients=recipients,
            sender=msg.get("From"),
            subject=msg.get("Subject"),
            body=msg.get("TextBody") if msg.get("TextBody") is not None else msg.get("HtmlBody"),
        )
        rec["data"] = {
            "to": msg.get("To"),
            "html": msg.get("HtmlBody"),
            "tag": msg.get("Tag"),
            "metadata": msg.get("Metadata") if isinstance(msg.get("Metadata"), dict) else {},
            "message_stream": msg.get("MessageStream") or "outbound",
            "template": msg.get("TemplateId") or msg.get("TemplateAlias"),
        }

    def validate(self, msg: dict[str, Any]) -> tuple[int, str] | None:
        sender = msg.get("From")
        if not sender:
            return 300, "Error parsing 'From': Value cannot be null or empty."
        if not all(valid_email(a) for a in addresses([str(sender)])):
            return 300, f"Invalid 'From' address: '{sender}'."
        fields = [k for k in ("To", "Cc", "Bcc") if msg.get(k)]
        if not fields:
            return 300, "Zero recipients specified"
        for field in fields:
            value = str(msg[field])
            entries = raw_addresses([value])
            parsed = addresses([value])
            if len(parsed) != len(entries) or not all(valid_email(a) for a in parsed):
                bad = next((e for e in entries if "@" not in e), value)
                return 300, (
                    f"Error parsing '{field}': Illegal email address '{bad}'. "
                    "It must contain the '@' symbol."
                )
        inactive = [
            a for a in addresses([str(msg[f]) for f in fields]) if a in self.cfg.invalid_recipients
        ]
        if inactive:
            return 406, POSTMARK_ERRORS[406][1].format(addresses=", ".join(inactive))
        if not (msg.get("TextBody") or msg.get("HtmlBody") or has_template(msg)):
            return 300, "Provide either email TextBody or HtmlBody or both."
        return None

    def success(self, rec: dict[str, Any]) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        rec["message_id"] = message_id
        return {
            "To": rec["data"]["to"] or "",
            "SubmittedAt": postmark_time(),
            "MessageID": message_id,
            "ErrorCode": 0,
            "Message": "OK",
        }

    async def read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return ...

    async def send(self, request: web.Request) -> web.StreamResponse:
        msg = await self.read_json(request)
        rec = self.new_record(request)
        if isinstance(msg, dict):
            self.describe(rec, msg)
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        if (denied := self.check_auth(request)) is not None:
            return self.finish(rec, denied, error=10)
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        if not isinstance(msg, dict):
            return self.finish(rec, self.pm_error(402), error=402)
        error = self.validate(msg)
        if error is not None:
            code, text = error
            return self.finish(rec, self.pm_error(code, 422, text), error=code)
        return self.accept(rec, json_response(self.success(rec)))

    async def send_batch(self, request: web.Request) -> web.StreamResponse:
        """``POST /email/batch``: a list of messages, a list of per-message results (200)."""
        batch = await self.read_json(request)
        rec = self.new_record(request)
        if isinstance(batch, list) and batch and isinstance(batch[0], dict):
            self.describe(rec, batch[0])
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        if (denied := self.check_auth(request)) is not None:
            return self.finish(rec, denied, error=10)
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        if not isinstance(batch, list):
            return self.finish(rec, self.pm_error(402), error=402)
        if len(batch) > 500:
            return self.finish(rec, self.pm_error(300, 422, "Batch too large"), error=300)
        results: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        for msg in batch:
            item = self.new_record(request)  # carries the batch's idempotency key, if any
            if not isinstance(msg, dict):
                results.append({"ErrorCode": 402, "Message": "Received invalid JSON input."})
                continue
            self.describe(item, msg)
            error = self.validate(msg)
            if error is not None:
                results.append({"ErrorCode": error[0], "Message": error[1]})
                item["status"] = 200
                item["outcome"] = "rejected"
                item["error"] = error[0]
                self.state.record(item)
                continue
            results.append(self.success(item))
            accepted.append(item)
        response = json_response(results)
        if rec["idempotency_key"]:
            first_id = accepted[0]["message_id"] if accepted else None
            self.state.remember_response(
                self.name, rec["idempotency_key"], cache_entry(response, first_id)
            )
        for item in accepted:
            self.finish(item, response, outcome="accepted")
            self.schedule_receipts(item, None)
        return response

    def build_receipts(
        self, rec: dict[str, Any], url: str, outcome: str, recipient: str
    ) -> list[PreparedReceipt]:
        kind = POSTMARK_RECEIPTS.get(outcome.lower(), outcome)
        base: dict[str, Any] = {
            "MessageID": rec["message_id"],
            "ServerID": 1,
            "MessageStream": rec["data"]["message_stream"],
            "Tag": rec["data"]["tag"] or "",
            "Metadata": rec["data"]["metadata"],
            "Recipient": recipient,
        }
        if kind == "Delivery":
            payload = {
                "RecordType": "Delivery",
                **base,
                "DeliveredAt": postmark_time(),
                "Details": "smtp;250 2.0.0 OK",
            }
            status = "Delivery"
        else:
            self.bounce_ids += 1
            bounce = {
                "HardBounce": (
                    1,
                    "Hard bounce",
                    "The server was unable to deliver your message "
                    "(ex: unknown user, mailbox not found).",
                    True,
                    True,
                ),
                "SoftBounce": (
                    4096,
                    "Soft bounce",
                    "Unable to temporarily deliver this message.",
                    False,
                    True,
                ),
                "SpamComplaint": (
                    512,
                    "Spam complaint",
                    "The subscriber explicitly marked this email as spam.",
                    True,
                    False,
                ),
            }
            type_code, name, description, inactive, can_activate = bounce.get(
                kind, bounce["HardBounce"]
            )
            payload = {
                "RecordType": "SpamComplaint" if kind == "SpamComplaint" else "Bounce",
                "ID": self.bounce_ids,
                "Type": kind if kind in bounce else "HardBounce",
                "TypeCode": type_code,
                "Name": name,
                **base,
                "Description": description,
                "Details": "smtp;550 5.1.1 The email account that you tried to reach does not "
                "exist."
                if type_code == 1
                else "",
                "Email": recipient,
                "From": rec["sender"],
                "BouncedAt": postmark_time(),
                "DumpAvailable": False,
                "Inactive": inactive,
                "CanActivate": can_activate,
                "Subject": rec["subject"],
                "Content": "",
            }
            status = payload["RecordType"]
        headers = {"Content-Type": "application/json", "User-Agent": "Postmark"}
        creds = self.credentials
        user, password = creds.get("webhook_username"), creds.get("webhook_password")
        if user and "@" not in url.split("/", 3)[2]:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return [PreparedReceipt(url, dumps(payload), headers, status, recipient)]
