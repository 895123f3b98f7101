"""Shared machinery for the provider endpoints: failure injection, recording, receipts."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from .config import ProviderConfig
from .state import CachedResponse, Failure, SandboxState

logger = logging.getLogger("sandbox")

IDEMPOTENCY_HEADERS: tuple[str, ...] = (
    "Idempotency-Key",
    "I-Twilio-Idempotency-Token",
    "X-Idempotency-Key",
)
COMMON_HEADERS: tuple[str, ...] = (
    "Content-Type",
    "User-Agent",
    "X-Request-Id",
    *IDEMPOTENCY_HEADERS,
)
RECEIPT_TIMEOUT = aiohttp.ClientTimeout(total=10)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_now() -> str:
    return utcnow().isoformat().replace("+00:00", "Z")


def rfc2822(dt: datetime) -> str:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    dt = dt.astimezone(UTC)
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} +0000"
    )


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(", ", ": ")).encode()


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type="application/json"
    )


def format_retry_after(seconds: float | None) -> str:
    value = 1.0 if seconds is None else seconds
    return str(int(value)) if float(value).is_integer() else str(value)


def outcome_for_status(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "unauthorized"
    if status >= 500:
        return "failed"
    if status >= 400:
        return "rejected"
    return "accepted"


def cache_entry(response: web.Response, message_id: str | None) -> CachedResponse:
    """What an idempotent replay of ``response`` sends back."""
    body = response.body if isinstance(response.body, bytes) else b""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return CachedResponse(response.status, body, headers, message_id)


@dataclass(slots=True)
class PreparedReceipt:
    """One receipt HTTP request, built when it is due."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: str  # provider-native status carried by this receipt
    recipient: str | None = None


