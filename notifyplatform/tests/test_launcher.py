"""The run/test launcher: mode decision, and the embedded services started for real.

Embedded services run in private temporary run dirs (never the project's .run/) and only
on a unix socket (PostgreSQL) and a free port (Redis), so these tests never touch the
machine's own PostgreSQL/Redis. None of them needs the Django test database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
import pytest
import redis

from notifyplatform.launcher import postgres, procs, services, system
from notifyplatform.launcher.services import decide_modes, ensure_services, stop_embedded
from notifyplatform.launcher.system import LauncherError, mask_url, pid_alive, redis_ping
from notifyplatform.testing import free_port, two_free_ports

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def probe(listening: set[int]):
    return lambda host, port: port in listening


# --- mode decision --------------------------------------------------------------------


def test_configured_when_urls_are_set():
    env = {"DATABASE_URL": "postgres://u@db/x", "REDIS_URL": "redis://r:6379/1"}
    assert decide_modes(env, probe({5432, 6379})) == {
        "database": "configured",
        "redis": "configured",
    }


def test_local_when_something_listens():
    assert decide_modes({}, probe({5432, 6379})) == {"database": "local", "redis": "local"}


def test_embedded_when_nothing_listens():
    assert decide_modes({}, probe(set())) == {"database": "embedded", "redis": "embedded"}


def test_mode_is_decided_per_service():
    env = {"REDIS_URL": "redis://r:6379/1"}
    assert decide_modes(env, probe({6379})) == {"database": "embedded", "redis": "configured"}
    assert decide_modes({}, probe({5432})) == {"database": "local", "redis": "embedded"}


def test_np_services_forces_the_mode():
    everything = probe({5432, 6379})
    env = {"NP_SERVICES": "embedded", "DATABASE_URL": "postgres://u@db/x"}
    assert decide_modes(env, everything) == {"database": "embedded", "redis": "embedded"}
    assert decide_modes({"NP_SERVICES": "local"}, everything) == {
        "database": "local",
        "redis": "local",
    }
    env = {
        "NP_SERVICES": "CONFIGURED",
        "DATABASE_URL": "postgres://u@db/x",
        "REDIS_URL": "redis://r/0",
    }
    assert decide_modes(env, probe(set())) == {"database": "configured", "redis": "configured"}
    assert decide_modes({"NP_SERVICES": ""}, everything) == {"database": "local", "redis": "local"}


@pytest.mark.parametrize(
    ("env", "listening", "message"),
    [
        (
            {"NP_SERVICES": "configured", "DATABASE_URL": "postgres://x/y"},
            set(),
            "REDIS_URL is not set",
        ),
        ({"NP_SERVICES": "local"}, {6379}, "nothing listens on 127.0.0.1:5432"),
        ({"NP_SERVICES": "docker"}, set(), "not one of auto, configured, local, embedded"),
    ],
)
def test_impossible_modes_are_errors(env, listening, message):
    with pytest.raises(LauncherError, match=message):
        decide_modes(env, probe(listening))


def test_real_probe_sees_a_listener_and_a_closed_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert system.port_open("127.0.0.1", port)
    assert not system.port_open("127.0.0.1", port)


def with_database(url: str, name: str) -> str:
    """``url`` (the suite's own DATABASE_URL: a real server) naming database ``name``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def test_configured_mode_uses_urls_as_is_and_writes_services_env(tmp_path):
    env = {
        "NP_RUN_DIR": str(tmp_path / "run"),
        "DATABASE_URL": with_database(os.environ["DATABASE_URL"], "postgres"),
        "REDIS_URL": "redis://cache.internal:6380/2",
    }
    result = ensure_services(env, log=lambda _msg: None)
    assert result.urls == {"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"]}
    line = result.mode_line()
    assert line.startswith("services mode: configured |")
    assert "created database" not in line
    written = (tmp_path / "run" / "services.env").read_text()
    assert f"DATABASE_URL={env['DATABASE_URL']}\n" in written
    assert (tmp_path / "run" / ".gitignore").read_text() == "*\n"
    assert result.release() == []


