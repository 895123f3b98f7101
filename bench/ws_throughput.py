"""Websocket events delivered per second by ONE server process to 1,000 subscribers of one
topic, at p99 latency <= 100 ms.

Each server under test is one daphne process; 1,000 subscribers connect from two
load-client processes (bare asyncio clients, ``wsbench_common``) that count every event
at every subscriber and measure latency (publish call -> frame read) on every 5th
connection. The publisher raises its rate x1.5 per 1.5 s step while p99 <= 1 s holds,
then tries once between the best rate that met p99 <= 100 ms and the first that did
not; a step fails when an event is lost or the publisher could not keep the rate. The
figure is the delivered rate of the best step that met p99 <= 100 ms.

* baseline: stock Channels (``bench/stock_asgi.py``: every consumer in the group, one
  ``group_send`` per event), published with a pre-serialised text. At 1,000
  subscribers it never meets p99 <= 100 ms (~0.25 s per event's 1,000 Redis pops), so
  its best step at p99 <= 1 s is the baseline: a looser bound than ours is held to;
* ours: ``notifyplatform.asgi`` with ``realtime.services.publish`` (database row, commit,
  per-process fan-out through ``realtime.hub``, ready frames written by
  ``realtime.wire``), clients with ``?batch=1`` as the browser client asks
  (``realtime/static/realtime/client.js``), and (full mode) without it.

Full mode takes ~55 s (make bench's budget for it is 70 s).

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
    *,
    start_rate: float,
    step_seconds: float,
    max_seconds: float,
) -> list[dict[str, Any]]:
    """Raise the rate x1.5 per step from ``start_rate`` while the p99 <= 1 s bound holds
    (one retry at the same rate absorbs a hiccup), then try once between the best rate
    that met p99 <= 100 ms and the first that did not."""
    steps: list[dict[str, Any]] = []
    started = time.monotonic()

    def step(rate: float) -> dict[str, Any]:
        pool.snapshot()  # zero the counters
        count = max(4, int(rate * step_seconds))
        t0 = time.time()
        published = publish(rate, count, len(steps))
        elapsed = time.time() - t0
        expected = published * subscribers
        events = 0
        latencies: list[float] = []
        deadline = time.time() + 3.0
        while True:
            time.sleep(0.2)
            snap = pool.snapshot()
            events += snap["events"]
            latencies.extend(snap["latencies"])
            if events >= expected or time.time() > deadline:
                break
        p99 = wb.percentile(latencies, 99)
        p50 = wb.percentile(latencies, 50)
        achieved = published / elapsed
        kept_up = events >= expected * 0.999 and achieved >= rate * 0.9
        result = {
            "rate": round(rate, 2),
            "achieved_rate": round(achieved, 2),
            "delivered_per_s": round(events / elapsed, 1),
            "p50_ms": round((p50 or 0) * 1000, 1),
            "p99_ms": round((p99 or 0) * 1000, 1),
            "lost": max(0, expected - events),
            "ok": p99 is not None and p99 <= P99_GOAL and kept_up,
            "ok_1s": p99 is not None and p99 <= P99_LOOSE and kept_up,
        }
        steps.append(result)
        wb.log(f"  step {result}")
        return result

    rate = start_rate
    failures = 0
    while rate <= 1000 and time.monotonic() - started < max_seconds:
        if not step(rate)["ok_1s"]:
            failures += 1
            if failures >= 2:
                break
            continue
        failures = 0
        rate *= 1.5
    passed = [s["rate"] for s in steps if s["ok"]]
    above = [s["rate"] for s in steps if not s["ok"] and passed and s["rate"] > max(passed)]
    if passed and above and time.monotonic() - started < max_seconds:
        step((max(passed) * min(above)) ** 0.5)
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
    start_rate: float,
    max_seconds: float,
) -> tuple[list[dict[str, Any]], float | None]:
    server = wb.Daphne(app, env, f"ws-throughput-{label}")
    with wb.running(server):
        wb.log(f"{label}: server up")
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
                start_rate=start_rate,
                step_seconds=1.0 if args.quick else 1.5,
                max_seconds=max_seconds,
            )
        finally:
            pool.close()
            wb.log(f"{label}: clients closed")
        return steps, server.rss_mb("VmHWM")


def step_text(step: dict[str, Any] | None) -> str:
    """One ramp step, for the table's note."""
    if not step:
        return "no step"
    return (
        f"{step['achieved_rate']:.0f} events/s published, p50 {step['p50_ms']:.0f} ms,"
        f" p99 {step['p99_ms']:.0f} ms, {step['lost']} lost"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--single",
        action="store_true",
        help="also one event per frame (what coalescing adds; make bench --large)",
    )
    args = parser.parse_args()
    wb.raise_nofile()
    prefix = f"np-bench-wsthr-{os.getpid()}"
    # A channel's capacity bounds what waits in Redis for one server process; stock
    # Channels queues 1,000 copies of every event there, so with the default (1,000)
    # it drops events from the second one in flight. Both servers get a capacity that
    # never drops, so the baseline is limited by its latency, not by losses.
    env = wb.bench_env(prefix, NP_CHANNEL_LAYER_CAPACITY="100000")
    wb.log("start")
    wb.ensure_database(env)
    wb.setup_django(env)
    wb.log("database ready")

    stock_publish, stock_close = stock_publisher(prefix)
    stock_steps, stock_rss = measure(
        "stock",
        "bench.stock_asgi:application",
        "/ws/stock/",
        ("subscribed",),
        stock_publish,
        env,
        args,
        start_rate=2.0,
        max_seconds=8 if args.quick else 14,
    )
    stock_close()
    # ours starts at the baseline's capacity (its best step at p99 <= 1 s): the steps
    # below it would only repeat what the baseline showed, and the budget is ~70 s
    stock_cap = best(stock_steps, "ok_1s")
    ours_start = max(4.0, stock_cap["rate"]) if stock_cap else 4.0
    results: dict[str, tuple[list[dict[str, Any]], float | None]] = {}
    # the headline uses ?batch=1 because the browser client does (realtime/client.js
    # asks for coalesced frames by default); one event per frame with --single
    variants = [("hub_batch", "&batch=1")] + ([("hub_single", "")] if args.single else [])
    for label, extra in variants:
        results[label] = measure(
            label,
            "notifyplatform.asgi:application",
            f"/ws/v1/events/?topics={TOPIC}&heartbeat=300{extra}",
            ("connected", "subscribed"),
            hub_publisher(),
            env,
            args,
            start_rate=ours_start,
            max_seconds=(8 if args.quick else 18) if label == "hub_batch" else 14,
        )

    from realtime.models import RealTimeEvent, WebsocketConnection

    wb.log("cleanup")
    RealTimeEvent.objects.filter(event_type="bench.tick").delete()
    WebsocketConnection.objects.filter(user_agent=wb.BENCH_USER_AGENT).delete()
    wb.log("cleaned")

    # Stock Channels at 1,000 subscribers does not reach p99 <= 100 ms at any rate (each
    # event is 1,000 messages popped from Redis one round trip at a time: ~0.25 s per
    # event, whatever the rate). Its capacity at p99 <= 1 s is then the baseline: a
    # looser bound than ours is held to, so the ratio can only understate ours.
    stock_best = best(stock_steps)
    stock_label = "stock Channels group_send per consumer, same run"
    if stock_best is None:
        stock_best = best(stock_steps, "ok_1s")
        stock_label += " (never met p99 <= 100 ms; its best at p99 <= 1 s)"
    baseline = stock_best["delivered_per_s"] if stock_best else None
    ours_steps, ours_rss = results["hub_batch"]
    ours = best(ours_steps)
    value = ours["delivered_per_s"] if ours else 0.0
    ratio = value / baseline if baseline else None
    wb.emit(
        "websocket events delivered/s by one server process to 1,000 subscribers, p99 <= 100 ms",
        value,
        "events/s",
        baseline=baseline,
        baseline_label=stock_label,
        goal=">= 4x baseline",
        met=bool(ratio and ratio >= 4),
        note=(f"ours: {step_text(ours)}; stock: {step_text(stock_best)}"),
        as_json=args.json,
    )
    stock_loose = best(stock_steps, "ok_1s")
    ours_loose = best(ours_steps, "ok_1s")
    loose_base = stock_loose["delivered_per_s"] if stock_loose else None
    loose_value = ours_loose["delivered_per_s"] if ours_loose else 0.0
    wb.emit(
        "websocket events delivered/s to 1,000 subscribers at a looser p99 <= 1 s",
        loose_value,
        "events/s",
        baseline=loose_base,
        baseline_label="stock Channels group_send per consumer, same run",
        goal="reported (capacity at a looser p99 <= 1 s)",
        met=None,
        note=f"ours: {step_text(ours_loose)}; stock: {step_text(stock_loose)}",
        as_json=args.json,
    )
    if "hub_single" in results:
        single = best(results["hub_single"][0])
        wb.emit(
            "websocket events delivered/s to 1,000 subscribers, p99 <= 100 ms, one event per frame",
            single["delivered_per_s"] if single else 0.0,
            "events/s",
            baseline=baseline,
            baseline_label=stock_label,
            goal="reported (what coalescing adds)",
            met=None,
            note=f"without coalesced frames: {step_text(single)}",
            as_json=args.json,
        )
    wb.emit(
        "peak RSS of the daphne process under the websocket ramp",
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
