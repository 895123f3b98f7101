"""Websocket fan-out to 1,000 subscribers beyond one quiet server process
(``ws_throughput.py``'s ramp, publisher and clients):

* ``--mode split``: the 1,000 subscribers split over 2 daphne processes (500 each, one
  load-client process each) against all of them on one process, in the same run: events/s
  at p99 <= 100 ms and the p99 of each. Reported (on 2 cores the two servers share the
  cores with PostgreSQL, Redis, the publisher and the clients).
* ``--mode busy``: ours and stock Channels, both with a CPU-bound process spinning beside
  them (``cpuhog.py``): the ">= 4x stock" goal, also with the other core busy.

    DATABASE_URL=... REDIS_URL=... python bench/ws_split.py --json --mode split|busy [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsbench_common as wb  # noqa: E402
from cpuhog import cpu_hog  # noqa: E402
from ws_throughput import (  # noqa: E402
    SUBSCRIBERS,
    TOPIC,
    best,
    hub_publisher,
    measure,
    ramp,
    step_text,
    stock_publisher,
)

OURS_PATH = f"/ws/v1/events/?topics={TOPIC}&heartbeat=300&batch=1"


class SplitPool:
    """One load-client process per server, seen as one pool by ``ramp``."""

    def __init__(self, ports: list[int], total: int) -> None:
        share = total // len(ports)
        self.pools = [
            wb.ClientPool(port, OURS_PATH, share, processes=1, wait_for=("connected", "subscribed"))
            for port in ports
        ]

    def wait_ready(self) -> tuple[int, int]:
        answers = [pool.wait_ready() for pool in self.pools]
        return sum(a[0] for a in answers), sum(a[1] for a in answers)

    def snapshot(self) -> dict[str, Any]:
        parts = [pool.snapshot() for pool in self.pools]
        return {
            "events": sum(p["events"] for p in parts),
            "latencies": [x for p in parts for x in p["latencies"]],
        }

    def close(self) -> None:
        for pool in self.pools:
            pool.close()


def split_run(env: dict[str, str], args: argparse.Namespace) -> list[dict[str, Any]]:
    servers = [wb.Daphne("notifyplatform.asgi:application", env, f"ws-split-{n}") for n in (0, 1)]
    with wb.running(servers[0]), wb.running(servers[1]):
        pool = SplitPool([s.port for s in servers], SUBSCRIBERS)
        try:
            ready, failed = pool.wait_ready()
            wb.log(f"split: {ready} subscribers ready ({failed} failed)")
            if ready < SUBSCRIBERS:
                raise RuntimeError(f"split: only {ready} of {SUBSCRIBERS} connected")
            return ramp(
                pool,  # type: ignore[arg-type]  # the ClientPool interface ramp uses
                hub_publisher(),
                ready,
                start_rate=8.0,
                step_seconds=1.0 if args.quick else 1.5,
                max_seconds=8 if args.quick else 12,
            )
        finally:
            pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mode", choices=["split", "busy"], required=True)
    args = parser.parse_args()
    wb.raise_nofile()
    env = wb.bench_env(f"np-bench-wssplit-{os.getpid()}", NP_CHANNEL_LAYER_CAPACITY="100000")
    wb.ensure_database(env)
    wb.setup_django(env)
    budget = 8 if args.quick else 12
    one_path = ("connected", "subscribed")

    if args.mode == "split":
        one, _rss = measure(
            "one", "notifyplatform.asgi:application", OURS_PATH, one_path, hub_publisher(),
            env, args, start_rate=8.0, max_seconds=budget,
        )  # fmt: skip
        two = split_run(env, args)
        one_best, two_best = best(one), best(two)
        wb.emit(
            "websocket events delivered/s, 1,000 subscribers split over 2 daphne processes,"
            " p99 <= 100 ms",
            two_best["delivered_per_s"] if two_best else 0.0,
            "events/s",
            baseline=one_best["delivered_per_s"] if one_best else None,
            baseline_label="all 1,000 on one daphne process, same run",
            goal="reported (events/s and p99 vs one process)",
            met=None,
            note=f"2 processes: {step_text(two_best)}; 1 process: {step_text(one_best)}",
            as_json=args.json,
        )
    else:
        with cpu_hog():
            publish, close = stock_publisher("stock")
            stock, _ = measure(
                "stock-busy", "bench.stock_asgi:application", "/ws/stock/", ("subscribed",),
                publish, env, args, start_rate=2.0, max_seconds=8 if args.quick else 10,
            )  # fmt: skip
            close()
            cap = best(stock, "ok_1s")
            ours, _ = measure(
                "ours-busy", "notifyplatform.asgi:application", OURS_PATH, one_path,
                hub_publisher(), env, args, start_rate=max(4.0, cap["rate"] if cap else 4.0),
                max_seconds=budget,
            )  # fmt: skip
        stock_best = best(stock) or cap
        base = stock_best["delivered_per_s"] if stock_best else None
        ours_best = best(ours)
        value = ours_best["delivered_per_s"] if ours_best else 0.0
        wb.emit(
            "websocket events delivered/s to 1,000 subscribers, p99 <= 100 ms, with a CPU-bound"
            " process beside it",
            value,
            "events/s",
            baseline=base,
            baseline_label="stock Channels with the same CPU-bound process, same run"
            + ("" if best(stock) else " (its best at p99 <= 1 s)"),
            goal=">= 4x baseline",
            met=bool(base and value / base >= 4),
            note=f"ours: {step_text(ours_best)}; stock: {step_text(stock_best)}",
            as_json=args.json,
        )

    from realtime.models import RealTimeEvent, WebsocketConnection

    RealTimeEvent.objects.filter(event_type="bench.tick").delete()
    WebsocketConnection.objects.filter(user_agent=wb.BENCH_USER_AGENT).delete()


if __name__ == "__main__":
    main()
