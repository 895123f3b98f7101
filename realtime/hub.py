"""Per-process fan-out: one channel-layer membership per group per server process.

Stock Channels makes every consumer a member of its groups, so one ``group_send`` to a
topic with 1,000 subscribers on one daphne process pushes 1,000 messages into Redis and
the process pops them back one round trip at a time (~5k messages/s, then latency runs
away). Here each process owns ONE channel-layer channel (the hub's). The first local
consumer to join a group makes the hub's channel a member; the layer then carries one
message per process per publish, and the hub hands it to the local consumers of that
group from an in-memory registry.

Visibility is untouched: consumers join exactly the groups they joined before (see
``realtime.groups``: ``topic.<t>.pub`` for every subscriber, ``topic.<t>.auth`` for
signed-in ones, ``user.<id>`` for the user's own connections), and the hub only ever
delivers a group's message to that group's local members. The publisher stamps each
copy with the group it was sent to (``message["group"]``).

Coalescing: the dispatcher takes every message that has arrived since its last run, so
when it falls behind, one run carries several events; a consumer whose client asked
for batches (``?batch=1``) then gets them as one JSON-array frame (see consumers.py).
Under load the dispatcher also waits a little (a fraction of its last run, at most
``NP_RT_HUB_GATHER_MS``) so more events arrive per run.

Garbage collection: with 1,000 connections a process holds a few hundred thousand
objects, and every dispatch run keeps thousands of short-lived ones alive long enough
to be promoted, so full collections (150-450 ms, measured with gc.callbacks at ~50
events/s to 1,000 subscribers) came every few seconds and were the latency tail. When
the hub starts it freezes what is alive then (``gc.freeze``: Django and the imports,
which live as long as the process) and raises the collection thresholds
(``NP_RT_GC_THRESHOLDS``): one full collection of ~40 ms in the same run.

The membership of a dead process lingers in Redis until the layer's ``group_expiry``;
a live hub re-adds its memberships every ``NP_RT_HUB_REFRESH_SECONDS`` so a long-lived
process never ages out of a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from . import conf
from .selectors import sequence_latest_committed
from .services import ConnectionCounters, connection_flush_many, connection_open_many
from .wire import text_frame

logger = logging.getLogger(__name__)


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


class Hub:
    """The fan-out of one event loop (one daphne process)."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.members: dict[str, set[HubMember]] = {}
        self.joined: set[str] = set()
        self.locks: dict[str, asyncio.Lock] = {}
        self.pending: list[dict[str, Any]] = []
        self.wakeup = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []
        self.start_lock = asyncio.Lock()
        self.last_run = 0.0  # seconds the last dispatch run took
        self.stats = {"messages": 0, "runs": 0, "deliveries": 0, "flushes": 0}
        self.batch_max_events: int = conf.get("NP_WS_BATCH_MAX_EVENTS")
        # connections with traffic not yet written, and the write in progress
        self.dirty: set[HubMember] = set()
        self.in_flush: set[HubMember] = set()
        self.flush_done: asyncio.Future[None] | None = None
        # websocket frames of the event arrays sent in the current run, by the
        # identity of their messages (kept alive here, so an id is never reused)
        self.frames: dict[tuple[int, ...], tuple[tuple[dict[str, Any], ...], bytes]] = {}
        # connection rows waiting to be written, and the task writing them
        self.opening: list[tuple[dict[str, Any], asyncio.Future[tuple[Any, int]]]] = []
        self.opener: asyncio.Task[None] | None = None

    # --- membership -------------------------------------------------------------------

    async def start(self) -> str:
        if self.channel is not None:
            return self.channel
        async with self.start_lock:
            if self.channel is None:
                _tune_gc()
                channel = await self.layer.new_channel("rthub")
                self.tasks = [
                    asyncio.create_task(self._read(channel), name="realtime-hub-read"),
                    asyncio.create_task(self._dispatch(), name="realtime-hub-dispatch"),
                    asyncio.create_task(self._refresh(channel), name="realtime-hub-refresh"),
                    asyncio.create_task(self._flusher(), name="realtime-hub-flush"),
                ]
                self.channel = channel
        return self.channel

    def _lock(self, group: str) -> asyncio.Lock:
        lock = self.locks.get(group)
        if lock is None:
            lock = self.locks[group] = asyncio.Lock()
        return lock

    async def join(self, group: str, member: HubMember) -> None:
        """Register ``member`` for ``group``; returns once the layer delivers the group's
        messages to this process (so nothing published after it can be missed)."""
        channel = await self.start()
        self.members.setdefault(group, set()).add(member)
        if group in self.joined:
            return
        async with self._lock(group):
            if group not in self.joined:
                try:
                    await self.layer.group_add(group, channel)
                except BaseException:
                    self._forget(group, member)
                    raise
                self.joined.add(group)

    def _forget(self, group: str, member: HubMember) -> None:
        members = self.members.get(group)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[group]

    async def leave(self, group: str, member: HubMember) -> None:
        self._forget(group, member)
        if group in self.members or group not in self.joined:
            return
        async with self._lock(group):
            # a join may have come in while we waited for the lock
            if group not in self.members and group in self.joined and self.channel:
                self.joined.discard(group)
                await self.layer.group_discard(group, self.channel)
            if group not in self.members and group not in self.joined:
                self.locks.pop(group, None)

    async def leave_all(self, groups: Iterable[str], member: HubMember) -> None:
        for group in groups:
            with contextlib.suppress(Exception):
                await self.leave(group, member)

    # --- the tasks --------------------------------------------------------------------

    async def _read(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarting: the events stay replayable
                logger.exception("realtime hub: receive failed")
                await asyncio.sleep(0.5)
                continue
            self.pending.append(message)
            self.wakeup.set()

    async def _dispatch(self) -> None:
        gather_max = conf.get("NP_RT_HUB_GATHER_MS") / 1000
        while True:
            await self.wakeup.wait()
            if gather_max and self.last_run > 0.005:
                # behind: let more events arrive so this run carries several per frame
                await asyncio.sleep(min(gather_max, self.last_run / 2))
            self.wakeup.clear()
            batch, self.pending = self.pending, []
            started = time.perf_counter()
            try:
                await self.deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("realtime hub: dispatch failed")
            self.last_run = time.perf_counter() - started

    def frame_of(self, messages: list[dict[str, Any]]) -> bytes:
        """The websocket frame carrying ``messages`` (one event, or an array of them),
        built once however many connections it goes to."""
        if len(messages) == 1:
            message = messages[0]
            frame = message.get("wire_frame")
            if frame is None:
                frame = message["wire_frame"] = text_frame(message["text"].encode())
            return frame
        key = tuple(map(id, messages))
        hit = self.frames.get(key)
        if hit is not None:
            return hit[1]
        frame = text_frame(("[" + ",".join(m["text"] for m in messages) + "]").encode())
        if len(self.frames) >= 1000:
            self.frames.clear()
        self.frames[key] = (tuple(messages), frame)
        return frame

    async def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Hand each message to its group's local members; one send per member."""
        try:
            await self._deliver(batch)
        finally:
            self.frames.clear()

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        outboxes: dict[HubMember, list[dict[str, Any]]] = {}
        for message in batch:
            members = self.members.get(message.get("group", ""))
            if not members:
                continue
            for member in members:
                if member.hub_accept(message):
                    box = outboxes.get(member)
                    if box is None:
                        outboxes[member] = [message]
                    else:
                        box.append(message)
        self.stats["messages"] += len(batch)
        self.stats["runs"] += 1
        for member, messages in outboxes.items():
            self.stats["deliveries"] += len(messages)
            try:
                await member.hub_send(messages)
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken connection must not starve the others
                logger.exception("realtime hub: send failed")

    # --- connection rows ----------------------------------------------------------------

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
        from channels.db import database_sync_to_async

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

    # --- connection counters ----------------------------------------------------------

    def mark_dirty(self, member: HubMember) -> None:
        self.dirty.add(member)

    async def forget(self, member: HubMember) -> None:
        """Stop flushing ``member``; returns once a write of its counters already under
        way has committed (its final write must come after)."""
        self.dirty.discard(member)
        while member in self.in_flush and self.flush_done is not None:
            await asyncio.shield(self.flush_done)

    async def _flusher(self) -> None:
        from channels.db import database_sync_to_async

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

    async def _refresh(self, channel: str) -> None:
        interval = conf.get("NP_RT_HUB_REFRESH_SECONDS")
        while True:
            await asyncio.sleep(interval)
            for group in list(self.joined):
                with contextlib.suppress(Exception):
                    await self.layer.group_add(group, channel)


_gc_tuned = False


def _tune_gc() -> None:
    """Once per process: see "Garbage collection" in the module's docstring."""
    global _gc_tuned
    thresholds = conf.get("NP_RT_GC_THRESHOLDS")
    if _gc_tuned or not thresholds:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def _open_many_and_position(opens: list[dict[str, Any]]) -> tuple[list[Any], int]:
    # the position is read after the rows (and so after every one of these consumers
    # joined its groups): nothing published after it can be missed
    return connection_open_many(opens), sequence_latest_committed()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """The hub of the running event loop (daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
