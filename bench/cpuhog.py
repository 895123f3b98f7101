"""A CPU-bound process beside the system under test ("the other core busy"): one Python
process spinning on pure arithmetic until the block ends.

    with cpu_hog():
        ...measure...
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

_SPIN = "x = 0\nwhile True:\n    x = (x * 1103515245 + 12345) & 0xFFFFFFFF\n"


@contextlib.contextmanager
def cpu_hog(processes: int = 1) -> Iterator[list[int]]:
    """Run ``processes`` spinning processes for the block; yields their pids."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _SPIN], start_new_session=True)
        for _ in range(processes)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
