"""Generic webhook receiver with Standard Webhooks signature verification."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from .common import Provider, json_response
from .signing import verify_standard_webhooks_signature

OK_BODY = b'{"ok": true}'


class WebhookReceiver(Provider):
    name = "webhook"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/hooks/{name}", self.receive)]

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        return json_response(
            {"error": message or f"HTTP {status}"}, status, self.retry_headers(status)
        )

    def error_code_response(self, code: str | int) -> web.Response:
        try:
            return self.error_response(int(code))
        except ValueError:
            return self.error_response(400, str(code))

    async def receive(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        raw = await request.read()
        headers = request.headers
        rec = self.new_record(request, recipient=name, recipients=[name])
        rec["headers"] = dict(headers)
        text = raw.decode(errors="replace")
        rec["body"] = text
        parsed: Any = None
        if text and headers.get("Content-Type", "").startswith("application/json"):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
        webhook_id = headers.get("webhook-id")
        rec["message_id"] = webhook_id
        rec["data"] = {"name": name, "json": parsed, "verified": None, "duplicate": False}
        if (failed := await self.guard(request, rec)) is not None:
            return failed
        cfg = self.cfg
        secret = cfg.secrets.get(name)
        if secret is not None:
            verified, reason = self.verify(secret, raw, headers, cfg.tolerance_seconds)
            rec["data"]["verified"] = verified
            if not verified:
                response = self.error_response(401, reason)
                return self.finish(rec, response, outcome="unverified", error=reason)
        if (replayed := self.replay(rec)) is not None:
            return replayed
        if (limited := self.check_quota(rec)) is not None:
            return limited
        if webhook_id:
            rec["data"]["duplicate"] = self.state.seen_webhook_id(name, webhook_id)
        response = web.Response(body=OK_BODY, content_type="application/json")
        return self.accept(rec, response)

    @staticmethod
    def verify(secret: str, body: bytes, headers: Any, tolerance: float) -> tuple[bool, str | None]:
        msg_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
        if not msg_id or not timestamp or not signature:
            return False, "missing webhook-id, webhook-timestamp or webhook-signature header"
        try:
            ts = int(timestamp)
        except ValueError:
            return False, "invalid webhook-timestamp"
        if abs(time.time() - ts) > tolerance:
            return False, "webhook-timestamp outside the tolerance"
        if not verify_standard_webhooks_signature(secret, msg_id, timestamp, body, signature):
            return False, "invalid signature"
        return True, None
