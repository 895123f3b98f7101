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

Order and gap fill: events go out in sequence order, and what the layer lost is filled
from the database (``realtime.hub_order``).

Broken fan-out path: when a receive fails (Redis went away) or the hub's marker key is
gone (Redis came back empty), the hub re-adds all its memberships in one pipeline as soon
as Redis answers, then closes the gap from the database as above; consumers never notice
beyond the delay.

Memberships expire after the layer's ``group_expiry`` (``NP_CHANNEL_LAYER_GROUP_EXPIRY``)
unless re-added; a live hub re-adds them every ``NP_RT_HUB_REFRESH_SECONDS``, and removes
them all when the server shuts down, so sends stop paying for a dead process quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any

from channels.layers import get_channel_layer

from notifyplatform.gcfreeze import freeze_heap

from . import conf
from .hub_connections import HubConnections, HubMember
from .hub_order import HubOrdering, _db
from .selectors import sequence_latest_committed
from .wire import text_frame

logger = logging.getLogger(__name__)

ACK_MESSAGE_TYPE = "rt.ack"  # a user's ack, fanned out to the user's other connections


class Hub(HubOrdering, HubConnections):
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
        # --- order and gap fill (see the module docstring)
        self.horizon: int | None = None  # every owed event up to it has been released
        self.held: dict[int, list[dict[str, Any]]] = {}  # arrived, above the horizon
        self.owed_from: dict[str, int] = {}  # group -> events above this are owed
        self.owed_params: tuple[list[str], list[str], list[str]] | None = None
        self.missing_since: float | None = None
        self.settle_target = 0
        self.settle_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.reorder_wait: float = conf.get("NP_RT_REORDER_WAIT_MS") / 1000
        self.broken = False
        self.marker: str | None = None
        self.counts: dict[str, int] = {}  # /metrics counters not yet added in Redis
        self.stats.update(late=0, fills=0, resyncs=0, ordering_queries=0)

    # --- membership -------------------------------------------------------------------

    async def start(self) -> str:
        if self.channel is not None:
            return self.channel
        async with self.start_lock:
            if self.channel is None:
                _tune_gc()
                channel = await self.layer.new_channel("rthub")
                self.marker = f"{self.layer.prefix}:rthub-alive:{channel}"
                with contextlib.suppress(Exception):  # the watch task retries
                    await self._set_marker()
                self.horizon = await _db(sequence_latest_committed)()
                self.tasks = [
                    asyncio.create_task(self._read(channel), name="realtime-hub-read"),
                    asyncio.create_task(self._dispatch(), name="realtime-hub-dispatch"),
                    asyncio.create_task(self._watch(channel), name="realtime-hub-watch"),
                    asyncio.create_task(self._flusher(), name="realtime-hub-flush"),
                ]
                self.channel = channel
                _on_server_shutdown(self.close)
        return self.channel

    async def close(self) -> None:
        """Stop, and remove this process's memberships (server shutdown)."""
        for task in self.tasks:
            task.cancel()
        channel, self.channel = self.channel, None
        if channel is None:
            return
        groups = list(self.joined)
        self.joined.clear()
        try:
            await asyncio.wait_for(self._memberships("remove", channel, groups), 5)
        except Exception:  # noqa: BLE001 - they expire after group_expiry anyway
            logger.warning("realtime hub: could not remove %d memberships", len(groups))

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

    def owe(self, groups: Iterable[str], position: int) -> None:
        """Events of ``groups`` above ``position`` (read after joining them) are owed to
        this process: the ordering check waits for them and fills them if lost. Until a
        group's position is known, its events are delivered as they come."""
        for group in groups:
            if group in self.joined and group not in self.owed_from:
                self.owed_from[group] = position
                self.owed_params = None

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
                if self.owed_from.pop(group, None) is not None:
                    self.owed_params = None
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
            if self.broken and not await self._recover(channel):
                await asyncio.sleep(0.25)
                continue
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: re-join once it answers
                logger.warning("realtime hub: receive failed (%s); re-joining", exc)
                self.broken = True
                continue
            self.pending.append(message)
            self.wakeup.set()

    async def _recover(self, channel: str) -> bool:
        """Re-add every membership (one pipeline) and close the gap from the database;
        False while Redis does not answer."""
        try:
            await self._memberships("add", channel, list(self.joined))
            await self._set_marker()
        except Exception:  # noqa: BLE001 - still away
            return False
        self.broken = False
        self.stats["resyncs"] += 1
        self.count("resyncs")
        logger.warning("realtime hub: re-joined %d groups", len(self.joined))
        await self._catch_up()
        return True

    async def _dispatch(self) -> None:
        gather_max = conf.get("NP_RT_HUB_GATHER_MS") / 1000
        while True:
            if self.missing_since is None:
                await self.wakeup.wait()
            else:  # waiting for a missing event: fill it at the deadline
                timeout = self.missing_since + self.reorder_wait - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), max(0.0, timeout))
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
        """Hand each message to its group's local members, in sequence order up to the
        horizon (see the module docstring); one send per member."""
        try:
            control = []
            for message in batch:
                seq = message.get("seq")
                if seq is None:
                    control.append(message)
                else:
                    self.held.setdefault(seq, []).append(message)
            if control:
                self._control(control)
            await self._deliver(await self._releasable())
        finally:
            self.frames.clear()
            self._wake_settled()

    def _control(self, messages: list[dict[str, Any]]) -> None:
        """Messages without a sequence number: acks from another connection."""
        for message in messages:
            if message.get("type") != ACK_MESSAGE_TYPE:
                continue
            for member in self.members.get(message.get("group", ""), ()):
                member.hub_acked(message["id"])

    async def send_ack(self, group: str, event_id: str) -> None:
        """Tell every connection of ``group`` (a user's) that ``event_id`` is acked."""
        try:
            await self.layer.group_send(
                group, {"type": ACK_MESSAGE_TYPE, "id": event_id, "group": group}
            )
        except Exception as exc:  # noqa: BLE001 - the others check the database before resending
            logger.warning("realtime hub: ack fan-out to %s failed: %s", group, exc)

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

    # --- the watch task: membership refresh, lost-Redis check, horizon, counters ------

    async def _watch(self, channel: str) -> None:
        tick = conf.get("NP_RT_HUB_SYNC_SECONDS")
        refresh = conf.get("NP_RT_HUB_REFRESH_SECONDS")
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                await self._watch_once(channel, refresh_due=time.monotonic() - refreshed >= refresh)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep watching
                logger.exception("realtime hub: watch failed")
            if time.monotonic() - refreshed >= refresh:
                refreshed = time.monotonic()

    async def _watch_once(self, channel: str, *, refresh_due: bool) -> None:
        if not self.broken:
            try:
                if not await self._marker_present():
                    # Redis lost its data (restarted empty) without our receive noticing
                    logger.warning("realtime hub: Redis lost our memberships; re-joining")
                    self.broken = True
                elif refresh_due:
                    await self._memberships("add", channel, list(self.joined))
                    await self._set_marker()
            except Exception:  # noqa: BLE001 - Redis away: the read task recovers
                self.broken = True
        if self.broken:
            await self._recover(channel)
        else:
            await self._catch_up()
        await self._write_counts()

    def _connection_of(self, name: str) -> Any:
        return self.layer.connection(self.layer.consistent_hash(name))

    async def _set_marker(self) -> None:
        if self.marker is not None:
            ttl = max(60, int(conf.get("NP_RT_HUB_REFRESH_SECONDS")) * 3)
            await self._connection_of(self.marker).set(self.marker, "1", ex=ttl)

    async def _marker_present(self) -> bool:
        if self.marker is None:
            return True
        return bool(await self._connection_of(self.marker).exists(self.marker))

    async def _memberships(self, action: str, channel: str, groups: list[str]) -> None:
        """Add (or remove) ``channel`` to (from) ``groups``: one pipeline per Redis host,
        as ``group_add``/``group_discard`` would one round trip each."""
        by_host: dict[int, list[str]] = {}
        for group in groups:
            by_host.setdefault(self.layer.consistent_hash(group), []).append(group)
        now = time.time()
        for index, names in by_host.items():
            pipe = self.layer.connection(index).pipeline(transaction=False)
            for name in names:
                key = self.layer._group_key(name)
                if action == "add":
                    pipe.zadd(key, {channel: now})
                    pipe.expire(key, self.layer.group_expiry)
                else:
                    pipe.zrem(key, channel)
            await pipe.execute()

    def count(self, name: str, n: int = 1) -> None:
        """Add to a ``/metrics`` counter (written to Redis by the watch task)."""
        self.counts[name] = self.counts.get(name, 0) + n

    async def _write_counts(self) -> None:
        if not self.counts:
            return
        counts, self.counts = self.counts, {}
        key = metrics_key(self.layer.prefix)
        try:
            pipe = self._connection_of(key).pipeline(transaction=False)
            for name, n in counts.items():
                pipe.hincrby(key, name, n)
            await pipe.execute()
        except Exception:  # noqa: BLE001 - Redis away: keep them for the next tick
            for name, n in counts.items():
                self.count(name, n)


_gc_tuned = False


def _tune_gc() -> None:
    """Once per process: see "Garbage collection" in the module's docstring."""
    global _gc_tuned
    thresholds = conf.get("NP_RT_GC_THRESHOLDS")
    if _gc_tuned or not thresholds:
        return
    _gc_tuned = True
    freeze_heap(tuple(thresholds))


def metrics_key(prefix: str) -> str:
    """The Redis hash of the real-time counters ``/metrics`` reports."""
    return f"{prefix}:rt-metrics"


def _on_server_shutdown(close: Any) -> None:
    """Run ``close`` (a coroutine function) before daphne's reactor stops."""
    try:  # imported here: importing the reactor installs one, and daphne installs its own
        from twisted.internet import reactor as twisted_reactor
        from twisted.internet.defer import Deferred
    except ImportError:  # pragma: no cover - Twisted comes with daphne
        return
    reactor: Any = twisted_reactor  # typed as a zope interface, whose methods lack self
    if not getattr(reactor, "running", False):
        return  # not under daphne (a test's event loop)
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(close()))
    )


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """The hub of the running event loop (daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
