"""Workflow digest: 5,000 triggers across 500 users (``--triggers``/``--users``; issue
18's run was 100,000 across 10,000), each user's collected into ONE digest message.

Creates the users (``COPY``, reused by the next run), a workflow ``bench-digest`` (a digest
per user and ``auction_id``, then one in-app message "{{ digest_count }} bids"), and fires
the triggers through ``workflow_trigger()`` from ``--procs`` processes — each call one event
for ``--per-call`` recipients (default 100, a list trigger ingested in bulk; 1 is one event
per user per call): the first figure is triggers ingested per second (each is a
run row, a step row and a digest join, committed). Then two real Celery workers start and
the dispatcher (``workflow_steps_dispatch_due``, run here as beat would) hands them the due
digest leaders: the second figure is the time until every user's digest message is written
and its in-app delivery sent, checked to be exactly one per user with the counts adding up
to the triggers.

    DATABASE_URL=... REDIS_URL=... python bench/digest.py --json [--quick]
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing
import os
import signal
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

import batch_100k  # noqa: E402 - the worker start/stop and the user COPY of the batch bench

KEY = "bench-digest"


def _ingest(args: tuple[list[str], int, int, str, int]) -> tuple[int, float]:
    """One process's share: trigger after trigger, each its own transaction; a trigger
    names ``per_call`` recipients (1: one event for one user; more: a list trigger, one
    event fanned out to many users)."""
    user_ids, per_user, part, run, per_call = args
    import django
    from django.db import connections

    django.setup()
    connections.close_all()
    from campaigns.services.workflows import workflow_trigger

    started = time.monotonic()
    count = 0
    for n in range(per_user):
        for start in range(0, len(user_ids), per_call):
            recipients = user_ids[start : start + per_call]
            workflow_trigger(
                KEY,
                recipients=recipients,
                data={"auction_id": run, "amount": f"${n}", "bidder": f"p{part}"},
            )
            count += len(recipients)
    elapsed = time.monotonic() - started
    connections.close_all()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--quick", action="store_true", help="2,000 triggers, 200 users")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--triggers", type=int, default=5_000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument(
        "--per-call",
        type=int,
        default=100,
        help="recipients per trigger call (1: one event per user; default: list triggers)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    users = 200 if args.quick else args.users
    triggers = 2_000 if args.quick else args.triggers
    per_user = max(1, triggers // users)
    triggers = per_user * users

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("deliveries").setLevel(logging.WARNING)
    logging.getLogger("campaigns").setLevel(logging.WARNING)
    from django.db import connection

    from campaigns.models import WorkflowDigest, WorkflowRun
    from campaigns.services.workflows import workflow_save, workflow_steps_dispatch_due
    from deliveries.models import Notification, NotificationDelivery
    from providers.models import Provider
    from users.models import User

    atexit.register(batch_100k._stop_workers)
    signal.signal(signal.SIGTERM, batch_100k._on_signal)
    signal.signal(signal.SIGINT, batch_100k._on_signal)

    if not Provider.objects.filter(provider_type="in_app", is_enabled=True).exists():
        Provider.objects.create(
            provider_name="bench-in-app", provider_type="in_app", provider_class="in_app"
        )
    workflow_save(
        key=KEY,
        name="Bench digest",
        steps=[
            {"type": "digest", "window": "1s", "key": "auction_id", "item": "{{ amount }}"},
            {
                "type": "channel",
                "channel": "in_app",
                "title": "{{ digest_count }} bids",
                "message": "{{ digest_items }}",
            },
        ],
    )
    region = f"bench-digest-{users}"
    batch_100k.users_create(User, region, users)
    user_ids = [str(u) for u in User.objects.filter(region=region).values_list("pk", flat=True)]
    run = uuid.uuid4().hex[:8]  # this run's auction id: its own digests
    shares = [user_ids[i :: args.procs] for i in range(args.procs)]
    started = time.monotonic()
    # spawned, not forked: a forked child would share the parent's pooled connections
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        parts = pool.map(
            _ingest,
            [(share, per_user, i, run, args.per_call) for i, share in enumerate(shares)],
        )
    wall_seconds = time.monotonic() - started
    ingested = sum(count for count, _ in parts)
    # the ingest itself: the slowest process's time from its first trigger to its last
    # (interpreter start and django.setup of the spawned processes are not ingestion)
    ingest_seconds = max(elapsed for _, elapsed in parts)

    log_dir = Path(os.environ.get("NP_RUN_DIR", ROOT / ".run"))
    log_dir.mkdir(parents=True, exist_ok=True)
    batch_100k.start_workers(args.workers, log_dir)
    digests = WorkflowDigest.objects.filter(digest_key=f"auction_id={run}")
    mine = Notification.objects.filter(metadata__workflow=KEY, template_data__auction_id=run)
    sent_started = time.monotonic()
    done_seconds = None
    while time.monotonic() - sent_started < args.timeout:
        workflow_steps_dispatch_due()
        if not digests.filter(is_open=True).exists():
            open_deliveries = NotificationDelivery.objects.filter(
                notification__in=mine, status__in=("pending", "sending")
            ).exists()
            if not open_deliveries:
                done_seconds = time.monotonic() - sent_started
                break
        time.sleep(0.5)
    batch_100k._stop_workers()
    per_user_counts = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT user_id), coalesce(sum((template_data->>"
            "'digest_count')::int), 0) FROM notifications WHERE metadata->>'workflow' = %s"
            " AND template_data->>'auction_id' = %s",
            [KEY, run],
        )
        messages, distinct_users, items = cursor.fetchone()
    per_user_counts = {"messages": messages, "users": distinct_users, "items": items}
    once = messages == distinct_users == users and items == triggers
    runs = WorkflowRun.objects.filter(workflow__key=KEY, data__auction_id=run)
    digested = runs.filter(decision="digested").count()
    note = (
        f"{triggers:,} triggers, {users:,} users ({per_user} each), {args.procs} ingest"
        f" processes, {args.per_call} recipient(s) per trigger call, {args.workers} workers; messages {json.dumps(per_user_counts)};"
        f" {digested:,} runs digested into another's; each user once: {once}"
    )
    figures = [
        {
            "figure": f"digest: {triggers // 1000}k triggers ingested"
            if triggers >= 1000
            else f"digest: {triggers} triggers ingested",
            "value": round(ingested / ingest_seconds, 1) if ingest_seconds else None,
            "unit": "triggers/s",
            "baseline": None,
            "baseline_label": "—",
            "goal": None,
            "met": None,
            "note": f"{ingest_seconds:.1f} s ({wall_seconds:.1f} s with process start); {note}",
        },
        {
            "figure": f"digest: {users:,} digests sent (one per user)",
            "value": None if done_seconds is None else round(done_seconds, 3),
            "unit": "s",
            "baseline": None,
            "baseline_label": "—",
            "goal": "each user exactly once",
            "met": bool(once and done_seconds is not None),
            "note": note if done_seconds is not None else f"not finished; {note}",
        },
    ]
    for figure in figures:
        if args.json:
            print(json.dumps(figure), flush=True)
        else:
            print(f"{figure['figure']}: {figure['value']} {figure['unit']} ({figure['note']})")


if __name__ == "__main__":
    main()
