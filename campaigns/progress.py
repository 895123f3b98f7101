"""Following a job from a terminal: a progress bar on a TTY (counts, rate, ETA), plain log
lines otherwise (CI logs, cron mail)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from io import TextIOBase
from typing import Any, TextIO

from .models import NotificationBatchJob
from .selectors import batch_progress


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def progress_line(p: dict[str, Any], *, width: int = 30) -> str:
    filled = int(width * p["percent"] / 100) if p["total"] else width
    bar = "#" * filled + "." * (width - filled)
    return (
        f"[{bar}] {p['processed']:,}/{p['total']:,} {p['percent']:5.1f}% "
        f"ok {p['successful']:,} failed {p['failed']:,} · {p['rate_per_second']:,.0f}/s "
        f"· ETA {_duration(p['eta_seconds'])} · {p['status']}"
    )


def follow(
    job_id: int,
    out: TextIO | TextIOBase,
    *,
    tty: bool,
    interval: float = 0.5,
    log_every: float = 5.0,
    timeout: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Print progress until the job finishes (or ``timeout``); returns the last figures.
    Raises ``KeyboardInterrupt`` between two polls once ``stop()`` is true."""
    started = time.monotonic()
    last_log = 0.0
    while True:
        if stop():
            raise KeyboardInterrupt
        job = NotificationBatchJob.objects.get(pk=job_id)
        p = batch_progress(job)
        now = time.monotonic()
        if tty:
            out.write("\r\x1b[2K" + progress_line(p))
            out.flush()
        elif p["finished"] or now - last_log >= log_every:
            out.write(
                f"job {job_id} {p['status']}: {p['processed']}/{p['total']} processed, "
                f"{p['successful']} ok, {p['failed']} failed, {p['rate_per_second']:.0f}/s, "
                f"eta {_duration(p['eta_seconds'])}\n"
            )
            out.flush()
            last_log = now
        if p["finished"] or (timeout is not None and now - started > timeout):
            if tty:
                out.write("\n")
            return p
        time.sleep(interval)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[Callable[[], bool]]:
    """Ctrl-C only sets a flag (``follow(stop=...)`` acts on it between two polls) instead of
    raising wherever the process is: inside a query it would hand an ACTIVE connection back
    to the pool, which then logs a warning after the command's one line."""
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed.is_set  # only the main thread receives signals (and may set handlers)
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.set())
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


# What a shell reports for a process killed by SIGPIPE (128 + 13), e.g. `yes | head`.
CLOSED_PIPE_EXIT = 141


@contextlib.contextmanager
def quiet_closed_pipe(stdout: TextIO | TextIOBase) -> Iterator[None]:
    """End a command quietly when its reader went away (``batch_status | head``): no
    BrokenPipeError traceback, and none when Python flushes stdout at exit either."""
    try:
        yield
        stdout.flush()  # inside: a pipe closed after the last write fails here
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the exit-time flush goes nowhere
        raise SystemExit(CLOSED_PIPE_EXIT) from None
