"""Shared helpers of the benchmark scripts (``bench/*.py``).

Every script is standalone: ``python bench/<name>.py --json [--quick]`` with
``DATABASE_URL``/``REDIS_URL`` pointing at a migrated database it may fill and truncate
(``bench/run.py`` gives each run a fresh ``np_bench`` database and its own Redis db). With
``--json`` a script prints one JSON object per line for each figure:

    {"figure", "value", "unit", "baseline", "baseline_label", "goal", "met", "note"}

and ``{"rss": {"name": ..., "mb": ...}}`` lines for peak RSS of the processes it ran.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from notifyplatform.testing import free_port, wait_listening  # noqa: E402,F401 - free_port re-exported

_children: list[subprocess.Popen] = []


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    if extra:
        extra(parser)
    return parser.parse_args()


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    import logging

    import django

    django.setup()
    for name in ("httpx", "mail.log"):  # a line per request/mail: noise, and it costs time
        logging.getLogger(name).setLevel(logging.WARNING)


class Reporter:
    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode

    def figure(
        self,
        figure: str,
        value: float | None,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_label: str | None = None,
        goal: str | None = None,
        met: bool | None = None,
        note: str | None = None,
    ) -> None:
        row = {
            "figure": figure,
            "value": None if value is None else round(float(value), 3),
            "unit": unit,
            "baseline": None if baseline is None else round(float(baseline), 3),
            "baseline_label": baseline_label,
            "goal": goal,
            "met": met,
            "note": note,
        }
        if self.json_mode:
            print(json.dumps(row), flush=True)
        else:
            ratio = f" ({value / baseline:.2f}x {baseline_label})" if value and baseline else ""
            extra = f" goal {goal}: {'met' if met else 'NOT met'}" if goal else ""
            print(f"{figure}: {value:.1f} {unit}{ratio}{extra}  {note or ''}", flush=True)

    def rss(self, name: str, mb: float | None) -> None:
        if mb is None:
            return
        if self.json_mode:
            print(json.dumps({"rss": {"name": name, "mb": round(mb, 1)}}), flush=True)
        else:
            print(f"peak RSS {name}: {mb:.1f} MB", flush=True)

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


# --- processes --------------------------------------------------------------------------


def wait_port(port: int, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    wait_listening(port, proc=proc, timeout=timeout)


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    return env


def start(argv: list[str], *, env: dict[str, str] | None = None, log: Path | None = None):
    """Start a child in its own process group; it is killed when this script exits."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed at exit
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env or child_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@atexit.register
def _cleanup() -> None:
    for proc in _children:
        with contextlib.suppress(Exception):
            stop(proc, timeout=5)


def _on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants (via /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo += children.get(current, [])
    return result


def celery_worker(
    *,
    concurrency: int = 2,
    pool: str = "threads",
    log: Path | None = None,
    include: str | None = None,
    **env: str,
) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "notifyplatform",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=WARNING",
        "-n",
        f"bench{len(_children)}-{os.getpid()}@%h",
    ]
    if include:
        argv += ["--include", include]
    return start(argv, env=child_env(**env), log=log)


# --- database helpers -------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def copy_rows(sql: str, lines: Iterable[str]) -> None:
    from django.db import connection

    connection.ensure_connection()
    buf = io.StringIO()
    for line in lines:
        buf.write(line)
    data = buf.getvalue().encode()
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for offset in range(0, len(data), 1 << 20):
            copy.write(data[offset : offset + (1 << 20)])


def ensure_users(count: int, prefix: str = "bench") -> list[Any]:
    """``count`` users with emails ``<prefix>-<n>@example.test`` (created with COPY if missing),
    returned as model instances."""
    import uuid

    from django.db import connection, transaction

    from users.models import User

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users WHERE email LIKE %s", [f"{prefix}-%"])
        have = cursor.fetchone()[0]
    if have < count:
        now = "2026-01-01T00:00:00+00:00"
        with transaction.atomic():
            copy_rows(
                "COPY users (id, password, is_superuser, email, display_name, phone, timezone,"
                " locale, region, is_active, is_staff, date_joined, updated_at) FROM STDIN",
                (
                    f"{uuid.uuid4()}\t!\tf\t{prefix}-{n}@example.test\tBench {n}\t\t"
                    f"UTC\ten\t\tt\tf\t{now}\t{now}\n"
                    for n in range(have, count)
                ),
            )
    return list(User.objects.filter(email__startswith=f"{prefix}-").order_by("email")[:count])


def truncate(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def flush_redis() -> None:
    """Empty the run's Redis db, and the task queues when the broker is RabbitMQ."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    if str(settings.CELERY_BROKER_URL).startswith("amqp"):
        from notifyplatform.celery import app

        app.control.purge()


def use_rabbitmq() -> str:
    """Before ``setup_django``: make RabbitMQ (``NP_BENCH_AMQP_URL``, default the local
    guest account) this process's broker, and its workers', with queues of its own
    (deleted at exit). Returns the URL."""
    import uuid

    url = os.environ.get("NP_BENCH_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672//"
    tag = uuid.uuid4().hex[:8]
    os.environ["CELERY_BROKER_URL"] = url
    names = {}
    for kind in ("send", "batch", "control"):
        names[kind] = os.environ[f"NP_QUEUE_{kind.upper()}"] = f"bench-{tag}-{kind}"

    def delete_queues() -> None:
        from notifyplatform.celery import app

        with contextlib.suppress(Exception), app.connection_for_write() as conn:
            for name in names.values():
                channel = conn.channel()
                channel.queue_delete(name)
                channel.exchange_delete(name)
                channel.close()

    atexit.register(delete_queues)
    return url


def env_report() -> dict[str, str]:
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
    }
