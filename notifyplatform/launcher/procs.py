"""Child processes of `run`: started in their own session (a terminal's Ctrl-C reaches only
the launcher, which stops them in order), output prefixed with their name, killed with
SIGTERM then SIGKILL (whole process group), and tied to the launcher's life with
PR_SET_PDEATHSIG so that even a SIGKILLed launcher leaves no app process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from .system import _proc_stat

PREFIX_WIDTH = 8
_out_lock = threading.Lock()

# Exec shim: die with the launcher (Linux prctl PR_SET_PDEATHSIG = 1), then become the
# real command. A shim instead of preexec_fn, which is unsafe once threads run (ours pump
# output). It exits at once if the launcher is already gone (the classic prctl race).
_PDEATHSIG_SHIM = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def emit(name: str, text: str, stream: TextIO | None = None) -> None:
    """Write `name | text` lines, never interleaved mid-line with other writers."""
    stream = stream or sys.stdout
    lines = text.splitlines() or [""]
    chunk = "".join(f"{name:<{PREFIX_WIDTH}} | {line}\n" for line in lines)
    with _out_lock, contextlib.suppress(OSError, ValueError):  # closed / broken pipe
        stream.write(chunk)
        stream.flush()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(int(entry))
            if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                members.append(int(entry))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Child:
    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, out: TextIO
    ):
        self.name = name
        self.argv = list(argv)
        self.tail: deque[str] = deque(maxlen=200)
        self.popen = subprocess.Popen(
            [sys.executable, "-c", _PDEATHSIG_SHIM, str(os.getpid()), *self.argv],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid  # == its process group id (own session)
        self._pump = threading.Thread(target=self._pump_output, args=(out,), daemon=True)
        self._pump.start()

    def _pump_output(self, out: TextIO) -> None:
        assert self.popen.stdout is not None
        for raw in iter(self.popen.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            self.tail.append(line)
            emit(self.name, line, out)

    def poll(self) -> int | None:
        return self.popen.poll()

    def flush_output(self, timeout: float = 2.0) -> None:
        self._pump.join(timeout)


class Supervisor:
    """Owns the app processes of one launcher."""

    def __init__(self, cwd: Path, env: Mapping[str, str], out: TextIO | None = None):
        self.cwd = cwd
        self.env = dict(env)
        self.out = out or sys.stdout
        self.children: list[Child] = []

    def spawn(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name, argv, self.env, self.cwd, self.out)
        self.children.append(child)
        return child

    def run_step(
        self, name: str, argv: Sequence[str], should_stop: Callable[[], bool]
    ) -> tuple[int | None, list[str]]:
        """Run a one-shot command to its end: (exit code, last output lines); the code is
        None if a stop was requested meanwhile (the child is then left to stop_all)."""
        child = self.spawn(name, argv)
        while child.poll() is None:
            if should_stop():
                return None, list(child.tail)
            time.sleep(0.1)
        child.flush_output()
        self.children.remove(child)
        return child.popen.returncode, list(child.tail)

    def first_dead(self) -> Child | None:
        for child in self.children:
            if child.poll() is not None:
                return child
        return None

    def stop_all(self, timeout: float = 10.0, force: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM every child, SIGKILL what is left after `timeout` (or at once when
        `force()` turns true, e.g. a second Ctrl-C), then sweep their process groups."""
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(c.poll() is None for c in self.children):
            if time.monotonic() >= deadline or force():
                for child in self.children:
                    if child.poll() is None:
                        emit("launcher", f"{child.name} did not stop in time; killing it", self.out)
                        _signal_group(child.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        # grandchildren (e.g. celery's pool processes) get a moment, then SIGKILL
        sweep_deadline = time.monotonic() + 3
        while (
            any(group_members(c.pid) for c in self.children) and time.monotonic() < sweep_deadline
        ):
            time.sleep(0.1)
        for child in self.children:
            if group_members(child.pid):
                _signal_group(child.pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(5)
            child.flush_output(1.0)
        self.children.clear()
