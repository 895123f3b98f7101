"""Sending throughput: pending → sent, webhook channel to the provider sandbox, 2 Celery
worker processes, against empty Celery tasks (one task per message) on the same 2 workers,
measured in the same run. Also the old path (one ``send_delivery`` task per delivery) on a
sample, and the workers' peak RSS.

    python bench/send_throughput.py [--json] [--quick] [--deliveries N] [--broker rabbitmq]

``--broker rabbitmq``: the same run with RabbitMQ as the Celery broker (quorum queues,
publisher confirms), the empty-task baseline on RabbitMQ too.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import (
    ROOT,
    Reporter,
    celery_worker,
    ensure_users,
    flush_redis,
    free_port,
    parse_args,
    peak_rss_mb,
    setup_django,
    start,
    stop,
    truncate,
    use_rabbitmq,
    wait_port,
)

SECRET_ENV = "WEBHOOK_BENCH_SECRET"  # providers.policy: a WEBHOOK_ name
SECRET = "whsec_" + base64.b64encode(b"bench-webhook-secret-0123456789ab").decode()
WORKERS = 2


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def sent_count(ids_min: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM notification_deliveries WHERE id >= %s AND status = 'sent'",
            [ids_min],
        )
        return int(cursor.fetchone()[0])


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all cores spent not idle so far (Linux /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def services_cpu() -> dict[str, float]:
    """CPU seconds so far of every PostgreSQL and Redis process (all databases: what the
    machine's shared services spent, for the log only)."""
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        kind = "postgres" if name.startswith("postgres") else "redis" if "redis" in name else None
        if kind:
            totals[kind] = totals.get(kind, 0.0) + cpu_seconds(int(entry.name))
    return totals


def hooks(port: int, method: str, path: str) -> dict:
    """The receiver's control API (counters per hook name, reset)."""
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=None)
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read())


def make_deliveries(users: list, count: int, url: str, tag: str) -> list[int]:
    """``count`` pending webhook deliveries, nothing enqueued (the queue is flushed)."""
    from deliveries.services import notify_many

    ids: list[int] = []
    while len(ids) < count:
        part = users[: min(len(users), count - len(ids))]
        results = notify_many(
            part,
            idempotency_prefix=f"{tag}-{len(ids)}",
            title="Bench",
            message="webhook throughput",
            channels=["webhook"],
            webhook_url=url,
        )
        ids += [r.deliveries[0].pk for r in results]
    flush_redis()
    return ids


