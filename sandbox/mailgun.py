"""Mailgun's messages API: form-encoded sends, HTTP basic auth, signed event webhooks."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from aiohttp import web

from .common import (
    PreparedReceipt,
    Provider,
    dumps,
    json_response,
    parse_basic_auth,
    utcnow,
)
from .mail import addresses, b64_id, raw_addresses, valid_email
from .signing import mailgun_signature

#: Generic receipt outcome -> (event, severity).
MAILGUN_RECEIPTS: dict[str, tuple[str, str | None]] = {
    "delivered": ("delivered", None),
    "bounced": ("failed", "permanent"),
    "failed": ("failed", "temporary"),
    "complained": ("complained", None),
    "accepted": ("accepted", None),
    "rejected": ("rejected", None),
    "opened": ("opened", None),
    "clicked": ("clicked", None),
    "unsubscribed": ("unsubscribed", None),
}


class Mailgun(Provider):
    name = "mailgun"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v3/{domain}/messages", self.send)]

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        headers = self.retry_headers(status)
        if status == 401:
            return web.Response(text="Forbidden", status=401, headers=headers)
        default = {
            429: "Too many requests",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }.get(status, "Bad Request")
        return json_response({"message": message or default}, status, headers)

    def error_code_response(self, code: str | int) -> web.Response:
        return self.error_response(400, str(code))

    async def send(self, request: web.Request) -> web.StreamResponse:
        domain = request.match_info["domain"]
        form = await request.post()
        to_raw = [str(v) for v in form.getall("to", [])]
        recipients = addresses(to_raw)
        sender_values = [str(v) for v in form.getall("from", [])]
        user_vars: dict[str, Any] = {}
        custom_headers: dict[str, str] = {}
        attachments = 0
        for key, value in form.items():
            if not isinstance(value, str):
                attachments += 1
                continue
            if key.startswith("v:"):
                user_vars[key[2:]] = value
            elif key.startswith("h:"):
                custom_headers[key[2:]] = value
        if "X-Mailgun-Variables" in custom_headers:
            try:
                extra = json.loads(custom_headers["X-Mailgun-Variables"])
            except json.JSONDecodeError:
                extra = None
            if isinstance(extra, dict):
                user_vars.update(extra)
        text = form.get("text")
        html = form.get("html")
        rec = self.new_record(
            request,
            recipient=recipients[0] if recipients else None,
            recipients=recipients,
            sender=sender_values[0] if sender_values else None,
            subject=str(form.get("subject", "") or "") or None,
            body=str(text) if isinstance(text, str) else (str(html) if html else None),
        )
        rec["data"] = {
            "domain": domain,
            "html": str(html) if isinstance(html, str) else None,
            "user_variables": user_vars,
            "headers": custom_headers,
            "tags": [str(t) for t in form.getall("o:tag", [])],
            "template": form.get("template") if isinstance(form.get("template"), str) else None,
            "attachments": attachments,
        }
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        auth = parse_basic_auth(request.headers.get("Authorization"))
        if auth is None or auth[0] != "api" or auth[1] != self.credentials.get("api_key"):
            return self.finish(rec, self.error_response(401), error="Forbidden")
        expected_domain = self.credentials.get("domain")
        if expected_domain and domain != expected_domain:
            response = json_response({"message": f"Domain not found: {domain}"}, 404)
            return self.finish(rec, response, error="domain")
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        error = None
        if not sender_values:
            error = "from parameter is missing"
        elif not to_raw:
            error = "to parameter is missing"
        elif not (text or html or form.get("template")):
            error = "Need at least one of 'text', 'html' or 'template' parameters specified"
        else:
            entries = raw_addresses(to_raw)
            invalid = self.cfg.invalid_recipients
            if len(recipients) != len(entries) or not all(
                valid_email(a) and a not in invalid for a in recipients
            ):
                error = "to parameter is not a valid address. please check documentation"
        if error:
            return self.finish(rec, json_response({"message": error}, 400), error=error)
        message_id = f"<{utcnow().strftime('%Y%m%d%H%M%S')}.{secrets.token_hex(8)}@{domain}>"
        rec["message_id"] = message_id
        body = {"id": message_id, "message": "Queued. Thank you."}
        return self.accept(rec, json_response(body))

    def build_receipts(
        self, rec: dict[str, Any], url: str, outcome: str, recipient: str
    ) -> list[PreparedReceipt]:
        event, severity = MAILGUN_RECEIPTS.get(outcome, (outcome, None))
        now = time.time()
        timestamp = str(int(now))
        token = secrets.token_hex(25)
        signing_key = str(self.credentials.get("webhook_signing_key", ""))
        message_id = str(rec["message_id"]).strip("<>")
        sender = addresses([rec["sender"] or ""])
        event_data: dict[str, Any] = {
            "id": b64_id(),
            "event": event,
            "timestamp": now,
            "log-level": "info",
            "recipient": recipient,
            "recipient-domain": recipient.rpartition("@")[2],
            "message": {
                "headers": {
                    "message-id": message_id,
                    "from": rec["sender"],
                    "to": recipient,
                    "subject": rec["subject"],
                },
                "attachments": [],
                "size": len(rec["body"] or ""),
            },
            "envelope": {
                "transport": "smtp",
                "sender": sender[0] if sender else "",
                "sending-ip": "198.51.100.25",
                "targets": recipient,
            },
            "flags": {
                "is-routed": False,
                "is-authenticated": True,
                "is-system-test": False,
                "is-test-mode": False,
            },
            "tags": rec["data"]["tags"],
            "user-variables": rec["data"]["user_variables"],
            "storage": {
                "url": f"https://storage.mailgun.net/v3/domains/{rec['data']['domain']}/"
                f"messages/{b64_id()}",
                "key": b64_id(),
            },
        }
        if event == "delivered":
            event_data["delivery-status"] = {
                "code": 250,
                "message": "OK",
                "description": "",
                "tls": True,
                "mx-host": "mx.example.net",
                "attempt-no": 1,
                "session-seconds": 0.42,
                "utf8": True,
                "certificate-verified": True,
            }
        elif event == "failed":
            permanent = severity != "temporary"
            event_data["log-level"] = "error" if permanent else "warn"
            event_data["severity"] = severity or "permanent"
            event_data["reason"] = "bounce" if permanent else "generic"
            event_data["delivery-status"] = {
                "code": 550 if permanent else 452,
                "message": (
                    "5.1.1 The email account that you tried to reach does not exist."
                    if permanent
                    else "4.2.2 The email account that you tried to reach is over quota."
                ),
                "description": "",
                "attempt-no": 1,
                "bounce-code": "5.1.1" if permanent else "4.2.2",
                "mx-host": "mx.example.net",
            }
        elif event == "complained":
            event_data["log-level"] = "warn"
        payload = {
            "signature": {
                "timestamp": timestamp,
                "token": token,
                "signature": mailgun_signature(signing_key, timestamp, token),
            },
            "event-data": event_data,
        }
        headers = {"Content-Type": "application/json", "User-Agent": "mailgun/treq-16.12.0"}
        return [PreparedReceipt(url, dumps(payload), headers, event, recipient)]
