"""Shared pieces of the websocket benchmarks (``bench/ws_*.py``, ``notify_to_inapp.py``).

* servers: daphne subprocesses on free loopback ports, the database migrated first;
* a load client light enough to hold thousands of sockets per process: a bare asyncio
  websocket client (server frames are unmasked and simple to parse; client frames are
  masked with a zero key, which RFC 6455 allows) that counts events and measures
  latency on a sample of its connections from the ``t`` (epoch seconds) the publisher
  put in each event's data;
* figures printed as one JSON line each.

Only the standard library and the project's own dependencies are used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from notifyplatform.testing import free_port, stop_process, wait_listening  # noqa: E402,F401 - free_port re-exported

PYTHON = sys.executable
BENCH_USER_AGENT = "np-bench/1.0"
EVENT_MARK = b'"type":"event"'
PING_MARK = b'{"type":"ping"'


# --- output ---------------------------------------------------------------------------


def emit(
    figure: str,
    value: float | int | None,
    unit: str,
    *,
    baseline: float | int | None = None,
    baseline_label: str | None = None,
    goal: str | None = None,
    met: bool | None = None,
    note: str = "",
    as_json: bool = True,
) -> None:
    row = {
        "figure": figure,
        "value": round(value, 3) if isinstance(value, float) else value,
        "unit": unit,
        "baseline": round(baseline, 3) if isinstance(baseline, float) else baseline,
        "baseline_label": baseline_label,
        "goal": goal,
        "met": met,
        "note": note,
    }
    if as_json:
        print(json.dumps(row), flush=True)
    else:
        print(
            f"{figure}: {row['value']} {unit}  (baseline {baseline} {baseline_label or ''};"
            f" goal {goal}; met={met}) {note}",
            flush=True,
        )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


# --- environment ----------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bench_env(prefix: str, **extra: str) -> dict[str, str]:
    """The environment of every child: the configured database and Redis, a channel-layer
    prefix of this run's own, quiet logs."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            raise SystemExit(
                f"{name} must be set (e.g. postgres://postgres@127.0.0.1:5432/np_bench_r)"
            )
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="notifyplatform.settings",
        NP_CHANNEL_LAYER_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        DEBUG="0",
        NP_REDIS_DB_ISOLATED="1",
    )
    env.update(extra)
    return env


def ensure_database(env: dict[str, str]) -> None:
    """Create the benchmark database if it is missing and migrate it; nothing when
    ``run.py`` migrated this very database before it started the script."""
    if env.get("NP_BENCH_MIGRATED") == env["DATABASE_URL"]:
        return
    import psycopg

    url = urlsplit(env["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class Daphne:
    """One daphne process (one server process: the unit every figure is about)."""

    def __init__(self, app: str, env: dict[str, str], name: str) -> None:
        self.app = app
        self.env = env
        self.port = free_port()
        self.log_path = Path(f"/tmp/np-bench-{name}-{os.getpid()}-{self.port}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daphne:
        log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), self.app],
            cwd=ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=raise_nofile,
        )
        wait_listening(self.port, proc=self.proc, timeout=60, log=self.log)
        return self

    def stop(self) -> None:
        stop_process(self.proc, grace=15)

    def log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def rss_mb(self, field: str = "VmRSS") -> float | None:
        """``VmRSS`` (now) or ``VmHWM`` (peak) of the server process, in MiB."""
        if self.proc is None:
            return None
        return proc_rss_mb(self.proc.pid, field)


def proc_rss_mb(pid: int, field: str = "VmHWM") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


@contextlib.contextmanager
def running(*servers: Daphne) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


# --- a light websocket client ---------------------------------------------------------


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload  # a zero mask leaves the payload as is


class Stats:
    def __init__(self) -> None:
        self.events = 0
        self.frames = 0
        self.latencies: list[float] = []
        self.seqs: list[int] = []  # per sampled connection when asked for (replay)


class WsClient(asyncio.Protocol):
    def __init__(
        self, stats: Stats, host: str, path: str, *, sample: bool, keep_seqs: bool = False
    ) -> None:
        self.stats = stats
        self.host = host
        self.path = path
        self.sample = sample
        self.keep_seqs = keep_seqs
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.first_frames: list[dict[str, Any]] = []
        self.waiting_for = {"connected"}
        self.events_seen = 0
        self.last_event_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://{self.host}\r\nUser-Agent: {BENCH_USER_AGENT}\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(text.encode()))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.ready.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            del buf[: end + 4]
            self.upgraded = True
        now = time.time()
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                offset = 10
            if len(buf) < offset + length:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == 0x1:
                self._text(payload, now)
            elif opcode == 0x9:
                self.transport.write(_frame(payload, 0xA))  # type: ignore[union-attr]
            elif opcode == 0x8:
                self.transport.close()  # type: ignore[union-attr]

    def _text(self, payload: bytes, now: float) -> None:
        self.stats.frames += 1
        count = payload.count(EVENT_MARK)
        if count:
            self.stats.events += count
            self.events_seen += count
            self.last_event_at = now
            if self.sample or self.keep_seqs:
                decoded = json.loads(payload)
                frames = decoded if isinstance(decoded, list) else [decoded]
                for frame in frames:
                    if self.sample:
                        t = (frame.get("data") or {}).get("t")
                        if t is not None:
                            self.stats.latencies.append(now - t)
                    if self.keep_seqs:
                        self.stats.seqs.append(frame["seq"])
            return
        if payload.startswith(PING_MARK):
            self.send_text('{"type":"pong"}')
            return
        if not self.ready.done():
            frame = json.loads(payload)
            self.first_frames.append(frame)
            self.waiting_for.discard(frame.get("type"))
            if not self.waiting_for:
                self.ready.set_result(None)


