"""Idle websocket connections held by ONE daphne process serving ``notifyplatform.asgi``
(goal >= 10,000), with the process's RSS.

Clients come from several load-client processes (the open-files soft limit is raised to
the hard limit in every process). Each connection is a full one: its
``websocket_connections`` row, a topic subscription, heartbeats (``?heartbeat=300``).
Once all are open the server is left idle for a few seconds, then one event is
published to the topic and the time until every connection has it is reported too
(the connections are alive, not just open sockets).

    DATABASE_URL=... REDIS_URL=... python bench/ws_idle.py --json [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsbench_common as wb  # noqa: E402

GOAL = 10_000
TOPIC = "bench.idle"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--connections", type=int, default=GOAL)
    args = parser.parse_args()
    limit = wb.raise_nofile()
    target = args.connections
    env = wb.bench_env(f"np-bench-wsidle-{os.getpid()}")
    wb.ensure_database(env)
    wb.setup_django(env)
    from realtime.models import RealTimeEvent, WebsocketConnection
    from realtime.services import publish

    server = wb.Daphne("notifyplatform.asgi:application", env, "ws-idle")
    held = 0
    failed = 0
    rss_idle = rss_base = peak = None
    broadcast_s = None
    received = 0
    connect_s = 0.0
    try:
        with wb.running(server):
            time.sleep(1)
            rss_base = server.rss_mb("VmRSS")
            started = time.monotonic()
            pool = wb.ClientPool(
                server.port,
                f"/ws/v1/events/?topics={TOPIC}&heartbeat=300",
                target,
                processes=4,
                sample_every=10**9,
                concurrency=50,
            )
            try:
                ready, failed = pool.wait_ready(timeout=600)
                connect_s = time.monotonic() - started
                wb.log(f"{ready} connections open ({failed} failed) in {connect_s:.1f}s")
                time.sleep(3 if args.quick else 5)
                snap = pool.snapshot()
                held = snap["open"]
                rss_idle = server.rss_mb("VmRSS")
                pool.snapshot()
                t0 = time.time()
                publish(
                    event_type="bench.idle.ping",
                    category="system",
                    data={"t": t0},
                    visibility="public",
                    topics=[TOPIC],
                    retention_policy="short",
                )
                deadline = time.time() + 60
                while time.time() < deadline:
                    time.sleep(0.2)
                    snap = pool.snapshot()
                    received += snap["events"]
                    if received >= held:
                        broadcast_s = snap["last_event_at"] - t0
                        break
                held = min(held, pool.snapshot()["open"])
                peak = server.rss_mb("VmHWM")
            finally:
                pool.close()
    finally:
        RealTimeEvent.objects.filter(event_type="bench.idle.ping").delete()
        WebsocketConnection.objects.filter(user_agent=wb.BENCH_USER_AGENT).delete()
    per_conn_kb = (rss_idle - rss_base) * 1024 / held if held and rss_idle and rss_base else None
    wb.emit(
        "idle websocket connections held by one server process",
        held,
        "connections",
        goal=f">= {GOAL}",
        met=held >= GOAL,
        note=(
            f"asked {target}, {failed} failed to open; opened in {connect_s:.1f}s; "
            f"open-files limit {limit}; one event to all of them arrived in "
            f"{broadcast_s if broadcast_s is None else round(broadcast_s, 3)}s "
            f"({received} received)"
        ),
        as_json=args.json,
    )
    wb.emit(
        "RSS of that server process with the connections open",
        rss_idle,
        "MiB",
        baseline=rss_base,
        baseline_label="the same process before any connection",
        goal="reported",
        met=None,
        note=(
            f"VmRSS with {held} idle connections; "
            f"{per_conn_kb:.1f} KiB per connection; peak (VmHWM) {peak:.1f} MiB"
            if per_conn_kb and peak
            else f"peak {peak}"
        ),
        as_json=args.json,
    )


if __name__ == "__main__":
    main()