def test_configured_database_that_does_not_exist_is_created(tmp_path):
    name = f"np_launcher_{uuid.uuid4().hex[:12]}"
    url = with_database(os.environ["DATABASE_URL"], name)
    try:
        out = launcher(
            "env",
            env={"NP_SERVICES": "configured", "DATABASE_URL": url, "NP_RUN_DIR": str(tmp_path)},
        )
        assert out.returncode == 0, out.stderr
        assert f"[created database {name}]" in out.stderr
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
        # a second start finds it
        again = launcher(
            "env",
            env={"NP_SERVICES": "configured", "DATABASE_URL": url, "NP_RUN_DIR": str(tmp_path)},
        )
        assert again.returncode == 0 and "created database" not in again.stderr
    finally:
        maintenance = with_database(os.environ["DATABASE_URL"], "postgres")
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("command", ["env", "run"])
def test_configured_database_that_cannot_be_reached_is_one_line(tmp_path, command):
    url = f"postgres://postgres@127.0.0.1:{free_port()}/nothing_listens"
    env = {
        "NP_SERVICES": "configured",
        "DATABASE_URL": url,
        "NP_RUN_DIR": str(tmp_path),
        "PORT": str(two_free_ports()),  # `run` refuses a busy PORT or PORT+1 (the sandbox's)
    }
    out = launcher(command, env=env)
    assert out.returncode == 1
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert lines == [
        f"launcher | error: cannot connect to DATABASE_URL={url}: {lines[0].split(': ', 2)[2]}"
    ]
    assert "Connection refused" in lines[0]