def run_workers(env: dict[str, str], log_dir: Path, **options) -> list:
    workers = [
        celery_worker(log=log_dir / f"worker-{n}.log", **options, **env) for n in range(WORKERS)
    ]
    time.sleep(0.5)
    return workers


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("--deliveries", type=int, default=None),
            p.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis"),
            p.add_argument(
                "--old-path", action="store_true", help="also one send_delivery task each"
            ),
        ),
    )
    on_rabbit = args.broker == "rabbitmq"
    if on_rabbit:
        use_rabbitmq()
    os.environ[SECRET_ENV] = SECRET
    os.environ["NP_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    setup_django()
    from django.conf import settings

    from deliveries.services import enqueue_deliveries
    from deliveries.tasks import send_delivery
    from notifyplatform.celery import app
    from providers.models import Provider

    t0 = time.perf_counter()
    report = Reporter(args.json)
    # >= 6 s at 3k/s, >= 10 s at today's ~2k/s; the RabbitMQ row sends half (make bench's
    # 10 minutes)
    total = args.deliveries or (3_000 if args.quick else (10_000 if on_rabbit else 20_000))
    sample = 100 if args.quick else 300
    log_dir = Path(tempfile.mkdtemp(prefix="np-bench-send-"))

    # the provider sandbox, its webhook receiver verifying our signatures
    port = free_port()
    config = log_dir / "sandbox.json"
    config.write_text(json.dumps({"webhook": {"name": "bench", "secret": SECRET}}))
    # the lean receiver (sandbox.fasthooks): same signature check as the full
    # sandbox, counts what it accepted; the full one spends more CPU per request than the
    # sender under test, on the same 2 cores
    sandbox = start(
        [
            sys.executable,
            "-m",
            "sandbox.fasthooks",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        log=log_dir / "sandbox.log",
    )
    wait_port(port, proc=sandbox)
    url = f"http://127.0.0.1:{port}/hooks/bench"

    truncate("notifications", "notification_deliveries")
    Provider.objects.filter(provider_type="webhook").delete()
    Provider.objects.create(
        provider_name="bench-webhook",
        provider_type="webhook",
        provider_class="webhook",
        priority=10,
        configuration={"secret_env": SECRET_ENV, "timeout": 10},
        credentials_required=[SECRET_ENV],
    )
    users = ensure_users(min(total, 10_000))
    report.log(f"{time.perf_counter() - t0:.1f}s: sandbox, provider and users ready")
    env = {
        "NP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        SECRET_ENV: SECRET,
        "NP_SWEEP_INTERVAL_SECONDS": "3600",
        # claim as many as the sender loop has in flight (settings.py still defaults to
        # the thread pool's 32)
        "NP_SEND_BATCH_SIZE": os.environ.get("NP_SEND_BATCH_SIZE", "256"),
        "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    redis_conn = __import__("redis").Redis.from_url(settings.REDIS_URL)

    # 1. baseline: empty tasks, one per message, same 2 worker processes
    flush_redis()
    # ~6 s at ~1k/s on Redis; RabbitMQ's confirmed publishes are slower: fewer there
    quick_empty, full_empty = (1_500, 3_000) if on_rabbit else (3_000, 6_000)
    n_empty = min(total, quick_empty if args.quick else full_empty)
    workers = run_workers(env, log_dir, concurrency=8, include="_bench_tasks")
    noop = app.signature("bench.noop")
    noop.apply_async()
    wait_until(lambda: int(redis_conn.get("bench:noop") or 0) >= 1, 60)
    redis_conn.set("bench:noop", 0)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(n_empty):
            noop.apply_async(producer=producer)
    wait_until(lambda: int(redis_conn.get("bench:noop") or 0) >= n_empty, 300)
    empty_rate = int(redis_conn.get("bench:noop") or 0) / (time.perf_counter() - started)
    for worker in workers:
        stop(worker)
    report.log(f"{time.perf_counter() - t0:.1f}s: empty tasks {empty_rate:,.0f}/s")

    # 2. the old path on a sample: one send_delivery task per delivery, with --old-path
    # (the note carries it; make bench skips it for its 10 minutes)
    single_rate = float("nan")
    if args.old_path and not on_rabbit:
        ids = make_deliveries(users, sample, url, "single")
        workers = run_workers(env, log_dir, concurrency=8)
        started = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for delivery_id in ids:
                send_delivery.apply_async((delivery_id,), producer=producer)
        wait_until(lambda: sent_count(ids[0]) >= len(ids), 300, 0.2)
        single_rate = sent_count(ids[0]) / (time.perf_counter() - started)
        for worker in workers:
            stop(worker)
        report.log(f"{time.perf_counter() - t0:.1f}s: old path {single_rate:,.0f}/s")

    # 3. the batch path: send_deliveries chunks → claim N, send concurrently, record in bulk
    # Every delivery exists before a worker runs: notify_many's own enqueue (flushed with
    # the queue) must not let workers start on the measured rows before the clock does.
    truncate("notifications", "notification_deliveries")
    warm = make_deliveries(users, 200, url, "warm")
    ids = make_deliveries(users, total, url, "batch")
    report.log(f"{time.perf_counter() - t0:.1f}s: {total:,} deliveries made")
    workers = run_workers(env, log_dir, concurrency=int(os.environ.get("NP_BENCH_SEND_TASKS", 2)))
    enqueue_deliveries(warm, chunk=100)
    wait_until(lambda: sent_count(warm[0]) >= len(warm), 120, 0.1)
    hooks(port, "POST", "/_sandbox/reset")
    cpu_before = {w.pid: cpu_seconds(w.pid) for w in [*workers, sandbox]}
    services_before = services_cpu()
    machine_before = machine_busy()
    started = time.perf_counter()
    enqueue_deliveries(ids, chunk=int(os.environ.get("NP_BENCH_ENQUEUE_CHUNK", 500)))
    done = wait_until(lambda: sent_count(ids[0]) >= len(ids), 600, 0.1)
    elapsed = time.perf_counter() - started
    cpu = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
    report.log(
        f"CPU in the window ({elapsed:.1f}s): workers "
        + ", ".join(f"{cpu[w.pid]:.1f}s" for w in workers)
        + f"; receiver {cpu[sandbox.pid]:.1f}s; "
        + ", ".join(f"{k} {v - services_before.get(k, 0):.1f}s" for k, v in services_cpu().items())
        + f"; whole machine busy {machine_busy() - machine_before:.1f}s of"
        f" {elapsed * (os.cpu_count() or 1):.1f}s"
    )
    sent = sent_count(ids[0])
    rate = sent / elapsed
    rss = [peak_rss_mb(w.pid) for w in workers]
    for worker in workers:
        stop(worker)
    # count honestly: every delivery marked sent must have reached the receiver once,
    # signed; a duplicate or an unsigned request makes the figure not met
    received = hooks(port, "GET", "/_sandbox/hooks").get("bench", {})
    stop(sandbox)
    honest = (
        received.get("unique") == sent == len(ids)
        and received.get("verified") == received.get("received")
        and not received.get("duplicates")
        and not received.get("unverified")
    )
    ratio = rate / empty_rate if empty_rate else 0
    broker = " on RabbitMQ (quorum queues, publisher confirms)" if on_rabbit else ""
    report.figure(
        f"deliveries sent/s end to end (webhook to the sandbox, {WORKERS} workers){broker}",
        rate,
        "deliveries/s",
        baseline=empty_rate,
        baseline_label=f"empty Celery tasks/s, one per message{' (RabbitMQ)' if on_rabbit else ''}",
        goal=">= 3x and >= 3,000/s",
        met=ratio >= 3 and rate >= 3000 and honest,
        note=(
            f"{sent:,}/{len(ids):,} sent in {elapsed:.1f}s{'' if done else ' (TIMED OUT)'};"
            f" receiver: {received.get('unique', 0):,} unique signed,"
            f" {received.get('duplicates', 0)} duplicates, {received.get('unverified', 0)}"
            f" unverified{'' if honest else ' (COUNTS DO NOT MATCH)'}"
            + (
                f"; old path (one send_delivery task each): {single_rate:,.0f}/s"
                if args.old_path and not on_rabbit
                else ""
            )
        ),
    )
    for n, mb in enumerate(rss):
        report.rss(f"celery worker {n + 1} (batch sending{broker and ', RabbitMQ'})", mb)
    truncate("notifications", "notification_deliveries")
    flush_redis()
    print(f"logs in {log_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
