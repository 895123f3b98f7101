"""What the per-process fan-out (``realtime.hub``) does for its connections besides
handing them events: their rows, written together when many open at once, and their
traffic counters, flushed for all of them in one statement."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from channels.db import database_sync_to_async

from . import conf
from .selectors import sequence_latest_committed
from .services.connections import ConnectionCounters, connection_flush_many, connection_open_many

logger = logging.getLogger("realtime.hub")


class HubMember(Protocol):
    def hub_accept(self, message: dict[str, Any]) -> bool:
        """Take ``message`` (already visible to this member): True if it must be sent
        now, False if it was a duplicate or buffered for later."""

    async def hub_send(self, messages: list[dict[str, Any]]) -> None:
        """Send the accepted messages, in order."""

    def hub_take_counters(
        self, now: float, flush_messages: int, flush_seconds: float
    ) -> tuple[Any, ConnectionCounters] | None:
        """Counters due to be written now (taken, so they are never written twice)."""

    def hub_acked(self, event_id: str) -> None:
        """The user acknowledged ``event_id`` on another connection: stop resending it."""


class HubConnections:
    """The hub's connection rows and counters (a part of ``realtime.hub.Hub``, whose
    ``__init__`` sets these attributes)."""

    opening: list[tuple[dict[str, Any], asyncio.Future[tuple[Any, int]]]]
    opener: asyncio.Task[None] | None
    dirty: set[HubMember]
    in_flush: set[HubMember]
    flush_done: asyncio.Future[None] | None
    stats: dict[str, int]

    async def open_connection(self, fields: dict[str, Any]) -> tuple[Any, int]:
        """Write a new connection's row (``connection_open``'s fields, status connected)
        and return its id and the committed sequence position read after it. The rows
        of connections opening at the same time share one INSERT and one commit: while
        one batch is being written the next one gathers."""
        future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
        self.opening.append((fields, future))
        if self.opener is None or self.opener.done():
            self.opener = asyncio.create_task(self._open_rows(), name="realtime-hub-open")
        return await future

    async def _open_rows(self) -> None:
        write = database_sync_to_async(_open_many_and_position, thread_sensitive=False)
        while self.opening:
            batch, self.opening = self.opening[:500], self.opening[500:]
            try:
                results, position = await write([fields for fields, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch + self.opening:
                    future.cancel()
                raise
            except Exception as exc:  # the database is away: each connect fails alone
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue  # the client went away meanwhile
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result((result, position))

    def mark_dirty(self, member: HubMember) -> None:
        self.dirty.add(member)

    async def forget(self, member: HubMember) -> None:
        """Stop flushing ``member``; returns once a write of its counters already under
        way has committed (its final write must come after)."""
        self.dirty.discard(member)
        while member in self.in_flush and self.flush_done is not None:
            await asyncio.shield(self.flush_done)

    async def _flusher(self) -> None:
        write = database_sync_to_async(connection_flush_many, thread_sensitive=False)
        flush_messages = conf.get("NP_WS_FLUSH_MESSAGES")
        flush_seconds = conf.get("NP_WS_FLUSH_SECONDS")
        while True:
            await asyncio.sleep(conf.get("NP_RT_HUB_FLUSH_TICK"))
            if not self.dirty:
                continue
            now = time.monotonic()
            batch = []
            members = []
            for member in list(self.dirty):
                taken = member.hub_take_counters(now, flush_messages, flush_seconds)
                if taken is not None:
                    self.dirty.discard(member)
                    batch.append(taken)
                    members.append(member)
            if not batch:
                continue
            self.in_flush = set(members)
            self.flush_done = asyncio.get_running_loop().create_future()
            try:
                await write(batch)
                self.stats["flushes"] += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # counters are statistics: log and go on
                logger.exception("realtime hub: counter flush of %d rows failed", len(batch))
            finally:
                self.in_flush = set()
                self.flush_done.set_result(None)


def _open_many_and_position(opens: list[dict[str, Any]]) -> tuple[list[Any], int]:
    # the position is read after the rows (and so after every one of these consumers
    # joined its groups): nothing published after it can be missed
    return connection_open_many(opens), sequence_latest_committed()
