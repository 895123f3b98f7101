"""``make bench``: run every benchmark script and print one table.

Services come from the launcher (``notifyplatform.launcher.services``: configured / local /
embedded, as ``make run`` chooses them). The run uses a fresh database ``np_bench``
(``NP_BENCH_DB``; dropped, created and migrated at the start) and its own Redis db
(``NP_BENCH_REDIS_DB``, default 15). Each ``bench/<name>.py`` that exists runs as a
subprocess with ``--json`` (and ``--quick`` with ``--quick``) under a time limit; the figures
they print go into one table, also written to ``bench/results/latest.md``.

    python bench/run.py [--quick] [--large] [--only fanout,send_throughput]

``--large`` adds the rows that only it runs (the fan-out curve to 1M users, websocket
throughput with one event per frame).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

# (script, time limit in seconds, quick time limit). A limit is a safety net for a hung
# script, about 1.5x what the script takes on an idle 2-core machine; the sizes are chosen so
# the whole full run stays under 10 minutes (the 10M-row table of unread_count is built once
# per machine, ~80 s, and reused).
# A row may name its script and arguments: (name, limit, quick limit, script, [args]).
SCRIPTS: list[tuple] = [
    ("fanout", 90, 60),
    # 10k/100k: fanout.py's own curve; this script runs with --large only (adds 1M)
    ("fanout_curve", 900, 40, "fanout_curve", ["--large"]),
    ("send_throughput", 110, 60),
    (
        "send_throughput_rabbitmq",
        90,
        75,
        "send_throughput",
        ["--broker", "rabbitmq"],
    ),
    ("batch_100k", 170, 60),
    ("broadcast", 170, 60),
    ("ws_throughput", 110, 60),
    # the same with one event per frame too (what coalescing adds): --large only
    ("ws_throughput_single", 140, 60, "ws_throughput", ["--single"]),
    ("ws_split", 70, 45, "ws_split", ["--mode", "split"]),
    ("ws_throughput_busy", 70, 45, "ws_split", ["--mode", "busy"]),
    ("notify_to_inapp", 45, 30),
    ("notify_to_inapp_busy", 45, 30, "notify_to_inapp", ["--busy"]),
    ("api_to_smtp", 45, 30),
    ("ws_replay", 40, 30),
    ("ws_idle", 90, 45),
    ("auction_close_stall", 110, 60),
    ("unread_count", 200, 90),
    ("digest", 150, 120),
]

LARGE_ONLY = {"fanout_curve", "ws_throughput_single"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def with_redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def fresh_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def machine(database_url: str, redis_url: str) -> dict[str, str]:
    info: dict[str, str] = {}
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["CPU"] = f"{cpu}, {os.cpu_count()} cores"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["RAM"] = f"{kb / 1024 / 1024:.1f} GB"
    except (OSError, ValueError, IndexError):
        info["RAM"] = "unknown"
    info["Python"] = platform.python_version()
    try:
        import psycopg

        with psycopg.connect(database_url, connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            # the fan-out curve bends where a run's rows outgrow shared_buffers
            buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
            info["PostgreSQL"] = f"{version}, shared_buffers {buffers}"
    except Exception as exc:  # noqa: BLE001 - informational
        info["PostgreSQL"] = f"unknown ({exc})"
    try:
        import redis

        info["Redis"] = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    except Exception as exc:  # noqa: BLE001 - informational
        info["Redis"] = f"unknown ({exc})"
    with contextlib.suppress(OSError):
        info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def _kill_marked(marker: str) -> int:
    """Kill every process that inherited this script's marker in its environment.

    Scripts start daphne, workers and the sandbox in sessions of their own, so killing
    the script's process group on a timeout does not reach them; the environment does.
    """
    import signal

    needle = f"NP_BENCH_RUN_MARK={marker}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def run_script(
    name: str, limit: int, quick: bool, env: dict[str, str], script: str, extra: list[str]
) -> tuple[list, list, str]:
    path = BENCH / f"{script}.py"
    argv = [sys.executable, str(path), "--json", *extra] + (["--quick"] if quick else [])
    started = time.monotonic()
    marker = f"{name}-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**env, "NP_BENCH_RUN_MARK": marker},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=limit)
        status = f"exit {proc.returncode}" if proc.returncode else "ok"
    except subprocess.TimeoutExpired:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        # children that escaped the group would hold the output pipes open
        _kill_marked(marker)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        status = f"timed out after {limit}s"
    _kill_marked(marker)
    figures, rss = [], []
    for line in (out or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "rss" in row:
            rss.append(row["rss"])
        elif "figure" in row:
            figures.append(row)
    elapsed = time.monotonic() - started
    if status != "ok":
        tail = "\n".join((err or "").strip().splitlines()[-8:])
        log(f"  {name}: {status}\n{tail}")
    return figures, rss, f"{status}, {elapsed:.0f}s"


def fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    return str(value)


def table(figures: list[dict], rss: list[dict], notes: list[str], info: dict[str, str]) -> str:
    lines = [
        "| figure | value | compared with (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in figures:
        value, baseline = row.get("value"), row.get("baseline")
        compared = (
            f"{fmt(baseline)} {row.get('unit', '')} ({row.get('baseline_label')})"
            if baseline is not None
            else "—"
        )
        ratio = f"{value / baseline:.2f}×" if value is not None and baseline else "—"
        met = {True: "yes", False: "**no**", None: "—"}[row.get("met")]
        name = row["figure"] + (f" — {row['note']}" if row.get("note") else "")
        lines.append(
            f"| {name} | {fmt(value)} {row.get('unit', '')} | {compared} | {ratio} |"
            f" {row.get('goal') or '—'} | {met} |"
        )
    for item in rss:
        lines.append(f"| peak RSS: {item['name']} | {fmt(item['mb'])} MB | — | — | reported | — |")
    out = ["Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), "", *lines]
    if notes:
        out += ["", *[f"- {note}" for note in notes]]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks, print one table.")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", help="comma-separated script names")
    parser.add_argument(
        "--large", action="store_true", help="also the large sizes (the 1M-user fan-out curve)"
    )
    args = parser.parse_args()
    started = time.monotonic()

    from notifyplatform.launcher.services import ensure_services, generated_secret_key

    env = dict(os.environ)
    env.setdefault("NP_DB_NAME", os.environ.get("NP_BENCH_DB", "np_bench"))
    services = ensure_services(env, log=log)
    try:
        log(services.mode_line())
        db_name = os.environ.get("NP_BENCH_DB", "np_bench")
        database_url = with_db(services.urls["DATABASE_URL"], db_name)
        redis_url = with_redis_db(
            services.urls["REDIS_URL"], int(os.environ.get("NP_BENCH_REDIS_DB", "15"))
        )
        log(f"fresh database {db_name}, redis {redis_url}")
        fresh_database(database_url)
        child = {
            **os.environ,
            **services.env(),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        child.pop("NP_REDIS_DB_ISOLATED", None)
        # the benchmark's own throwaway installation: its run dir's key unless one is set
        child.setdefault("SECRET_KEY", generated_secret_key(services.rundir))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=child,
            check=True,
        )
        # the scripts skip their own migrate of this database (~4 s of Django start each)
        child["NP_BENCH_MIGRATED"] = database_url
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        info = machine(database_url, redis_url)
        only = set(args.only.split(",")) if args.only else None
        figures: list[dict] = []
        rss: list[dict] = []
        notes: list[str] = []
        timings: list[str] = []
        for name, limit, quick_limit, *how in SCRIPTS:
            script, extra = (how[0], how[1]) if how else (name, [])
            if only and name not in only:
                continue
            if name in LARGE_ONLY and not args.large:
                continue
            if not (BENCH / f"{script}.py").exists():
                notes.append(f"bench/{script}.py does not exist (yet): skipped")
                log(f"skip {name}: no bench/{script}.py")
                continue
            log(f"run {name} ...")
            got, got_rss, status = run_script(
                name, quick_limit if args.quick else limit, args.quick, child, script, extra
            )
            log(f"  {name}: {status}, {len(got)} figure(s)")
            if not got:
                figures.append(
                    {
                        "figure": f"{name}: no figure",
                        "value": None,
                        "unit": "",
                        "met": False,
                        "note": status,
                    }
                )
            figures += got
            rss += got_rss
            timings.append(f"{name} {status}")
        total = time.monotonic() - started
        notes.append("scripts: " + "; ".join(timings))
        notes.append(
            f"whole run {total:.0f}s{' (--quick)' if args.quick else ''};"
            f" {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        )
        text = table(figures, rss, notes, info)
        print(text)
        results = BENCH / "results"
        results.mkdir(exist_ok=True)
        (results / ("latest-quick.md" if args.quick else "latest.md")).write_text(text)
        return 0
    finally:
        services.release(log=log)


if __name__ == "__main__":
    sys.exit(main())
