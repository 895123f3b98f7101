"""Fixtures for the pipeline tests: the template catalogue, real loopback SMTP and webhook
receivers, provider rows pointing at them, and real Celery worker subprocesses."""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from notifyplatform.testing import child_database_url, free_port
from notifyplatform.testing_broker import RabbitBroker


class _Receiver(ThreadingHTTPServer):
    # The senders under test open dozens of connections at once; the stdlib's listen
    # backlog of 5 would refuse some of them and look like a provider outage.
    request_queue_size = 256


BASE_DIR = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET_ENV = "NP_TEST_PIPELINE_WEBHOOK_SECRET"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"pipeline-test-secret-0123456789").decode()
DELIVERY_HEADER = "X-Notifyplatform-Delivery"


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


def in_app_record_shape(notification_pk: Any) -> tuple[Any, ...]:
    """What recording a notification's in-app delivery as sent wrote, less what differs
    between any two sends (ids, durations): the fast paths must write what the sender does."""
    from deliveries.models import Notification, NotificationDelivery

    n = Notification.objects.get(pk=notification_pk)
    d = NotificationDelivery.objects.get(notification=n, delivery_type="in_app")
    response = d.provider_response
    for attempt in response["attempts"]:
        attempt.pop("duration_ms")
        attempt.pop("provider_message_id")
        attempt["response"].pop("user_id")
    response["response"].pop("user_id")
    return (
        (n.status, n.in_inbox, n.delivery_attempts, n.sent_at is not None),
        (d.status, d.provider_name, d.provider_type, d.provider_priority, d.retry_count),
        response,
        d.delivery_metadata,
        d.sent_at is not None,
    )


# --------------------------------------------------------------------------------------------
# Catalogue: transactional tests truncate every table, data migrations included
# --------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(db) -> None:
    from templates.catalog import catalogue_rows
    from templates.models import NotificationTemplate

    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )


@pytest.fixture(autouse=True)
def _provider_counters(settings) -> Iterator[None]:
    """Circuit/rate-limit counters of this run live under their own Redis prefix."""
    # per test, not per process: a send still settling in this process's sender loop
    # after its test ended must not open a circuit or spend a token in the next test
    settings.NP_PROVIDERS_REDIS_PREFIX = f"np:prov:pipeline-test:{os.getpid()}:{uuid.uuid4().hex}"
    yield
    from providers import kv

    conn = kv.client()
    keys = list(conn.scan_iter(settings.NP_PROVIDERS_REDIS_PREFIX + ":*", count=1000))
    if keys:
        conn.delete(*keys)


# --------------------------------------------------------------------------------------------
# SMTP server (aiosmtpd) on loopback
# --------------------------------------------------------------------------------------------


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def by_delivery(self) -> Counter[int]:
        with self.lock:
            return Counter(int(m[DELIVERY_HEADER]) for m in self.messages if m[DELIVERY_HEADER])


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


# --------------------------------------------------------------------------------------------
# Webhook receiver: verifies Standard Webhooks signatures, counts arrivals per delivery id
# --------------------------------------------------------------------------------------------


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


