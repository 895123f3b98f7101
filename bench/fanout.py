"""Bulk fan-out: ``notify_many`` to N users (in_app + email), notifications + deliveries rows
written per second, against a raw PostgreSQL COPY of the very same rows into the same
(indexed, empty) tables, measured in the same run. Also the cost curve: the same fan-out
to a tenth of the users, seconds per row at N against N/10 (``fanout_curve.py --large``
adds 1M).

    python bench/fanout.py [--json] [--quick] [--users N]
"""

from __future__ import annotations

import io
import time

from common import Reporter, ensure_users, flush_redis, parse_args, setup_django, truncate

LINEAR_WITHIN = 0.15  # the cost curve: seconds per row at the largest size vs the smallest

CONTEXT = {
    "inviter_name": "Alice",
    "article_title": "City opens new library",
    "invitation_url": "https://example.test/i/def456",
}


def seed_preferences(users: list) -> int:
    """5 % of users opt out of email, 5 % have in-app quiet hours covering all day."""
    from datetime import time as dtime

    from deliveries.models import UserNotificationPreference

    UserNotificationPreference.objects.filter(user__in=[]).delete()
    UserNotificationPreference.objects.all().delete()
    rows = []
    for n, user in enumerate(users):
        if n % 20 == 0:
            rows.append(
                UserNotificationPreference(
                    user=user,
                    invitation_type="news_feed",
                    delivery_method="email",
                    is_enabled=False,
                )
            )
        elif n % 20 == 1:
            rows.append(
                UserNotificationPreference(
                    user=user,
                    invitation_type="*",
                    delivery_method="in_app",
                    quiet_hours_start=dtime(0, 0),
                    quiet_hours_end=dtime(23, 59),
                )
            )
    UserNotificationPreference.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def count_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM notifications)"
            " + (SELECT count(*) FROM notification_deliveries)"
        )
        return int(cursor.fetchone()[0])


def raw_copy_of_same_rows() -> tuple[int, float]:
    """Dump what notify_many wrote, empty the tables, COPY it back in: rows and seconds."""
    from django.db import connection, transaction

    connection.ensure_connection()
    dumps: dict[str, bytes] = {}
    with connection.connection.cursor() as cursor:
        for table in ("notifications", "notification_deliveries"):
            buf = io.BytesIO()
            with cursor.copy(f"COPY {table} TO STDOUT") as copy:
                for data in copy:
                    buf.write(data)
            dumps[table] = buf.getvalue()
    truncate("notifications", "notification_deliveries")
    rows = sum(data.count(b"\n") for data in dumps.values())
    started = time.perf_counter()
    with transaction.atomic(), connection.connection.cursor() as cursor:
        for table, data in dumps.items():
            with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                for offset in range(0, len(data), 1 << 20):
                    copy.write(data[offset : offset + (1 << 20)])
    return rows, time.perf_counter() - started


def report_curve(report: Reporter, points: list[tuple[int, int, float]]) -> None:
    """The cost-curve figure from (users, rows, seconds) points, smallest first."""
    sizes = [size for size, _rows, _seconds in points]
    per_row = [seconds / rows for _size, rows, seconds in points]
    drift = per_row[-1] / per_row[0] - 1
    curve = "; ".join(
        f"{size:,}: {seconds:.1f} s, {rows / seconds:,.0f} rows/s" for size, rows, seconds in points
    )
    size, rows, seconds = points[-1]
    report.figure(
        f"fan-out cost curve, notify_many to {', '.join(f'{s:,}' for s in sizes)} users",
        rows / seconds,
        "rows/s",
        baseline=points[0][1] / points[0][2],
        baseline_label=f"rows/s at {points[0][0]:,} users",
        goal="cost linear within 15 %",
        met=abs(drift) <= LINEAR_WITHIN,
        note=f"{curve}; seconds per row at {size:,} vs {points[0][0]:,}: {drift:+.1%}",
    )


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("--users", type=int, default=None),
    )
    setup_django()
    from django.conf import settings

    from deliveries.services import notify, notify_many

    # the write path alone, whatever providers earlier scripts left in the database: the
    # in-app fast path (rows written sent, events published) is batch_100k's to measure
    settings.NP_INAPP_FAST_PATH = False

    report = Reporter(args.json)
    n_users = args.users or (10_000 if args.quick else 100_000)
    users = ensure_users(n_users)
    seed_preferences(users)
    truncate("notifications", "notification_deliveries")
    kwargs = {"template_key": "news_feed", "context": CONTEXT, "channels": ["in_app", "email"]}

    # the old way, for the record: one notify() per recipient
    sample = users[: 50 if args.quick else 100]
    started = time.perf_counter()
    for user in sample:
        notify(user, idempotency_key=f"single:{user.pk}", **kwargs)
    single_rate = count_rows() / (time.perf_counter() - started)
    truncate("notifications", "notification_deliveries")
    notify_many(users[:500], idempotency_prefix="warmup", **kwargs)  # caches, connections
    truncate("notifications", "notification_deliveries")
    flush_redis()
    # the collector as in the Celery worker that runs fan-outs in production (batch jobs,
    # broadcasts): its startup heap frozen, young-generation threshold NP_GC_THRESHOLD
    # (notifyplatform.gcfreeze); here the frozen heap also holds the users
    from notifyplatform.gcfreeze import freeze_heap

    freeze_heap()

    # the curve's small point: a tenth of the users, through the same warm path
    tenth = users[: max(1, n_users // 10)]
    started = time.perf_counter()
    notify_many(tenth, idempotency_prefix="fanout-tenth", **kwargs)
    small = (len(tenth), count_rows(), time.perf_counter() - started)
    truncate("notifications", "notification_deliveries")
    flush_redis()

    started = time.perf_counter()
    results = notify_many(users, idempotency_prefix="fanout", **kwargs)
    elapsed = time.perf_counter() - started
    rows = count_rows()
    assert len(results) == n_users, (len(results), n_users)
    rate = rows / elapsed
    started = time.perf_counter()
    again = notify_many(users[:1000], idempotency_prefix="fanout", **kwargs)
    rerun = time.perf_counter() - started
    assert not any(r.created for r in again)
    flush_redis()  # the enqueued send tasks: no worker here

    copy_rows_n, copy_elapsed = raw_copy_of_same_rows()
    copy_rate = copy_rows_n / copy_elapsed
    truncate("notifications", "notification_deliveries")
    ratio = rate / copy_rate
    report.figure(
        f"bulk fan-out: notify_many to {n_users:,} users (in_app + email), rows/s",
        rate,
        "rows/s",
        baseline=copy_rate,
        baseline_label="raw COPY of the same rows",
        goal=">= 0.6x",
        met=ratio >= 0.6,
        note=(
            f"{rows:,} rows in {elapsed:.1f}s (COPY {copy_elapsed:.1f}s); per-recipient"
            f" notify(): {single_rate:,.0f} rows/s; re-run of 1,000 keys: {rerun * 1000:.0f} ms,"
            " 0 rows"
        ),
    )
    report_curve(report, [small, (n_users, rows, elapsed)])
    report.rss("fan-out process (notify_many)", _self_rss())


def _self_rss() -> float | None:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
