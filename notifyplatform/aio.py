"""An asyncio event loop that lives in a daemon thread of its own, one per process.

Synchronous code (Celery task threads, Django's after-commit callbacks) hands coroutines
to it with :meth:`LoopThread.submit` and waits for plain ``concurrent.futures`` results,
so the connection pools the coroutines use (aiohttp's, channels_redis') stay warm across
calls instead of being rebuilt by a fresh loop per call (``async_to_sync`` from a plain
thread). The pid is checked on every use: a forked child builds its own loop, it must not
share the parent's sockets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """One event loop thread per process, started on first use (named ``name``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0
        self.lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        """The running loop of this process, started (again) when there is none."""
        loop = self.loop
        if loop is not None and self.pid == os.getpid() and loop.is_running():
            return loop
        with self.lock:
            if self.loop is None or self.pid != os.getpid() or not self.loop.is_running():
                self.loop, self.pid = self._start(), os.getpid()
                self.started()
            return self.loop

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        threading.Thread(target=serve, name=self.name, daemon=True).start()
        ready.wait()
        return loop

    def started(self) -> None:
        """Called (under the lock) after a new loop started: drop what belonged to the old."""

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on this loop; a future for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.get())
