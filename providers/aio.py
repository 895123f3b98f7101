"""The process's sender event loop and its pooled aiohttp session.

The batch sender (``deliveries.services.sending.deliveries_send_batch``) sends a claimed
batch concurrently. Threads did that before: one OS thread per in-flight request, each
running httpx, so at a few hundred sends per second most of the CPU went into thread
switches and GIL hand-offs rather than into the requests. One event loop per process,
living in its own daemon thread, holds every in-flight request of every batch on one
keep-alive connection pool instead; the callers (Celery task threads) submit coroutines
with :func:`submit` and wait for plain ``concurrent.futures`` results.

Nothing here touches the database: Django's ORM refuses to run inside an event loop, so
whatever needs it (a circuit opening, a provider without an async adapter) is handed back to
a thread with :func:`to_thread`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from django.conf import settings

from notifyplatform.aio import LoopThread

T = TypeVar("T")


def concurrency() -> int:
    """Requests in flight at once per process (and keep-alive connections kept)."""
    return max(1, int(getattr(settings, "NP_SEND_ASYNC_CONCURRENCY", 256)))


class _SenderLoop(LoopThread):
    """The sender's loop thread and the pooled session that belongs to it."""

    def __init__(self) -> None:
        super().__init__("np-send-loop")
        self.session: aiohttp.ClientSession | None = None

    def started(self) -> None:
        self.session = None  # the old loop's session is of no use on the new one


_sender = _SenderLoop()


@atexit.register
def _close_session() -> None:
    """Close the pool at interpreter exit (aiohttp logs every unclosed connection else)."""
    loop, current = _sender.loop, _sender.session
    if loop is None or current is None or _sender.pid != os.getpid() or not loop.is_running():
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(current.close(), loop).result(timeout=2)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run ``coro`` on the process's sender loop; a future for its result."""
    return _sender.submit(coro)


def session() -> aiohttp.ClientSession:
    """The sender loop's pooled keep-alive session (call from inside that loop)."""
    current = _sender.session
    if current is None or current.closed:
        limit = concurrency()
        connector = aiohttp.TCPConnector(
            limit=limit,
            limit_per_host=limit,
            keepalive_timeout=30,
            # our own SSRF guard resolves and pins every target (providers.netguard);
            # aiohttp's resolver cache must not second-guess it
            use_dns_cache=False,
        )
        current = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": "notifyplatform/1.0"},
            auto_decompress=True,
            # no cookie jar: provider responses must not leak state into later requests
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        _sender.session = current
    return current


_blocking: dict[int, concurrent.futures.ThreadPoolExecutor] = {}


def _blocking_executor() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for blocking work (adapters without a coroutine send, circuit bookkeeping),
    as many as ``NP_SEND_CONCURRENCY``: an SMTP batch keeps the parallelism it had."""
    pid = os.getpid()
    pool = _blocking.get(pid)
    if pool is None:
        with _sender.lock:
            pool = _blocking.get(pid)
            if pool is None:
                pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(1, int(getattr(settings, "NP_SEND_CONCURRENCY", 32))),
                    thread_name_prefix="np-send",
                )
                _blocking[pid] = pool
    return pool


async def to_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking, possibly database-touching ``func`` off the loop; the thread's database
    connection is closed afterwards (nothing in these threads' life would close it)."""

    def call() -> T:
        from django.db import connections

        try:
            return func(*args)
        finally:
            connections.close_all()

    # in the caller's context, as asyncio.to_thread does (the log fields of the delivery
    # being sent: notifyplatform.logs)
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_blocking_executor(), context.run, call)