def test_manage_py_in_a_second_shell_uses_the_launchers_services(run_dir):
    # Given embedded services the launcher started (as `make run` does)
    result = ensure_services(embedded_env(run_dir), log=lambda _msg: None)
    try:
        # When a manage.py command runs in another shell, with neither URL set
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "NP_REDIS_DB_ISOLATED")
            and not k.startswith("PYTEST_")
        }
        env["NP_RUN_DIR"] = str(run_dir)
        script = (
            "from django.db import connection; from django.core.cache import cache;"
            "cache.set('second-shell', 'yes');"
            "print(connection.cursor().execute('SELECT current_database()').fetchone()[0],"
            " connection.settings_dict['HOST'], cache.get('second-shell'))"
        )
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        # Then it reached the embedded PostgreSQL (its socket dir) and Redis
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["notifyplatform", str(run_dir / "pgdata"), "yes"]
        port = int(result.urls["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        assert redis.Redis(port=port).get("np:1:second-shell") is not None
    finally:
        result.release()
    # and once they stopped, services.env no longer names them
    assert not (run_dir / "services.env").exists()


def test_mask_url():
    assert mask_url("postgres://u:pw@h:1/d") == "postgres://u:***@h:1/d"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


# --- embedded services, for real --------------------------------------------------------


@pytest.fixture(scope="module")
def shared_run_dir():
    """One short private run dir per test module (and xdist worker): initdb runs once.
    Unix socket paths are limited to ~107 bytes, hence /tmp rather than tmp_path."""
    path = Path(tempfile.mkdtemp(prefix="npl-"))
    try:
        yield path
    finally:
        stop_embedded({"NP_RUN_DIR": str(path)}, log=lambda _msg: None)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run_dir(shared_run_dir):
    """The shared run dir; whatever a test leaves running there is stopped afterwards."""
    yield shared_run_dir
    stop_embedded({"NP_RUN_DIR": str(shared_run_dir)}, log=lambda _msg: None)
    for name in ("seen", "probe_test.py", "services.env"):
        (shared_run_dir / name).unlink(missing_ok=True)


def embedded_env(run_dir: Path) -> dict[str, str]:
    return {"NP_SERVICES": "embedded", "NP_RUN_DIR": str(run_dir)}


def processes_using(path: Path) -> list[str]:
    """Live processes whose command line mentions `path` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pid_alive(int(entry)):
            cmd = " ".join(system.proc_cmdline(int(entry)))
            if str(path) in cmd:
                found.append(f"{entry}: {cmd}")
    return found


def assert_answers(urls: dict[str, str]) -> None:
    with psycopg.connect(urls["DATABASE_URL"], connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone() == ("notifyplatform",)
    port = int(urls["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    assert redis_ping(port)


def service_pids(run_dir: Path) -> tuple[int, int]:
    pg_pid = postgres.EmbeddedPostgres(run_dir).running_pid()
    redis_pid = services._read_state(run_dir)["redis"]["pid"]
    assert pg_pid and pid_alive(pg_pid) and pid_alive(redis_pid)
    return pg_pid, redis_pid


def test_embedded_start_answers_then_stops_without_leftovers(run_dir):
    result = ensure_services(embedded_env(run_dir), log=lambda _msg: None)
    assert result.modes == {"database": "embedded", "redis": "embedded"}
    assert_answers(result.urls)
    pg_pid, redis_pid = service_pids(run_dir)

    # the URL works for Django too: the socket dir becomes DATABASES HOST
    parsed = dj_database_url.parse(result.urls["DATABASE_URL"])
    assert parsed["HOST"] == str(run_dir / "pgdata")
    assert parsed["NAME"] == "notifyplatform" and parsed["USER"] == "postgres"
    assert result.urls["REDIS_URL"].startswith("redis://127.0.0.1:")
    written = (run_dir / "services.env").read_text().splitlines()
    assert [line for line in written if not line.startswith("#")] == [
        f"{key}={value}" for key, value in result.urls.items()
    ]

    stopped = result.release()
    assert len(stopped) == 2
    assert not pid_alive(pg_pid) and not pid_alive(redis_pid)
    assert not (run_dir / "pgdata" / "postmaster.pid").exists()
    assert processes_using(run_dir) == []


def test_embedded_postgres_keeps_its_data_across_restarts(run_dir):
    env = embedded_env(run_dir)
    first = ensure_services(env, log=lambda _msg: None)
    with psycopg.connect(first.urls["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kept")
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    first.release()
    second = ensure_services(env, log=lambda _msg: None)
    with psycopg.connect(second.urls["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
    second.release()
    assert processes_using(run_dir) == []


def test_services_left_by_a_killed_owner_are_reattached_and_stopped(run_dir):
    env = {**os.environ, **embedded_env(run_dir)}
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from notifyplatform.launcher import ensure_services; "
            "ensure_services(log=lambda m: None); print('up', flush=True); time.sleep(60)",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout.readline().strip() == "up"
    pg_pid, redis_pid = service_pids(run_dir)
    owner.kill()  # SIGKILL: no cleanup at all
    owner.wait()
    assert pid_alive(pg_pid) and pid_alive(redis_pid)

    again = ensure_services(embedded_env(run_dir), log=lambda _msg: None)
    assert f"re-attached postgres pid {pg_pid}" in again.notes
    assert f"re-attached redis pid {redis_pid}" in again.notes
    assert_answers(again.urls)
    assert len(again.release()) == 2  # the owner is dead: we were the last user
    assert not pid_alive(pg_pid) and not pid_alive(redis_pid)
    assert processes_using(run_dir) == []


def test_shared_services_stop_with_their_last_user(run_dir):
    env = embedded_env(run_dir)
    first = ensure_services(env, log=lambda _msg: None)
    second = ensure_services(env, log=lambda _msg: None)  # e.g. `test` next to a `run`
    assert second.urls == first.urls
    pg_pid, redis_pid = service_pids(run_dir)
    assert second.release() == []
    assert pid_alive(pg_pid) and pid_alive(redis_pid)
    assert_answers(first.urls)
    assert len(first.release()) == 2
    assert not pid_alive(pg_pid) and not pid_alive(redis_pid)


def launcher(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "notifyplatform.launcher", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_env_leaves_services_running_until_stop(run_dir):
    env = embedded_env(run_dir)
    out = launcher("env", env=env)
    assert out.returncode == 0, out.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
    assert set(exports) == {"DATABASE_URL", "REDIS_URL", "NP_RUN_DIR"}
    assert "services mode: embedded (NP_SERVICES=embedded)" in out.stderr
    assert_answers(exports)  # still up after the launcher exited
    pg_pid, redis_pid = service_pids(run_dir)

    # a later user re-attaches and, since `env` started them, leaves them running
    user = ensure_services(env, log=lambda _msg: None)
    assert user.urls["REDIS_URL"] == exports["REDIS_URL"]
    assert user.release() == []
    assert pid_alive(pg_pid) and pid_alive(redis_pid)

    out = launcher("stop", env=env)
    assert out.returncode == 0, out.stderr
    assert f"redis (pid {redis_pid})" in out.stdout and f"postgres (pid {pg_pid})" in out.stdout
    assert not pid_alive(pg_pid) and not pid_alive(redis_pid)
    assert processes_using(run_dir) == []
    assert "no embedded service was running" in launcher("stop", env=env).stdout


def write_test_file(run_dir: Path, body: str) -> Path:
    path = run_dir / "probe_test.py"
    path.write_text(textwrap.dedent(body))
    return path


PROBE_TEST = """
    import os, time, psycopg, redis

    def test_services_reach():
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
        with open(os.environ["NP_RUN_DIR"] + "/seen", "w") as fh:
            fh.write(os.environ["DATABASE_URL"] + " " + os.environ["REDIS_URL"])
        time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
"""

PYTEST_ISOLATED = ["-p", "no:django", "-p", "no:cacheprovider", "-q", "-c", os.devnull]


def test_test_command_runs_pytest_with_the_services_and_stops_them(run_dir):
    probe_file = write_test_file(run_dir, PROBE_TEST)
    out = launcher("test", "--", *PYTEST_ISOLATED, str(probe_file), env=embedded_env(run_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert "launcher | services mode: embedded" in out.stdout
    assert "launcher | stopped redis" in out.stdout
    assert (run_dir / "seen").read_text().startswith("postgresql://postgres@")
    assert processes_using(run_dir) == []


def test_test_command_exits_with_pytests_code(run_dir):
    probe_file = write_test_file(run_dir, "def test_fails():\n    assert False\n")
    out = launcher("test", *PYTEST_ISOLATED, str(probe_file), env=embedded_env(run_dir))
    assert out.returncode == 1, out.stdout + out.stderr
    assert processes_using(run_dir) == []


def test_sigterm_stops_pytest_and_the_services(run_dir):
    probe_file = write_test_file(run_dir, PROBE_TEST)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "notifyplatform.launcher",
            "test",
            *PYTEST_ISOLATED,
            str(probe_file),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, **embedded_env(run_dir), "PROBE_SLEEP": "60"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (run_dir / "seen").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "stopped redis" in output
    assert processes_using(run_dir) == []


def test_long_run_dir_falls_back_to_a_short_socket_dir():
    # AF_UNIX paths are limited to 107 bytes; pgserver then puts the socket elsewhere
    base = Path(tempfile.mkdtemp(prefix="npl-long-"))
    run_dir = base / ("x" * 60) / ("y" * 60) / "run"
    run_dir.mkdir(parents=True)
    try:
        result = ensure_services(embedded_env(run_dir), log=lambda _msg: None)
        host = dj_database_url.parse(result.urls["DATABASE_URL"])["HOST"]
        assert not host.startswith(str(run_dir))
        assert_answers(result.urls)
        result.release()
        assert processes_using(run_dir) == []
    finally:
        stop_embedded({"NP_RUN_DIR": str(run_dir)}, log=lambda _msg: None)
        shutil.rmtree(base, ignore_errors=True)


# --- child processes of `run` ----------------------------------------------------------


def test_supervisor_prefixes_output_and_kills_stubborn_process_groups(tmp_path, capsys):
    stubborn = textwrap.dedent(
        """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # a grandchild in the same process group, as celery's pool processes are
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("hello from the child", flush=True)
        time.sleep(60)
        """
    )
    sup = procs.Supervisor(tmp_path, os.environ, out=sys.stdout)
    polite = sup.spawn(
        "polite", [sys.executable, "-c", "import time; print('hi', flush=True); time.sleep(60)"]
    )
    child = sup.spawn("stubborn", [sys.executable, "-c", stubborn])
    deadline = time.monotonic() + 20
    while "hello from the child" not in child.tail or "hi" not in polite.tail:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(procs.group_members(child.pid)) == 2
    started = time.monotonic()
    sup.stop_all(timeout=1.0)
    assert time.monotonic() - started < 10
    assert procs.group_members(child.pid) == [] and procs.group_members(polite.pid) == []
    assert polite.popen.returncode == -signal.SIGTERM
    assert child.popen.returncode == -signal.SIGKILL
    out = capsys.readouterr().out
    assert "stubborn | hello from the child" in out and "polite   | hi" in out


def test_run_step_reports_exit_code_and_output(tmp_path):
    sup = procs.Supervisor(tmp_path, os.environ, out=open(os.devnull, "w"))  # noqa: SIM115
    rc, tail = sup.run_step(
        "step",
        [sys.executable, "-c", "print('NP_ADMIN_LOGIN=a@b'); raise SystemExit(3)"],
        lambda: False,
    )
    assert (rc, tail) == (3, ["NP_ADMIN_LOGIN=a@b"])
    assert sup.children == []
