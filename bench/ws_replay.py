"""Replay of 10,000 missed events on reconnect: the time from the client's
``subscribe {topics, since}`` to the last replayed event read by the client
(goal <= 0.2 s), on one daphne process serving ``notifyplatform.asgi``.

The 10,000 public events on one topic are written with ``bulk_create`` (the replay
reads them from ``real_time_events`` like any others). Each run checks that all of them
arrive, in sequence order, exactly once. Reported: the median of several runs with
coalesced frames (``?batch=1``, what the JS client asks for) and, for comparison, one
event per frame.

    DATABASE_URL=... REDIS_URL=... python bench/ws_replay.py --json [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsbench_common as wb  # noqa: E402

EVENTS = 10_000
GOAL_S = 0.2  # issue 20 (it was 0.5)
SEQ_RE = re.compile(rb'"type":"event","id":"[^"]+","seq":(\d+)')


class ReplayClient(wb.WsClient):
    """Collects the sequence numbers of event frames (single or coalesced arrays)."""

    def __init__(self, host: str, path: str, expected: int) -> None:
        super().__init__(wb.Stats(), host, path, sample=False)
        self.waiting_for = {"connected"}
        self.expected = expected
        self.seqs: list[int] = []
        self.done = asyncio.get_running_loop().create_future()
        self.done_at = 0.0
        self.other: list[bytes] = []

    def _text(self, payload: bytes, now: float) -> None:
        if b'"type":"event"' in payload:
            self.seqs.extend(int(m) for m in SEQ_RE.findall(payload))
            if len(self.seqs) >= self.expected and not self.done.done():
                self.done_at = time.perf_counter()
                self.done.set_result(None)
            return
        if not self.ready.done():
            super()._text(payload, now)
            return
        self.other.append(payload)


async def replay_once(port: int, topic: str, since: int, batch: bool) -> tuple[float, list[int]]:
    loop = asyncio.get_running_loop()
    path = "/ws/v1/events/?heartbeat=300" + ("&batch=1" if batch else "")
    client = ReplayClient(f"127.0.0.1:{port}", path, EVENTS)
    await loop.create_connection(lambda: client, "127.0.0.1", port)
    await asyncio.wait_for(client.ready, 30)
    started = time.perf_counter()
    client.send_text(f'{{"type":"subscribe","topics":["{topic}"],"since":{since}}}')
    await asyncio.wait_for(client.done, 60)
    elapsed = client.done_at - started
    client.transport.close()  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    return elapsed, client.seqs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    wb.raise_nofile()
    env = wb.bench_env(f"np-bench-wsreplay-{os.getpid()}", NP_REPLAY_MAX_EVENTS=str(EVENTS))
    wb.ensure_database(env)
    wb.setup_django(env)
    from django.utils import timezone

    from realtime import selectors
    from realtime.models import RealTimeEvent, WebsocketConnection

    topic = f"bench.replay.{os.getpid()}"
    since = selectors.sequence_latest_committed()
    now = timezone.now()
    t0 = time.perf_counter()
    RealTimeEvent.objects.bulk_create(
        [
            RealTimeEvent(
                event_type="bench.replay",
                event_category="system",
                event_data={"i": i, "note": "a missed event"},
                visibility="public",
                broadcast_channels=[topic],
                priority="normal",
                retention_policy="short",
                generated_at=now,
            )
            for i in range(EVENTS)
        ],
        batch_size=2000,
    )
    wb.log(f"wrote {EVENTS} events in {time.perf_counter() - t0:.2f}s")
    expected = list(
        RealTimeEvent.objects.filter(broadcast_channels__has_key=topic)
        .order_by("sequence_number")
        .values_list("sequence_number", flat=True)
    )
    runs = 3 if args.quick else 7
    server = wb.Daphne("notifyplatform.asgi:application", env, "ws-replay")
    timings: dict[bool, list[float]] = {True: [], False: []}
    errors: list[str] = []
    try:
        with wb.running(server):
            for batch in (True, False):
                for _ in range(1 + runs):  # the first run warms the server up
                    elapsed, seqs = asyncio.run(replay_once(server.port, topic, since, batch))
                    if seqs != expected:
                        errors.append(f"batch={batch}: got {len(seqs)} events, order/gap mismatch")
                    timings[batch].append(elapsed)
                timings[batch] = timings[batch][1:]
                wb.log(f"batch={batch}: {[round(t, 3) for t in timings[batch]]}")
            rss = server.rss_mb("VmHWM")
    finally:
        RealTimeEvent.objects.filter(broadcast_channels__has_key=topic).delete()
        WebsocketConnection.objects.filter(user_agent=wb.BENCH_USER_AGENT).delete()
    value = statistics.median(timings[True])
    wb.emit(
        "replay of 10,000 missed events on reconnect",
        value,
        "s",
        baseline=statistics.median(timings[False]),
        baseline_label="same replay, one event per frame (no coalescing)",
        goal=f"<= {GOAL_S} s",
        met=value <= GOAL_S and not errors,
        note=(
            f"median of {runs} runs (subscribe -> last event read); all {EVENTS} in order, "
            f"exactly once: {not errors}; coalesced runs {[round(t, 3) for t in timings[True]]}"
            + (f"; errors: {errors}" if errors else "")
        ),
        as_json=args.json,
    )
    wb.emit(
        "peak RSS of the daphne process replaying",
        rss,
        "MiB",
        goal="reported",
        met=None,
        note="VmHWM of the daphne process",
        as_json=args.json,
    )


if __name__ == "__main__":
    main()
