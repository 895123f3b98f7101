"""E-mail providers: Mailgun, SendGrid v3 and Postmark."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from email.utils import getaddresses
from typing import Any

from aiohttp import web

from .common import PreparedReceipt, Provider, cache_entry, dumps, json_response, utcnow
from .config import sendgrid_private_key_pem
from .signing import mailgun_signature, sendgrid_private_key, sendgrid_signature
from .sms import parse_basic_auth

EMAIL = re.compile(
    r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)


def addresses(values: list[str]) -> list[str]:
    """addr-specs of comma-separated address lists ("Name <a@b.c>, d@e.f")."""
    result = []
    for _name, addr in getaddresses(values):
        if addr:
            result.append(addr)
    return result


def raw_addresses(values: list[str]) -> list[str]:
    """Every comma-separated entry, stripped (to detect invalid ones)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def valid_email(addr: str) -> bool:
    return bool(EMAIL.match(addr))


def b64_id(nbytes: int = 16) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode().rstrip("=")


# =========================================================================== Mailgun

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


# =========================================================================== SendGrid

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
        top_args = data.get("custom_args") if isinstance(data.get("custom_args"), dict) else {}
        subject = data.get("subject")
        personalizations = data.get("personalizations")
        if isinstance(personalizations, list):
            for p in personalizations:
                if not isinstance(p, dict):
                    continue
                p_args = p.get("custom_args") if isinstance(p.get("custom_args"), dict) else {}
                subject = subject or p.get("subject")
                for kind in ("to", "cc", "bcc"):
                    for entry in p.get(kind) or []:
                        if isinstance(entry, dict) and isinstance(entry.get("email"), str):
                            recipients.append(entry["email"])
                            per_recipient_args[entry["email"]] = {**top_args, **p_args}
        content = data.get("content") if isinstance(data.get("content"), list) else []
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
        sender = data.get("from") if isinstance(data.get("from"), dict) else {}
        categories = data.get("categories") if isinstance(data.get("categories"), list) else []
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


# =========================================================================== Postmark

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
