"""A 100k-recipient invitation batch, from ``run_batch`` to the last delivery sent
(goal <= 60 s).

Creates N users (bulk insert, their own region so the audience is exactly them), starts two
real Celery worker processes and runs a news_feed invitation batch over them on the in-app
channel (the local in-app provider: no network provider in the way). The clock starts when
the job is created (audience resolved, chunk ledger written) and stops when every delivery
of the job has left ``pending``/``sending``. A second figure is the fan-out alone (job
``completed``: invitations, notifications and deliveries written).

The full run is the real thing: 100,000 recipients, no projection. The measurement has a
deadline (``--timeout``, 120 s from job creation, shortened so the whole script stays within
``--budget``, the 145 s ``make bench`` gives it with user creation and worker start); a batch
not finished by then is reported as such ("not finished: N of 100,000 sent in 120 s", not met)
with the rate reached, and its leftover deliveries are cancelled so they do not load the next
run. The users (``COPY``, ~100k rows/s) are kept and reused by the next run on the database.

    DATABASE_URL=... REDIS_URL=... python bench/batch_100k.py --json [--quick] [--recipients N]

The database must be migrated and may be filled (users, invitations, notifications stay).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOAL_SECONDS = 60.0
# Task threads per worker: on 2 cores, more concurrent transactions only queue on locks
THREADS = int(os.environ.get("NP_BENCH_BATCH_THREADS", "8"))
SCRIPT_STARTED = time.monotonic()
_workers: list[subprocess.Popen] = []


def _stop_workers() -> None:
    """SIGTERM all, then SIGKILL what is left after a few seconds: a warm shutdown would
    wait for send tasks in flight (tens of seconds when the deadline cut a run short)."""
    running = [proc for proc in _workers if proc.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    give_up = time.monotonic() + 3
    for proc in running:
        try:
            proc.wait(max(0.1, give_up - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    _workers.clear()


def _on_signal(signum: int, frame: object) -> None:
    _stop_workers()
    sys.exit(128 + signum)


def start_workers(count: int, log_dir: Path) -> None:
    env = {
        "NP_SEND_BATCH_SIZE": "256",  # claim what the sender loop has in flight (default 32)
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DB_CONN_MAX_AGE": "60",
        # the wait below reads the worker's INFO "ready." line; LOG_LEVEL (make bench sets
        # WARNING) now also sets a worker's level, which hid it and timed the start out
        "LOG_LEVEL": "INFO",
    }
    for n in range(count):
        log = (log_dir / f"batch-bench-worker-{n}.log").open("wb")
        _workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "notifyplatform",
                    "worker",
                    "--pool=threads",
                    f"--concurrency={THREADS}",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=INFO",
                    "-n",
                    f"batchbench{n}-{os.getpid()}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 60
    for n in range(count):
        path = log_dir / f"batch-bench-worker-{n}.log"
        while b" ready." not in path.read_bytes():
            if time.monotonic() > deadline or _workers[n].poll() is not None:
                raise RuntimeError(f"worker {n} did not start: {path.read_text()[-2000:]}")
            time.sleep(0.2)


def users_create(user_model: type, region: str, count: int) -> int:
    """Make sure ``count`` bench users exist in ``region`` (emails ``<region>-<n>@bench.test``);
    the missing ones go in with one ``COPY`` (a 100k ``bulk_create`` takes ~10 s of the
    budget). Returns how many were created."""
    from django.db import connection, transaction
    from django.utils import timezone

    from notifyplatform.bulk import copy_rows, copy_text

    existing = set(
        user_model.objects.filter(region=region).values_list("email", flat=True).iterator()
    )
    missing = [f"{region}-{n}@bench.test" for n in range(count)]
    missing = [email for email in missing if email not in existing]
    if not missing:
        return 0
    template = user_model(region=region, password="!", date_joined=timezone.now())
    template.updated_at = template.date_joined
    fields = [f for f in user_model._meta.concrete_fields if f.attname not in ("id", "email")]
    shared = "\t".join(
        copy_text(f.get_db_prep_save(getattr(template, f.attname), connection)) for f in fields
    )
    columns = ", ".join(["id", "email", *(f.column for f in fields)])
    with transaction.atomic():
        copy_rows(
            f"COPY {user_model._meta.db_table} ({columns}) FROM STDIN",
            [f"{uuid.uuid4()}\t{email}\t{shared}\n" for email in missing],
        )
    return len(missing)


_JOB_DELIVERIES = """
    FROM notification_deliveries d JOIN story_invitations i ON i.id = d.invitation_id
    WHERE i.batch_job_id = %s
"""


def open_count(job_id: int) -> int:
    """The job's deliveries still to send; polled every second, so it starts from the open
    rows (a status index) rather than joining all of the job's deliveries. The CTE is
    MATERIALIZED so it really does: on fresh tables the planner's estimate of a job's
    invitations (23 for 5,000) made it probe the status index once per invitation, and the
    poll itself took 14 s once the rows were sent (the clock ran on meanwhile)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "WITH open AS MATERIALIZED (SELECT invitation_id FROM notification_deliveries"
            " WHERE status IN ('pending', 'sending'))"
            " SELECT count(*) FROM open o JOIN story_invitations i ON i.id = o.invitation_id"
            " WHERE i.batch_job_id = %s",
            [job_id],
        )
        return cursor.fetchone()[0]


