"""Fan-out cost curve: ``notify_many`` (in_app + email, the ``fanout.py`` workload) to 10k,
100k and 1M users, seconds and rows/s at each size; the cost is linear when the seconds per
row at the largest size are within 15 % of those at the smallest. ``make bench`` runs it
with ``--large`` only: without it, ``fanout.py`` reports the 10k/100k curve from its own
runs.

    python bench/fanout_curve.py [--json] [--quick] [--large]
"""

from __future__ import annotations

import time

from common import Reporter, ensure_users, flush_redis, parse_args, setup_django, truncate
from fanout import CONTEXT, count_rows, report_curve, seed_preferences


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("--large", action="store_true", help="add 1,000,000 users"),
    )
    setup_django()
    from django.conf import settings

    from deliveries.services import notify_many

    # the write path alone, whatever providers earlier scripts left in the database: the
    # in-app fast path (rows written sent, events published) is batch_100k's to measure
    settings.NP_INAPP_FAST_PATH = False

    report = Reporter(args.json)
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000]
    if args.large:  # the 10k and 100k points again, so the three come from one run
        sizes.append(1_000_000)
    users = ensure_users(sizes[-1])
    seed_preferences(users)
    kwargs = {"template_key": "news_feed", "context": CONTEXT, "channels": ["in_app", "email"]}
    truncate("notifications", "notification_deliveries")
    notify_many(users[:500], idempotency_prefix="warmup", **kwargs)  # caches, connections
    points: list[tuple[int, int, float]] = []  # (users, rows, seconds)
    for size in sizes:
        truncate("notifications", "notification_deliveries")
        flush_redis()
        started = time.perf_counter()
        notify_many(users[:size], idempotency_prefix=f"curve{size}", **kwargs)
        elapsed = time.perf_counter() - started
        points.append((size, count_rows(), elapsed))
        report.log(f"{size:,} users: {points[-1][1]:,} rows in {elapsed:.1f}s")
    truncate("notifications", "notification_deliveries")
    flush_redis()  # the enqueued send tasks: no worker here

    report_curve(report, points)


if __name__ == "__main__":
    main()