class Runtime:
    """Per-server runtime shared by the endpoints (lives on the server's event loop)."""

    def __init__(self, state: SandboxState, *, log_requests: bool = False) -> None:
        self.state = state
        self.log_requests = log_requests
        self.base_url = ""
        self.stop_event: asyncio.Event | None = None
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def startup(self) -> None:
        self.stop_event = asyncio.Event()
        self.session = aiohttp.ClientSession(timeout=RECEIPT_TIMEOUT)

    async def shutdown(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def hang(self, seconds: float) -> None:
        """Sleep ``seconds`` or until the server stops."""
        assert self.stop_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), seconds)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class Provider:
    """Base class of one provider's endpoints."""

    name: ClassVar[str]
    #: Request headers (besides COMMON_HEADERS) copied into the message record.
    record_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.state = runtime.state

    # ------------------------------------------------------------------ to override

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        """An HTTP-level error in the provider's own shape (with Retry-After where due)."""
        raise NotImplementedError

    def error_code_response(self, code: str | int) -> web.Response:
        """A provider-specific error code (``error_code`` option)."""
        return self.error_response(400, f"error {code}")

    def error_code_outcome(self, code: str | int, status: int) -> str:
        """Outcome recorded for a forced provider error code."""
        return outcome_for_status(status) if status >= 400 else "rejected"

    def build_receipts(
        self, rec: dict[str, Any], url: str, outcome: str, recipient: str
    ) -> list[PreparedReceipt]:
        """Receipt requests for one recipient of an accepted message (default: none)."""
        return []

    # ------------------------------------------------------------------ helpers

    @property
    def cfg(self) -> ProviderConfig:
        return self.state.config(self.name)

    @property
    def credentials(self) -> dict[str, Any]:
        return self.state.config(self.name).credentials

    def new_record(self, request: web.Request, **fields: Any) -> dict[str, Any]:
        headers = request.headers
        picked = {h: headers[h] for h in COMMON_HEADERS if h in headers}
        for h in self.record_headers:
            if h in headers:
                picked[h] = headers[h]
        idem = next((headers[h] for h in IDEMPOTENCY_HEADERS if h in headers), None)
        rec: dict[str, Any] = {
            "provider": self.name,
            "method": request.method,
            "path": request.path,
            "message_id": None,
            "recipient": None,
            "recipients": [],
            "sender": None,
            "subject": None,
            "body": None,
            "idempotency_key": idem,
            "headers": picked,
            "received_at": time.time(),  # exported as ISO 8601 by SandboxState
            "status": None,
            "outcome": None,
            "error": None,
            "delivery_status": None,
            "receipts": [],
            "data": {},
        }
        rec.update(fields)
        return rec

    def retry_headers(self, status: int) -> dict[str, str]:
        retry_after = self.cfg.retry_after
        if status == 429 or (status == 503 and retry_after is not None):
            return {"Retry-After": format_retry_after(retry_after)}
        return {}

    def finish(
        self,
        rec: dict[str, Any],
        response: web.Response,
        *,
        outcome: str | None = None,
        error: Any = None,
    ) -> web.Response:
        """Record ``rec`` with the response's status and return the response."""
        rec["status"] = response.status
        rec["outcome"] = outcome or outcome_for_status(response.status)
        if error is not None:
            rec["error"] = error
        self.state.record(rec)
        if self.rt.log_requests:
            logger.info(
                "%s %s -> %s %s %s",
                self.name,
                rec["path"],
                rec["status"],
                rec["outcome"],
                rec.get("message_id") or "",
            )
        return response

    async def guard(self, request: web.Request, rec: dict[str, Any]) -> web.StreamResponse | None:
        """Latency and injected failures; a response (already recorded) when failing."""
        cfg = self.cfg
        delay = cfg.latency_ms
        if cfg.latency_jitter_ms:
            delay += cfg.latency_jitter_ms * self.state.random_float()
        if delay:
            await asyncio.sleep(delay / 1000)
        failure = self.state.decide_failure(self.name)
        if failure is None:
            return None
        return await self.fail(request, rec, failure)

    async def fail(
        self, request: web.Request, rec: dict[str, Any], failure: Failure
    ) -> web.StreamResponse:
        if failure.kind == "timeout":
            rec["status"] = None
            rec["outcome"] = "timeout"
            self.state.record(rec)
            await self.rt.hang(self.cfg.hang_seconds)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        if failure.kind == "error_code" and failure.error_code is not None:
            response = self.error_code_response(failure.error_code)
            outcome = self.error_code_outcome(failure.error_code, response.status)
            return self.finish(rec, response, outcome=outcome, error=failure.error_code)
        response = self.error_response(failure.status)
        return self.finish(rec, response, error=f"injected {failure.kind} {failure.status}")

    def check_quota(self, rec: dict[str, Any]) -> web.Response | None:
        if self.state.take_quota(self.name) is None:
            return None
        response = self.error_response(429)
        return self.finish(rec, response, outcome="rate_limited", error="quota exhausted")

    def replay(self, rec: dict[str, Any]) -> web.Response | None:
        """The original response when the idempotency key was already accepted."""
        key = rec["idempotency_key"]
        if not key:
            return None
        cached = self.state.cached_response(self.name, key)
        if cached is None:
            return None
        self.state.count(self.name, "replayed")
        headers = dict(cached.headers)
        headers["X-Sandbox-Replayed"] = "true"
        return web.Response(body=cached.body, status=cached.status, headers=headers)

    def accept(
        self,
        rec: dict[str, Any],
        response: web.Response,
        *,
        callback_url: str | None = None,
    ) -> web.Response:
        """Record an accepted message, remember it for replays and schedule its receipts."""
        key = rec["idempotency_key"]
        if key:
            self.state.remember_response(self.name, key, cache_entry(response, rec["message_id"]))
        self.finish(rec, response, outcome="accepted")
        self.schedule_receipts(rec, callback_url)
        return response

    # ------------------------------------------------------------------ receipts

    def receipt_target(self, callback_url: str | None) -> str | None:
        if callback_url:
            return callback_url
        cfg = self.cfg
        if not cfg.receipt_url:
            return None
        return cfg.receipt_url + cfg.receipt_path.format(provider=self.name)

    def schedule_receipts(self, rec: dict[str, Any], callback_url: str | None) -> None:
        cfg = self.cfg
        url = self.receipt_target(callback_url)
        if url is None:
            return
        plan = []
        for recipient in rec["recipients"] or [rec["recipient"]]:
            outcome = cfg.receipt_status_by_recipient.get(recipient, cfg.receipt_status)
            if outcome != "none":
                plan.append((recipient, outcome))
        if plan:
            self.rt.spawn(self._post_receipts(rec, url, plan, cfg.receipt_delay_ms / 1000))

    async def _post_receipts(
        self, rec: dict[str, Any], url: str, plan: list[tuple[str, str]], delay: float
    ) -> None:
        if delay:
            await asyncio.sleep(delay)
        for recipient, outcome in plan:
            try:
                receipts = self.build_receipts(rec, url, outcome, recipient)
            except Exception as exc:  # a bad config must not kill the server
                logger.exception("building %s receipt failed", self.name)
                self.state.record_receipt(self._receipt_entry(rec, url, outcome, None, str(exc)))
                continue
            for receipt in receipts:
                await self._post_one(rec, receipt)

    async def _post_one(self, rec: dict[str, Any], receipt: PreparedReceipt) -> None:
        session = self.rt.session
        http_status: int | None = None
        error: str | None = None
        try:
            if session is None:
                raise RuntimeError("server is stopping")
            async with session.post(
                receipt.url, data=receipt.body, headers=receipt.headers
            ) as resp:
                http_status = resp.status
                await resp.read()
                if resp.status >= 300:
                    error = f"HTTP {resp.status}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection refused, timeout, ...
            error = f"{type(exc).__name__}: {exc}"
        entry = self._receipt_entry(rec, receipt.url, receipt.status, http_status, error)
        entry["recipient"] = receipt.recipient
        entry["body"] = receipt.body.decode(errors="replace")
        entry["headers"] = dict(receipt.headers)
        self.state.record_receipt(entry)
        summary = {
            "status": receipt.status,
            "recipient": receipt.recipient,
            "http_status": http_status,
            "ok": error is None,
            "posted_at": entry["posted_at"],
        }
        self.state.append_to_message(rec, "receipts", summary)
        if error is None:
            self.state.update_message(rec, delivery_status=receipt.status)

    def _receipt_entry(
        self,
        rec: dict[str, Any],
        url: str,
        status: str,
        http_status: int | None,
        error: str | None,
    ) -> dict[str, Any]:
        return {
            "provider": self.name,
            "message_id": rec.get("message_id"),
            "url": url,
            "status": status,
            "http_status": http_status,
            "ok": error is None,
            "error": error,
            "posted_at": iso_now(),
        }


def first(values: Any) -> Any:
    """First element of a list-like value or the value itself."""
    if isinstance(values, list | tuple):
        return values[0] if values else None
    return values


def segments_for(text: str) -> int:
    """SMS segment count: GSM-7 160/153, UCS-2 70/67."""
    gsm = all(ch in _GSM7 for ch in text)
    length = len(text) + (sum(1 for ch in text if ch in _GSM7_EXT) if gsm else 0)
    if not gsm:
        length = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
    single, multi = (160, 153) if gsm else (70, 67)
    if length <= single:
        return 1
    return math.ceil(length / multi)


_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = frozenset("^{}\\[~]|€\f")
_GSM7 = frozenset(_GSM7_BASIC) | _GSM7_EXT


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP basic ``Authorization`` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