async def open_clients(
    host: str,
    port: int,
    path: str,
    count: int,
    *,
    sample_every: int,
    stats: Stats,
    concurrency: int = 100,
    wait_for: tuple[str, ...] = ("connected", "subscribed"),
) -> tuple[list[WsClient], int]:
    """Open ``count`` connections (``concurrency`` handshakes at a time); each is ready when
    it has seen the ``wait_for`` frames. Returns the clients and the number that failed."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    clients: list[WsClient] = []
    failed = 0
    retried = 0

    async def one(i: int) -> None:
        nonlocal failed, retried
        for attempt in range(3):  # like a real client, retry a refused or slow handshake
            async with gate:
                client = WsClient(stats, f"127.0.0.1:{port}", path, sample=(i % sample_every == 0))
                client.waiting_for = set(wait_for)
                try:
                    await loop.create_connection(lambda c=client: c, host, port)
                    await asyncio.wait_for(client.ready, 60)
                    clients.append(client)
                    return
                except Exception:  # noqa: BLE001 - counted, reported
                    if client.transport is not None:
                        client.transport.close()
            if attempt < 2:
                retried += 1
                await asyncio.sleep(1 + attempt)
        failed += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    if retried:
        log(f"{retried} connection attempts were retried")
    return clients, failed


def client_process(
    conn: Connection,
    port: int,
    path: str,
    count: int,
    sample_every: int,
    wait_for: tuple[str, ...],
    concurrency: int,
) -> None:
    """A load-client process: opens its connections, then answers the parent's commands
    ``snapshot`` (events, frames and latency samples since the last one) and ``close``."""
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stats = Stats()
        clients, failed = await open_clients(
            "127.0.0.1",
            port,
            path,
            count,
            sample_every=sample_every,
            stats=stats,
            concurrency=concurrency,
            wait_for=wait_for,
        )
        conn.send({"ready": len(clients), "failed": failed})
        commands: asyncio.Queue[Any] = asyncio.Queue()
        loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
        while True:
            command = await commands.get()
            if command == "snapshot":
                conn.send(
                    {
                        "events": stats.events,
                        "frames": stats.frames,
                        "latencies": stats.latencies,
                        "open": sum(1 for c in clients if not c.closed.done()),
                        "last_event_at": max((c.last_event_at for c in clients), default=0),
                    }
                )
                stats.events = 0
                stats.frames = 0
                stats.latencies = []
            elif command == "close":
                for client in clients:
                    if client.transport is not None:
                        client.transport.close()
                await asyncio.sleep(0.2)
                conn.send({"closed": True})
                return

    asyncio.run(main())


class ClientPool:
    """Several load-client processes against one server."""

    def __init__(
        self,
        port: int,
        path: str,
        total: int,
        processes: int,
        *,
        sample_every: int = 5,
        wait_for: tuple[str, ...] = ("connected", "subscribed"),
        concurrency: int = 100,
    ) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs = []
        per = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
        for n in per:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=client_process,
                args=(child, port, path, n, sample_every, wait_for, concurrency),
                daemon=True,
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def wait_ready(self, timeout: float = 300) -> tuple[int, int]:
        ready = failed = 0
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            if not conn.poll(max(0.1, deadline - time.monotonic())):
                raise RuntimeError("load clients did not get ready in time")
            answer = conn.recv()
            ready += answer["ready"]
            failed += answer["failed"]
        return ready, failed

    def snapshot(self) -> dict[str, Any]:
        for conn in self.conns:
            conn.send("snapshot")
        total: dict[str, Any] = {
            "events": 0,
            "frames": 0,
            "latencies": [],
            "open": 0,
            "last_event_at": 0.0,
        }
        for conn in self.conns:
            part = conn.recv()
            total["events"] += part["events"]
            total["frames"] += part["frames"]
            total["latencies"].extend(part["latencies"])
            total["open"] += part["open"]
            total["last_event_at"] = max(total["last_event_at"], part["last_event_at"])
        return total

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.send("close")
        for conn in self.conns:
            with contextlib.suppress(Exception):
                if conn.poll(10):
                    conn.recv()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