class WebhookReceiver:
    """A real HTTP server. ``hold_after = n``: from the n-th arrival on, requests are held
    (not answered, not counted) until ``release()``. A request whose client vanished before
    the answer (held meanwhile, or read late) is dropped uncounted — it was never
    acknowledged, like a receiver whose transaction rolls back when the response cannot be
    sent. So is one whose answer could not be written.

    ``busy`` counts the requests read but not yet answered (the held ones included): a test
    that kills the sender waits for ``busy == held`` first, else a request answered between
    the kill and its answer would count as arrived although its sender never learnt it."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.arrivals: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.dropped = 0
        self.held = 0
        self.busy = 0
        self.hold_after: int | None = None
        self._release = threading.Event()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer.lock:
                    outer.busy += 1
                try:
                    self.answer(body)
                finally:
                    with outer.lock:
                        outer.busy -= 1

            def answer(self, body: bytes) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                if outer.must_hold():
                    with outer.lock:
                        outer.held += 1
                    outer._release.wait(120)
                if outer.client_gone(self.connection):
                    with outer.lock:
                        outer.dropped += 1
                    self.close_connection = True
                    return
                if self.path.endswith("/gone"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not verify_signature(outer.secret, headers, body):
                    with outer.lock:
                        outer.bad_signatures += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                arrival = {"webhook_id": headers["webhook-id"], "payload": json.loads(body)}
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    self.wfile.flush()
                except OSError:  # the client is gone: never acknowledged, not counted
                    with outer.lock:
                        outer.dropped += 1
                    self.close_connection = True
                    return
                with outer.lock:
                    outer.arrivals.append(arrival)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Receiver(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def must_hold(self) -> bool:
        with self.lock:
            return self.hold_after is not None and len(self.arrivals) >= self.hold_after

    @staticmethod
    def client_gone(conn: socket.socket) -> bool:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def release(self) -> None:
        with self.lock:
            self.hold_after = None
        self._release.set()

    def by_delivery(self) -> Counter[int]:
        with self.lock:
            return Counter(a["payload"]["data"]["delivery_id"] for a in self.arrivals)

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver(monkeypatch, settings) -> Iterator[WebhookReceiver]:
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET)
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def pipeline_providers(db, smtp_server, webhook_receiver) -> dict[str, Any]:
    """One provider per channel under test, pointing at the loopback servers."""
    from providers.models import Provider

    _sink, port = smtp_server
    return {
        "email": Provider.objects.create(
            provider_name="test-smtp",
            provider_type="email",
            provider_class="smtp",
            priority=10,
            configuration={"host": "127.0.0.1", "port": port, "timeout": 5},
        ),
        "webhook": Provider.objects.create(
            provider_name="test-webhook",
            provider_type="webhook",
            provider_class="webhook",
            priority=10,
            configuration={"secret_env": WEBHOOK_SECRET_ENV, "timeout": 10},
            credentials_required=[WEBHOOK_SECRET_ENV],
        ),
        "in_app": Provider.objects.create(
            provider_name="test-in-app", provider_type="in_app", provider_class="in_app"
        ),
    }


# --------------------------------------------------------------------------------------------
# Real Celery worker subprocesses
# --------------------------------------------------------------------------------------------


class Worker:
    def __init__(
        self,
        env: dict[str, str],
        beat: bool,
        log: Path,
        queues: str | None = None,
        pool: str = "threads",
        args: tuple[str, ...] = (),
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "notifyplatform",
            "worker",
            f"--pool={pool}",
            "--concurrency=8" if pool == "threads" else "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            *args,
        ]
        if beat:
            command.append("--beat")
        if queues:  # e.g. "send": one worker per queue, as `make run` starts them
            command += ["-Q", queues, "-n", f"{queues.replace(',', '-')}-{log.stem}@%h"]
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL takes all of it
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def start_worker(settings, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Start ``celery worker`` subprocesses on the test database; all are killed at teardown."""
    workers: list[Worker] = []
    database_url = child_database_url()

    def start(
        *,
        beat: bool = False,
        queues: str | None = None,
        pool: str = "threads",
        args: tuple[str, ...] = (),
        **extra_env: str,
    ) -> Worker:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "NP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "NP_PROVIDERS_REDIS_PREFIX": settings.NP_PROVIDERS_REDIS_PREFIX,
            "NP_RUN_DIR": str(tmp_path),
            "SECRET_KEY": settings.SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
            WEBHOOK_SECRET_ENV: WEBHOOK_SECRET,
            **extra_env,
        }
        worker = Worker(env, beat, tmp_path / f"worker-{len(workers)}.log", queues, pool, args)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request, settings) -> Iterator[RabbitBroker | None]:
    """Run the test once on each Celery broker: Redis, then RabbitMQ (quorum queues,
    publisher confirms; queues of this test's own, deleted after it). None for Redis."""
    if request.param == "redis":
        yield None
        return
    rabbit = RabbitBroker(settings).start()
    try:
        yield rabbit
    finally:
        rabbit.restore()


@pytest.fixture
def purge_queue(settings) -> None:
    """Drop task messages left in this test run's broker database by earlier tests."""
    import redis

    if not str(settings.CELERY_BROKER_URL).startswith("redis://"):
        return  # a RabbitMQ test's queues are its own, new and deleted after it
    conn = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in conn.scan_iter("*"):
        name = key.decode()
        queues = ("celery", *settings.NP_QUEUES, "unacked", "unacked_index")
        if name in queues or name.startswith("_kombu"):
            conn.delete(key)
