"""SendGrid v3 mail send: JSON sends, bearer auth, ECDSA-signed event webhooks."""

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
)
from .config import sendgrid_private_key_pem
from .mail import b64_id, valid_email
from .signing import sendgrid_private_key, sendgrid_signature

SENDGRID_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
#: Generic receipt outcome -> event fields.
SENDGRID_RECEIPTS: dict[str, dict[str, Any]] = {
    "delivered": {"event": "delivered", "response": "250 2.0.0 OK"},
    "bounced": {
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "bounce_classification": "Invalid Address",
    },
    "failed": {"event": "dropped", "reason": "Bounced Address"},
    "complained": {"event": "spamreport"},
    "deferred": {"event": "deferred", "response": "400 try again later", "attempt": "1"},
    "processed": {"event": "processed"},
}


class SendGrid(Provider):
    name = "sendgrid"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v3/mail/send", self.send)]

    def sg_errors(
        self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
    ) -> web.Response:
        return json_response({"errors": errors}, status, headers)

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        default = {
            401: "The provided authorization grant is invalid, expired, or revoked",
            403: "access forbidden",
            429: "too many requests",
            500: "internal server error",
            503: "service unavailable",
        }.get(status, "Bad Request")
        error = {"field": None, "message": message or default, "help": None}
        headers = self.retry_headers(status)
        if status == 429:
            headers.update(
                {
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + 1),
                }
            )
        return self.sg_errors(status, [error], headers)

    def error_code_response(self, code: str | int) -> web.Response:
        return self.error_response(400, str(code))

    async def send(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        rec = self.new_record(request)
        try:
            data = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            self.describe(rec, data)
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.credentials.get('api_key')}":
            return self.finish(rec, self.error_response(401), error="auth")
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        if not isinstance(data, dict):
            errors = [{"message": "Bad Request", "field": None, "help": None}]
            return self.finish(rec, self.sg_errors(400, errors), error="json")
        errors = self.validate(data)
        if errors:
            return self.finish(rec, self.sg_errors(400, errors), error=errors[0]["message"])
        message_id = b64_id()
        rec["message_id"] = message_id
        response = web.Response(status=202, headers={"X-Message-Id": message_id})
        return self.accept(rec, response)

    def describe(self, rec: dict[str, Any], data: dict[str, Any]) -> None:
        recipients: list[str] = []
        per_recipient_args: dict[str, dict[str, Any]] = {}
        top_args = v if isinstance(v := data.get("custom_args"), dict) else {}
        subject = data.get("subject")
        personalizations = data.get("personalizations")
        if isinstance(personalizations, list):
            for p in personalizations:
                if not isinstance(p, dict):
                    continue
                p_args = v if isinstance(v := p.get("custom_args"), dict) else {}
                subject = subject or p.get("subject")
                for kind in ("to", "cc", "bcc"):
                    for entry in p.get(kind) or []:
                        if isinstance(entry, dict) and isinstance(entry.get("email"), str):
                            recipients.append(entry["email"])
                            per_recipient_args[entry["email"]] = {**top_args, **p_args}
        content = v if isinstance(v := data.get("content"), list) else []
        text = next(
            (
                c.get("value")
                for c in content
                if isinstance(c, dict) and c.get("type") == "text/plain"
            ),
            None,
        )
        html = next(
            (
                c.get("value")
                for c in content
                if isinstance(c, dict) and c.get("type") == "text/html"
            ),
            None,
        )
        sender = v if isinstance(v := data.get("from"), dict) else {}
        categories = v if isinstance(v := data.get("categories"), list) else []
        rec.update(
            recipient=recipients[0] if recipients else None,
            recipients=recipients,
            sender=sender.get("email"),
            subject=subject,
            body=text if text is not None else html,
        )
        rec["data"] = {
            "html": html,
            "custom_args": per_recipient_args,
            "categories": categories,
            "template_id": data.get("template_id"),
        }

    def validate(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []

        def add(message: str, field: str | None, anchor: str | None = None) -> None:
            errors.append(
                {
                    "message": message,
                    "field": field,
                    "help": f"{SENDGRID_HELP}#{anchor}" if anchor else None,
                }
            )

        personalizations = data.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            add(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
                "-Personalizations-Errors",
            )
            personalizations = []
        template = data.get("template_id")
        all_have_subject = bool(personalizations)
        for i, p in enumerate(personalizations):
            if not isinstance(p, dict):
                add("Invalid type. Expected: object.", f"personalizations.{i}")
                all_have_subject = False
                continue
            if not p.get("subject"):
                all_have_subject = False
            to = p.get("to")
            if not isinstance(to, list) or not to:
                add(
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                    "message.personalizations.to",
                )
                continue
            for kind in ("to", "cc", "bcc"):
                for j, entry in enumerate(p.get(kind) or []):
                    email = entry.get("email") if isinstance(entry, dict) else None
                    if (
                        not isinstance(email, str)
                        or not valid_email(email)
                        or email in self.cfg.invalid_recipients
                    ):
                        add(
                            "Does not contain a valid address.",
                            f"personalizations.{i}.{kind}.{j}.email",
                            "message.personalizations.to",
                        )
        sender = data.get("from")
        if not isinstance(sender, dict) or not sender.get("email"):
            add(
                "The from object must be provided for every email send. It is an object that "
                "requires an email address, and may contain a name.",
                "from",
                "message.from",
            )
        elif not valid_email(str(sender["email"])):
            add("The from email does not contain a valid address.", "from.email", "message.from")
        if not template and not data.get("subject") and not all_have_subject:
            add(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
                "message.subject",
            )
        content = data.get("content")
        if not template and (not isinstance(content, list) or not content):
            add(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
                "message.content",
            )
        return errors

    def private_key(self) -> Any:
        creds = self.credentials
        pem = sendgrid_private_key_pem(creds)
        seed = str(creds.get("webhook_key_seed") or "notifyplatform-sandbox-sendgrid")
        return sendgrid_private_key(pem, seed)

    def build_receipts(
        self, rec: dict[str, Any], url: str, outcome: str, recipient: str
    ) -> list[PreparedReceipt]:
        fields = SENDGRID_RECEIPTS.get(outcome, {"event": outcome})
        message_id = rec["message_id"]
        custom_args = rec["data"]["custom_args"].get(recipient, {})
        event: dict[str, Any] = {
            **custom_args,
            "email": recipient,
            "timestamp": int(time.time()),
            "smtp-id": f"<{message_id}@geopod-ismtpd-1>",
            "sg_event_id": b64_id(),
            "sg_message_id": f"{message_id}.recvd-{secrets.token_hex(5)}-{uuid.uuid4().hex[:4]}"
            f"-1-{secrets.token_hex(4).upper()}-{secrets.randbelow(99)}.0",
            **fields,
        }
        if rec["data"]["categories"]:
            event["category"] = rec["data"]["categories"]
        payload = dumps([event])
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
            "X-Twilio-Email-Event-Webhook-Signature": sendgrid_signature(
                self.private_key(), timestamp, payload
            ),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
        return [PreparedReceipt(url, payload, headers, str(fields["event"]), recipient)]
