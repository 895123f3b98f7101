"""Helpers shared by the test suites (and the benchmarks) that start real processes:
free loopback ports, waiting for a server to listen and stopping it, the database URL a
child process must use, and Chromium's flags.

Kept out of any ``tests`` package so ``bench/`` scripts can import it too.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from notifyplatform.launcher import system
from notifyplatform.launcher.system import port_is_free

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "child_database_url",
    "free_port",
    "port_is_free",
    "stop_process",
    "two_free_ports",
    "wait_listening",
]

# Debian's Chromium, driven by Playwright; never a downloaded browser. Without the
# background-networking flags Chromium keeps dialling out, which this machine refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def child_database_url() -> str:
    """The URL of the database this process uses (the test database under pytest-django),
    for a worker or server started as a subprocess. A unix-socket host (the embedded
    PostgreSQL) is percent-encoded, as the launcher writes it."""
    from urllib.parse import quote

    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    if host.startswith("/"):
        return f"postgres://{auth}@{quote(host, safe='')}/{db['NAME']}"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def wait_listening(
    port: int,
    *,
    proc: subprocess.Popen | None = None,
    timeout: float = 30,
    log: Callable[[], str] = lambda: "",
) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; raise (with the
    process's ``log()``) if ``proc`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening: {log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s: {log()}")


def stop_process(proc: subprocess.Popen | None, *, grace: float = 10) -> None:
    """SIGTERM, ``grace`` seconds to exit, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def free_port(count: int = 1) -> int:
    """A loopback port for a server a test starts (with ``count``: that many consecutive
    ports, all free), below the kernel's ephemeral range (``launcher.system.free_port``:
    the server binds it later, and a port from that range can meanwhile become the local
    port of any outgoing connection of a parallel test)."""
    return system.free_port(count=count)


def two_free_ports() -> int:
    """A port whose next one is free too (the launcher's PORT and its sandbox's PORT+1)."""
    return free_port(2)
