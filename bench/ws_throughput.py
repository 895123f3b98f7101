"""Websocket events delivered per second by ONE server process to 1,000 subscribers of one
topic, at p99 latency <= 100 ms.

Each server under test is one daphne process; 1,000 subscribers connect from several
load-client processes. The publisher raises its rate step by step (x1.25) until the
p99 latency (publish call -> frame read by the client, measured on every 5th
connection) exceeds 100 ms or events are lost; the figure is the delivered rate of the
best step that passed.

* baseline: stock Channels (``bench/stock_asgi.py``: every consumer in the group, one
  ``group_send`` per event), published with a pre-serialised text;
* ours: ``notifyplatform.asgi`` with ``realtime.services.publish`` (database row, commit,
  per-process fan-out through ``realtime.hub``), clients with and without ``?batch=1``.

    DATABASE_URL=... REDIS_URL=... python bench/ws_throughput.py --json [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsbench_common as wb  # noqa: E402

P99_GOAL = 0.100
P99_LOOSE = 1.0  # a second bound, to compare capacity when a server never meets 100 ms
SUBSCRIBERS = 1000
TOPIC = "bench.fanout"


def ramp(
    pool: wb.ClientPool,
    publish: Callable[[float, int, int], int],
    subscribers: int,
    step_seconds: float,
    max_seconds: float,
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    rate = 1.0
    started = time.monotonic()
    failures = 0
    while rate <= 400 and time.monotonic() - started < max_seconds:
        pool.snapshot()  # zero the counters
        count = max(2, int(rate * step_seconds))
        t0 = time.time()
        published = publish(rate, count, len(steps))
        elapsed = time.time() - t0
        expected = published * subscribers
        events = 0
        latencies: list[float] = []
        deadline = time.time() + 3.0
        while True:
            time.sleep(0.25)
            snap = pool.snapshot()
            events += snap["events"]
            latencies.extend(snap["latencies"])
            if events >= expected or time.time() > deadline:
                break
        p99 = wb.percentile(latencies, 99)
        p50 = wb.percentile(latencies, 50)
        achieved = published / elapsed
        kept_up = events >= expected * 0.999 and achieved >= rate * 0.9
        ok = p99 is not None and p99 <= P99_GOAL and kept_up
        loose = p99 is not None and p99 <= P99_LOOSE and kept_up
        step = {
            "rate": round(rate, 2),
            "achieved_rate": round(achieved, 2),
            "delivered_per_s": round(events / elapsed, 1),
            "p50_ms": round((p50 or 0) * 1000, 1),
            "p99_ms": round((p99 or 0) * 1000, 1),
            "lost": max(0, expected - events),
            "ok": ok,
            "ok_1s": loose,
        }
        steps.append(step)
        wb.log(f"  step {step}")
        if not loose:
            failures += 1
            if failures >= 2:  # one retry at the same rate absorbs a hiccup
                break
            continue
        failures = 0
        rate *= 1.25
    return steps


def best(steps: list[dict[str, Any]], key: str = "ok") -> dict[str, Any] | None:
    passed = [s for s in steps if s[key]]
    return max(passed, key=lambda s: s["delivered_per_s"]) if passed else None


def stock_publisher(prefix: str) -> tuple[Callable[[float, int, int], int], Callable[[], None]]:
    from channels.layers import get_channel_layer

    loop = asyncio.new_event_loop()
    layer = get_channel_layer()

    def publish(rate: float, count: int, step: int) -> int:
        async def run() -> int:
            start = time.monotonic()
            for i in range(count):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                frame = {
                    "type": "event",
                    "id": f"stock-{step}-{i}",
                    "seq": step * 100_000 + i,
                    "event_type": "bench.tick",
                    "category": "system",
                    "visibility": "public",
                    "topics": [TOPIC],
                    "data": {"t": time.time(), "step": step, "i": i},
                }
                text = json.dumps(frame, separators=(",", ":"))
                await layer.group_send("bench.stock", {"type": "rt.event", "text": text})
            return count

        return loop.run_until_complete(run())

    return publish, loop.close


def hub_publisher() -> Callable[[float, int, int], int]:
    from realtime.services import publish as rt_publish

    def publish(rate: float, count: int, step: int) -> int:
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            rt_publish(
                event_type="bench.tick",
                category="system",
                data={"t": time.time(), "step": step, "i": i},
                visibility="public",
                topics=[TOPIC],
                retention_policy="short",
            )
        return count

    return publish


def measure(
    label: str,
    app: str,
    path: str,
    wait_for: tuple[str, ...],
    publish: Callable[[float, int, int], int],
    env: dict[str, str],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], float | None]:
    server = wb.Daphne(app, env, f"ws-throughput-{label}")
    with wb.running(server):
        pool = wb.ClientPool(server.port, path, SUBSCRIBERS, processes=2, wait_for=wait_for)
        try:
            ready, failed = pool.wait_ready()
            wb.log(f"{label}: {ready} subscribers ready ({failed} failed)")
            if ready < SUBSCRIBERS:
                raise RuntimeError(f"{label}: only {ready} of {SUBSCRIBERS} connected")
            steps = ramp(
                pool,
                publish,
                ready,
                step_seconds=2.0 if args.quick else 4.0,
                max_seconds=70 if args.quick else 150,
            )
        finally:
            pool.close()
        return steps, server.rss_mb("VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    wb.raise_nofile()
    prefix = f"np-bench-wsthr-{os.getpid()}"
    # A channel's capacity bounds what waits in Redis for one server process; stock
    # Channels queues 1,000 copies of every event there, so with the default (1,000)
    # it drops events from the second one in flight. Both servers get a capacity that
    # never drops, so the baseline is limited by its latency, not by losses.
    env = wb.bench_env(prefix, NP_CHANNEL_LAYER_CAPACITY="100000")
    wb.ensure_database(env)
    wb.setup_django(env)

    stock_publish, stock_close = stock_publisher(prefix)
    stock_steps, stock_rss = measure(
        "stock",
        "bench.stock_asgi:application",
        "/ws/stock/",
        ("subscribed",),
        stock_publish,
        env,
        args,
    )
    stock_close()
    results: dict[str, tuple[list[dict[str, Any]], float | None]] = {}
    variants = [("hub_batch", "&batch=1")] + ([] if args.quick else [("hub_single", "")])
    for label, extra in variants:
        results[label] = measure(
            label,
            "notifyplatform.asgi:application",
            f"/ws/v1/events/?topics={TOPIC}&heartbeat=300{extra}",
            ("connected", "subscribed"),
            hub_publisher(),
            env,
            args,
        )

    from realtime.models import RealTimeEvent, WebsocketConnection

    RealTimeEvent.objects.filter(event_type="bench.tick").delete()
    WebsocketConnection.objects.filter(user_agent=wb.BENCH_USER_AGENT).delete()

    stock_best = best(stock_steps)
    baseline = stock_best["delivered_per_s"] if stock_best else None
    ours_steps, ours_rss = results["hub_batch"]
    ours = best(ours_steps)
    value = ours["delivered_per_s"] if ours else 0.0
    ratio = value / baseline if baseline else None
    wb.emit(
        "ws_events_delivered_per_s_1000_subscribers_p99_100ms",
        value,
        "events/s",
        baseline=baseline,
        baseline_label="stock Channels group_send per consumer, same run",
        goal=">= 4x baseline",
        met=bool(ratio and ratio >= 4),
        note=(
            f"ratio {ratio:.2f}x; ours best step {ours}; stock best step {stock_best}"
            if ratio
            else f"ours {ours}; stock {stock_best}"
        ),
        as_json=args.json,
    )
    stock_loose = best(stock_steps, "ok_1s")
    ours_loose = best(ours_steps, "ok_1s")
    loose_base = stock_loose["delivered_per_s"] if stock_loose else None
    loose_value = ours_loose["delivered_per_s"] if ours_loose else 0.0
    wb.emit(
        "ws_events_delivered_per_s_1000_subscribers_p99_1s",
        loose_value,
        "events/s",
        baseline=loose_base,
        baseline_label="stock Channels group_send per consumer, same run",
        goal="reported (capacity at a looser p99 <= 1 s)",
        met=None,
        note=(f"ratio {loose_value / loose_base:.2f}x; " if loose_base else "")
        + f"ours {ours_loose}; stock {stock_loose}",
        as_json=args.json,
    )
    if "hub_single" in results:
        single = best(results["hub_single"][0])
        wb.emit(
            "ws_events_delivered_per_s_1000_subscribers_p99_100ms_one_event_per_frame",
            single["delivered_per_s"] if single else 0.0,
            "events/s",
            baseline=baseline,
            baseline_label="stock Channels group_send per consumer, same run",
            goal="reported (what coalescing adds)",
            met=None,
            note=f"per-process fan-out without coalesced frames; best step {single}",
            as_json=args.json,
        )
    wb.emit(
        "ws_throughput_server_peak_rss",
        ours_rss,
        "MiB",
        baseline=stock_rss,
        baseline_label="stock daphne peak RSS",
        goal="reported",
        met=None,
        note="VmHWM of the one daphne process under the ramp",
        as_json=args.json,
    )


if __name__ == "__main__":
    main()
