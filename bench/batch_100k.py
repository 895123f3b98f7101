"""A 100k-recipient invitation batch, from ``run_batch`` to the last delivery sent
(goal <= 60 s).

Creates N users (bulk insert, their own region so the audience is exactly them), starts two
real Celery worker processes and runs a news_feed invitation batch over them on the in-app
channel (the local in-app provider: no network provider in the way). The clock starts when
the job is created (audience resolved, chunk ledger written) and stops when every delivery
of the job has left ``pending``/``sending``. A second figure is the fan-out alone (job
``completed``: invitations, notifications and deliveries written).

    DATABASE_URL=... REDIS_URL=... python bench/batch_100k.py --json [--recipients N]

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
_workers: list[subprocess.Popen] = []


def _stop_workers() -> None:
    for proc in _workers:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
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
                    "--concurrency=8",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    # 100k does not fit the bench's time budget (80 s with startup) while the in-app send
    # path is far from the goal: the default measures 8k and projects 100k linearly
    parser.add_argument("--recipients", type=int, default=8_000)
    parser.add_argument("--quick", action="store_true", help="2,000 recipients: a smoke run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument(
        "--timeout", type=float, default=65, help="seconds to wait for the batch (then TIMED OUT)"
    )
    args = parser.parse_args()
    recipients = 2_000 if args.quick else args.recipients

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("deliveries").setLevel(logging.WARNING)
    from deliveries.batch.selectors import batch_job_deliveries
    from deliveries.batch.services import batch_create, batch_plan, batch_validate
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
    region = f"bench-{run}"
    t0 = time.monotonic()
    User.objects.bulk_create(
        [
            User(email=f"b{run}-{n}@bench.test", region=region, password="!")
            for n in range(recipients)
        ],
        batch_size=10_000,
    )
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
    fanout_seconds = None
    all_sent_seconds = None
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        now = time.monotonic()
        if fanout_seconds is None and job.status in ("completed", "failed", "cancelled"):
            fanout_seconds = now - started
        if fanout_seconds is not None:
            open_rows = batch_job_deliveries(job).filter(status__in=["pending", "sending"])
            if not open_rows.exists():
                all_sent_seconds = time.monotonic() - started
                break
        time.sleep(0.5)
    _stop_workers()
    statuses: dict[str, int] = {}
    for status in batch_job_deliveries(job).values_list("status", flat=True).iterator():
        statuses[status] = statuses.get(status, 0) + 1
    note = (
        f"{recipients} users (bulk insert {users_seconds:.1f} s, not timed), "
        f"{args.workers} workers x 8 threads, in_app channel, chunks of {args.chunk_size}; "
        f"job {job.pk} {job.status}, {job.processed_notifications} processed, "
        f"deliveries {json.dumps(statuses, sort_keys=True)}"
    )
    # Measured on fewer than 100k recipients, the goal is judged on a linear projection to
    # 100k (stated as such): fan-out and sending are per-recipient work with no step that
    # grows faster; met only if the projection is within the goal.
    projected = (
        None if all_sent_seconds is None else all_sent_seconds * 100_000 / max(recipients, 1)
    )
    if projected is not None and recipients < 100_000:
        note = f"100k projected linearly: {projected:.0f} s; {note}"
    figures = [
        {
            "figure": f"{recipients // 1000}k-recipient invitation batch, all deliveries sent"
            if recipients >= 1000
            else f"{recipients}-recipient invitation batch, all sent",
            "value": None if all_sent_seconds is None else round(all_sent_seconds, 3),
            "unit": "s",
            "baseline": None,
            "baseline_label": "—",
            "goal": "<= 60 s for 100k",
            "met": projected is not None and projected <= GOAL_SECONDS,
            "note": note if all_sent_seconds is not None else f"TIMED OUT; {note}",
        },
        {
            "figure": "invitation batch fan-out (invitations, notifications, deliveries written)",
            "value": None if fanout_seconds is None else round(fanout_seconds, 3),
            "unit": "s",
            "baseline": None,
            "baseline_label": "—",
            "goal": None,
            "met": None,
            "note": None
            if not fanout_seconds
            else f"{job.processed_notifications / fanout_seconds:,.0f} recipients/s",
        },
    ]
    for figure in figures:
        if args.json:
            print(json.dumps(figure), flush=True)
        else:
            print(f"{figure['figure']}: {figure['value']} {figure['unit']} ({figure['note']})")


if __name__ == "__main__":
    main()
