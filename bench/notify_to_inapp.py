"""``notify()`` -> in-app event at a subscribed websocket client, on an idle system
(goal p99 <= 50 ms).

One daphne process (``notifyplatform.asgi``) and one real Celery worker run against
the benchmark database. A user connected with an API token waits on its private
stream; the bench calls ``deliveries.services.notify(user, channels=["in_app"])`` one
notification at a time and times it from the call to the moment the client reads the
``notification.created`` event (matched by ``correlation_id``). The path is the
product's: notify's transaction (the due in-app delivery written as sent) -> on-commit
``publish`` -> channel layer -> the server's hub -> the socket. (Before 2026-12-02 the
row went through the worker: on-commit enqueue -> claim -> in-app send -> record ->
``publish``; the worker still runs here, as it does in production.)

    DATABASE_URL=... REDIS_URL=... python bench/notify_to_inapp.py --json [--quick] [--busy]

``--busy``: the same with a CPU-bound process spinning beside it (the other core busy;
goal p99 <= 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsbench_common as wb  # noqa: E402
from cpuhog import cpu_hog  # noqa: E402

GOAL_MS = 50.0
BUSY_GOAL_MS = 100.0
WARMUP = 5  # notifications that warm the worker and the server up, not measured


class InboxClient(wb.WsClient):
    def __init__(self, host: str, path: str) -> None:
        super().__init__(wb.Stats(), host, path, sample=False)
        self.waiting_for = {"connected"}
        self.arrived: dict[str, float] = {}
        self.signal = asyncio.Event()

    def _text(self, payload: bytes, now: float) -> None:
        if b'"type":"event"' in payload:
            decoded = json.loads(payload)
            for frame in decoded if isinstance(decoded, list) else [decoded]:
                if frame.get("event_type") == "notification.created":
                    self.arrived[frame.get("correlation_id")] = now
            self.signal.set()
            return
        super()._text(payload, now)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "notifyplatform",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=wb.ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def run(args: argparse.Namespace, port: int, token: str, user, count: int):  # noqa: ANN001, ANN201
    from asgiref.sync import sync_to_async

    from deliveries.services.notify import notify

    loop = asyncio.get_running_loop()
    client = InboxClient(f"127.0.0.1:{port}", f"/ws/v1/events/?heartbeat=300&token={token}")
    await loop.create_connection(lambda: client, "127.0.0.1", port)
    await asyncio.wait_for(client.ready, 30)
    call = sync_to_async(notify, thread_sensitive=True)
    latencies: list[float] = []
    calls: list[float] = []
    lost = 0
    measure_until = None
    for i in range(count + WARMUP):
        if i == WARMUP:
            measure_until = time.monotonic() + (8 if args.quick else 14)
        elif measure_until is not None and time.monotonic() > measure_until:
            break  # the time budget of make bench: report what was measured
        t0 = time.time()
        result = await call(
            user,
            title=f"Bench {i}",
            message="an in-app notification",
            channels=["in_app"],
            category="system",
            idempotency_key=f"bench-inapp-{uuid.uuid4()}",
        )
        if i >= WARMUP:
            calls.append(time.time() - t0)
        key = str(result.notification.pk)
        # the first one also waits for the worker to start consuming
        deadline = time.monotonic() + (30 if i == 0 else 5)
        while key not in client.arrived and time.monotonic() < deadline:
            client.signal.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.signal.wait(), 1)
        if key not in client.arrived:
            lost += 1
        elif i >= WARMUP:
            latencies.append(client.arrived[key] - t0)
        await asyncio.sleep(0.02)  # idle between notifications
    client.transport.close()  # type: ignore[union-attr]
    return latencies, lost, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--busy", action="store_true", help="a CPU-bound process beside it")
    args = parser.parse_args()
    goal_ms = BUSY_GOAL_MS if args.busy else GOAL_MS
    count = 60 if args.quick else 150  # p99 = the 2nd slowest; make bench's 10 minutes
    env = wb.bench_env(f"np-bench-inapp-{os.getpid()}")
    wb.ensure_database(env)
    wb.setup_django(env)
    from django.contrib.auth import get_user_model

    from providers.models import Provider
    from realtime.models import WebsocketConnection
    from users.services import token_create

    Provider.objects.get_or_create(
        provider_name="bench-in-app",
        defaults={"provider_type": "in_app", "provider_class": "in_app"},
    )
    user = get_user_model().objects.create(
        email=f"bench-inapp-{uuid.uuid4().hex[:12]}@bench.invalid", display_name="Bench"
    )
    _token, raw = token_create(user=user, name="bench notify_to_inapp")
    server = wb.Daphne("notifyplatform.asgi:application", env, "notify-inapp")
    worker_log = Path(f"/tmp/np-bench-inapp-worker-{os.getpid()}.log")
    worker = start_worker(env, worker_log)
    try:
        hog = cpu_hog() if args.busy else contextlib.nullcontext()
        with wb.running(server), hog:
            latencies, lost, calls = asyncio.run(run(args, server.port, raw, user, count))
            rss = server.rss_mb("VmHWM")
            worker_rss = wb.proc_rss_mb(worker.pid, "VmHWM")
    finally:
        stop(worker)
        WebsocketConnection.objects.filter(user=user).delete()
        user.delete()
    p50 = wb.percentile(latencies, 50)
    p99 = wb.percentile(latencies, 99)
    wb.emit(
        "notify() -> in-app event at a subscribed client, "
        + (
            "the other core busy (a CPU-bound process beside it), p99" if args.busy else "idle, p99"
        ),
        round(p99 * 1000, 1) if p99 is not None else None,
        "ms",
        goal=f"p99 <= {goal_ms:.0f} ms",
        met=p99 is not None and p99 * 1000 <= goal_ms and not lost,
        note=(
            f"{len(latencies)} notifications one at a time (of {count} asked), p50 "
            f"{p50 * 1000 if p50 else 0:.1f} ms, max {max(latencies) * 1000 if latencies else 0:.1f}"
            f" ms, lost {lost}; the notify() call itself p50 "
            f"{(wb.percentile(calls, 50) or 0) * 1000:.1f} ms; notify() writes the in-app row sent -> on-commit publish"
            " -> daphne -> client"
        ),
        as_json=args.json,
    )
    if args.busy:
        return  # the idle row reports the memory
    wb.emit(
        "peak RSS of the daphne process (notify -> in-app)",
        rss,
        "MiB",
        goal="reported",
        met=None,
        note=f"daphne VmHWM; Celery worker main process VmHWM {worker_rss} MiB",
        as_json=args.json,
    )


if __name__ == "__main__":
    main()
