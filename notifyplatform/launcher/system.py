"""Small process and network helpers of the launcher (standard library only)."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

Log = Callable[[str], None]


class LauncherError(RuntimeError):
    """A problem to report in one line (no traceback)."""


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


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (where outgoing connections get
    their local port)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on (or holds) ``port`` on ``host`` now."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", *, count: int = 1) -> int:
    """A port for a server started a moment later (``count``: that many consecutive ones,
    all free), picked at random below the kernel's ephemeral range.

    The server binds it later, sometimes seconds later; a port from the ephemeral range
    (what binding port 0 gives) can meanwhile become the local port of any outgoing
    connection on the machine, and the server then fails with "address already in use".
    Below that range only explicit binds take ports."""
    low = max(_ephemeral_low(), 11_000)
    for _ in range(500):
        port = random.randrange(10_000, low - count)
        if all(port_is_free(port + n, host) for n in range(count)):
            return port
    raise LauncherError(f"no {count} consecutive free ports below {low}")


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