def status_counts(job_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT d.status, count(*)" + _JOB_DELIVERIES + " GROUP BY 1", [job_id])
        return dict(sorted(cursor.fetchall()))


def cancel_open(job_id: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE notification_deliveries d SET status = 'cancelled', updated_at = now()"
            " FROM story_invitations i WHERE i.id = d.invitation_id AND i.batch_job_id = %s"
            " AND d.status IN ('pending', 'sending')",
            [job_id],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="2,000 recipients: a smoke run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds from job creation to wait for the batch (default 90, quick 30)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds the whole script may take (default 110, quick 50); shortens the wait",
    )
    args = parser.parse_args()
    recipients = 2_000 if args.quick else args.recipients
    timeout = args.timeout or (30.0 if args.quick else 120.0)
    budget = args.budget or (50.0 if args.quick else 145.0)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("deliveries").setLevel(logging.WARNING)
    from campaigns.services import batch_create, batch_plan, batch_validate
    from invitations.services import article_create
    from providers.models import Provider
    from templates.catalog import catalogue_rows
    from templates.models import NotificationTemplate
    from users.models import User

    atexit.register(_stop_workers)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    # the catalogue (a truncated bench database may have lost it) and an in-app provider
    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )
    if not Provider.objects.filter(provider_type="in_app", is_enabled=True).exists():
        Provider.objects.create(
            provider_name="bench-in-app", provider_type="in_app", provider_class="in_app"
        )
    run = uuid.uuid4().hex[:8]
    region = f"bench-batch-{recipients}"
    t0 = time.monotonic()
    created_users = users_create(User, region, recipients)
    users_seconds = time.monotonic() - t0
    article = article_create(
        title=f"Bench article {run}",
        summary="A benchmark article.",
        full_content=f"Benchmark {run}",
    )
    log_dir = Path(os.environ.get("NP_RUN_DIR", ROOT / ".run"))
    log_dir.mkdir(parents=True, exist_ok=True)
    start_workers(args.workers, log_dir)

    spec = batch_validate(
        "invitation_batch",
        invitation_type="news_feed",
        article=article.pk,
        audience=f"region:{region}",
        channels="in_app",
        chunk_size=args.chunk_size,
        name=f"bench {recipients} ({run})",
    )
    started = time.monotonic()
    job = batch_create(spec, plan=batch_plan(spec))
    created_seconds = time.monotonic() - started
    fanout_seconds = None
    all_sent_seconds = None
    # stop in time to count, stop the workers and report within the budget
    deadline = min(started + timeout, SCRIPT_STARTED + budget - 15)
    waited = 0.0
    while time.monotonic() < deadline:
        job.refresh_from_db()
        now = time.monotonic()
        if fanout_seconds is None and job.status in ("completed", "failed", "cancelled"):
            fanout_seconds = now - started
        if fanout_seconds is not None and open_count(job.pk) == 0:
            all_sent_seconds = time.monotonic() - started
            break
        time.sleep(1.0)
    waited = time.monotonic() - started
    _stop_workers()
    job.refresh_from_db()
    statuses = status_counts(job.pk)
    left = statuses.get("pending", 0) + statuses.get("sending", 0)
    if left:
        cancel_open(job.pk)  # an unfinished run must not leave a backlog to the next one
    done = sum(statuses.values()) - left
    rate = done / waited if waited else 0.0
    note = (
        f"{recipients:,} users ({'created' if created_users else 'reused'}, "
        f"{users_seconds:.1f} s, not timed), {args.workers} workers x {THREADS} threads, in_app "
        f"channel, chunks of {args.chunk_size}; job created in {created_seconds:.1f} s, "
        f"{job.status}, {job.processed_notifications:,} processed; "
        f"deliveries {json.dumps(statuses, sort_keys=True)}"
    )
    if all_sent_seconds is None:
        fanout = f"done in {fanout_seconds:.1f} s" if fanout_seconds else "not done"
        note = (
            f"not finished: {done:,} of {recipients:,} sent in {waited:.0f} s "
            f"({rate:,.0f}/s; fan-out {fanout}); {note}"
        )
    else:
        note = f"{rate:,.0f} deliveries/s; {note}"
    processed = job.processed_notifications
    label = f"{recipients // 1000}k" if recipients >= 1000 else str(recipients)
    figures = [
        {
            "figure": f"{label}-recipient invitation batch, all deliveries sent",
            "value": None if all_sent_seconds is None else round(all_sent_seconds, 3),
            "unit": "s",
            "baseline": None,
            "baseline_label": "—",
            "goal": "<= 60 s for 100k",
            "met": all_sent_seconds is not None
            and recipients >= 100_000
            and all_sent_seconds <= GOAL_SECONDS,
            "note": note,
        },
        {
            "figure": "invitation batch fan-out (invitations, notifications, deliveries written)",
            "value": None if fanout_seconds is None else round(fanout_seconds, 3),
            "unit": "s",
            "baseline": None,
            "baseline_label": "—",
            "goal": None,
            "met": None,
            "note": f"{processed / fanout_seconds:,.0f} recipients/s"
            if fanout_seconds
            else f"not done in {waited:.0f} s: {processed:,} of {recipients:,} recipients",
        },
    ]
    emit(figures, as_json=args.json)


def emit(figures: list[dict], *, as_json: bool) -> None:
    """Print the figures: one JSON object per line for ``run.py`` (``--json``), else one
    readable line each (``broadcast.py`` prints its own the same way)."""
    for figure in figures:
        if as_json:
            print(json.dumps(figure), flush=True)
        else:
            print(f"{figure['figure']}: {figure['value']} {figure['unit']} ({figure['note']})")


if __name__ == "__main__":
    main()
