"""Fixtures for the providers tests: real loopback servers (HTTP, SMTP), real Redis."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_names = itertools.count(1)


class _Receiver(ThreadingHTTPServer):
    # The senders under test open dozens of connections at once; the stdlib's listen
    # backlog of 5 would refuse some of them and look like a provider outage.
    request_queue_size = 256


@pytest.fixture(autouse=True)
def clean_provider_counters(settings) -> Iterator[None]:
    """Rate-limit and circuit counters live in this test run's Redis database."""
    from providers import kv

    settings.NP_PROVIDERS_REDIS_PREFIX = "np:prov:test"
    conn = kv.client()

    def wipe() -> None:
        keys = list(conn.scan_iter("np:prov:test:*", count=1000))
        if keys:
            conn.delete(*keys)

    wipe()
    yield
    wipe()


@pytest.fixture
def make_provider(db) -> Callable[..., Any]:
    from providers.models import Provider

    def make(**fields: Any) -> Provider:
        fields.setdefault("provider_name", f"provider-{next(_names)}")
        fields.setdefault("provider_type", "webhook")
        fields.setdefault("provider_class", "webhook")
        return Provider.objects.create(**fields)

    return make


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackHTTPServer:
    """A real HTTP server on 127.0.0.1 that records requests and answers from a script:
    ``replies[path]`` is a list consumed in order (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: dict[str, list[Reply]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path
                outer.requests.append(
                    Recorded(
                        self.command, path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                script = outer.replies.get(path.split("?", 1)[0]) or [Reply()]
                reply = script.pop(0) if len(script) > 1 else script[0]
                payload = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _handle  # noqa: N815 - http.server naming
            do_GET = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Receiver(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reply(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def start(self) -> LoopbackHTTPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    server = LoopbackHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on a free loopback port; ``.messages`` holds the
    received envelopes."""
    import socket

    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []
            self.refuse: set[str] = set()

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            if address in self.refuse:
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.envelopes.append(envelope)
            return "250 Message accepted for delivery"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    controller.handler_obj = handler
    yield controller
    controller.stop()


@pytest.fixture
def outbound() -> Callable[..., Any]:
    from providers.types import OutboundMessage

    def make(**fields: Any) -> OutboundMessage:
        defaults: dict[str, Any] = {
            "delivery_id": 41,
            "channel": "webhook",
            "recipient": "http://127.0.0.1:1/hook",
            "recipient_type": "webhook",
            "subject": "You were outbid",
            "text": "Someone bid 120.00 on Blue Vase",
            "html": "<p>Someone bid <b>120.00</b> on Blue Vase</p>",
            "data": {"event_type": "outbid", "amount": "120.00"},
            "idempotency_key": "delivery-41",
            "user_id": None,
        }
        defaults.update(fields)
        return OutboundMessage(**defaults)

    return make


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[Any]:
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(_sandbox_server, monkeypatch) -> Any:
    """The provider sandbox (another engineer's fake provider APIs), reset per test, with
    the environment holding the credentials it expects."""
    from sandbox import DEFAULT_CREDENTIALS

    _sandbox_server.reset()
    env = {
        "TWILIO_ACCOUNT_SID": DEFAULT_CREDENTIALS["twilio"]["account_sid"],
        "TWILIO_AUTH_TOKEN": DEFAULT_CREDENTIALS["twilio"]["auth_token"],
        "VONAGE_API_KEY": DEFAULT_CREDENTIALS["vonage"]["api_key"],
        "VONAGE_API_SECRET": DEFAULT_CREDENTIALS["vonage"]["api_secret"],
        "VONAGE_SIGNATURE_SECRET": DEFAULT_CREDENTIALS["vonage"]["signature_secret"],
        "MAILGUN_API_KEY": DEFAULT_CREDENTIALS["mailgun"]["api_key"],
        "MAILGUN_WEBHOOK_SIGNING_KEY": DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"],
        "SENDGRID_API_KEY": DEFAULT_CREDENTIALS["sendgrid"]["api_key"],
        "POSTMARK_SERVER_TOKEN": DEFAULT_CREDENTIALS["postmark"]["server_token"],
        "POSTMARK_WEBHOOK_USERNAME": DEFAULT_CREDENTIALS["postmark"]["webhook_username"],
        "POSTMARK_WEBHOOK_PASSWORD": DEFAULT_CREDENTIALS["postmark"]["webhook_password"],
        "FCM_ACCESS_TOKEN": DEFAULT_CREDENTIALS["fcm"]["access_token"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return _sandbox_server
