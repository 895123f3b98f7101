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

Order and gap fill (see "Ordering and recovery" in the README's protocol section).
Publishers commit in sequence order (the ordering lock, ``realtime.services``) but fan
out after commit, each on its own, so messages reach a process in publisher-clock order,
and the layer may lose some (Redis restarted empty, a full channel queue, a send into a
group this process had not re-joined yet). The hub therefore releases events to its
consumers in sequence order only, up to a *horizon*: every event up to it that this
process is owed (public/authenticated events of its topics, private/targeted events of
its users — the replay's rule over the union of its subscribers) has been handed over.
When the sequence numbers that arrived are contiguous from the horizon, they go out at
once with no database query (one busy topic). Otherwise one indexed range query
(``selectors.event_owed``) says which owed events are missing; the hub waits for them up
to ``NP_RT_REORDER_WAIT_MS`` and then reads them from the database
(``selectors.event_messages_by_sequence``, the replay's frames) — each fill is counted in
``/metrics``. Every ``NP_RT_HUB_SYNC_SECONDS`` the hub also moves its horizon to the
latest committed sequence, so a lost message is found even when nothing follows it.

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
import gc
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from . import conf, groups
from .selectors import event_messages_by_sequence, event_owed, sequence_latest_committed
from .services.connections import (
    ConnectionCounters,
    connection_flush_many,
    connection_open_many,
)
from .wire import text_frame

logger = logging.getLogger(__name__)

ACK_MESSAGE_TYPE = "rt.ack"  # a user's ack, fanned out to the user's other connections


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

    async def _catch_up(self) -> None:
        """Move the horizon to the latest committed event (filling what was lost)."""
        try:
            latest = await _db(sequence_latest_committed)()
        except Exception:  # noqa: BLE001 - the database is away: next tick
            logger.warning("realtime hub: could not read the latest sequence")
            return
        if self.horizon is None or latest <= self.horizon:
            return
        # give what is in flight the reorder wait to arrive: usually the horizon passes
        # ``latest`` by itself and the dispatcher never pays for a query here
        await asyncio.sleep(self.reorder_wait)
        if self.horizon is not None and latest > self.horizon:
            self.settle_target = max(self.settle_target, latest)
            self.wakeup.set()

    async def settle(self, position: int, timeout: float = 5.0) -> bool:
        """Return once every owed event up to ``position`` has been handed to the
        consumers (a replay ending at ``position`` then merges with them in order)."""
        if self.horizon is None or self.horizon >= position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.settle_waiters.append((position, future))
        self.settle_target = max(self.settle_target, position)
        self.wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
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

    def _wake_settled(self) -> None:
        if not self.settle_waiters or self.horizon is None:
            return
        waiting = []
        for position, future in self.settle_waiters:
            if position <= self.horizon:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((position, future))
        self.settle_waiters = waiting

    def _take_held(self, upto: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for seq in sorted(s for s in self.held if s <= upto):
            out.extend(self.held.pop(seq))
        return out

    async def _releasable(self) -> list[dict[str, Any]]:
        """The held messages that may go out now, in sequence order."""
        horizon = self.horizon
        target = max(max(self.held, default=0), self.settle_target)
        if horizon is None:
            self.horizon = target
            return self._take_held(target)
        # at or below the horizon: late copies of events already filled (or not owed);
        # each consumer drops what it has already passed
        out = self._take_held(horizon)
        if out:
            self.stats["late"] += len({m["seq"] for m in out})
        if target <= horizon:
            return out
        if self.missing_since is None and self._contiguous(horizon, target):
            self.horizon = target  # nothing can be missing
            return out + self._take_held(target)
        try:
            missing = self._missing(await self._owed(horizon, target))
            if missing:
                now = time.monotonic()
                if self.missing_since is None:
                    self.missing_since = now
                if now - self.missing_since < self.reorder_wait:
                    first = min(missing)
                    self.horizon = first - 1
                    return out + self._take_held(first - 1)
                await self._fill(missing)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database is away: deliver what came, in order
            logger.exception("realtime hub: ordering check failed; releasing unchecked")
        self.missing_since = None
        self.horizon = target
        return out + self._take_held(target)

    async def _owed(self, after: int, upto: int) -> dict[int, list[str]]:
        """The owed events in (after, upto] and the groups of this process each goes to."""
        if not self.owed_from:
            return {}
        if self.owed_params is None:
            pub, auth, users = [], [], []
            for group in self.owed_from:
                kind, _, rest = group.partition(".")
                if kind == "user":
                    users.append(rest)
                elif group.endswith(".pub"):
                    pub.append(rest[: -len(".pub")])
                elif group.endswith(".auth"):
                    auth.append(rest[: -len(".auth")])
            self.owed_params = (pub, auth, users)
        pub, auth, users = self.owed_params
        self.stats["ordering_queries"] += 1
        rows = await _db(event_owed)(
            after=after, upto=upto, public_topics=pub, auth_topics=auth, user_ids=users
        )
        owed: dict[int, list[str]] = {}
        for seq, visibility, topics, owner, targets in rows:
            names = [
                g
                for g in event_group_names(visibility, topics, owner, targets)
                if seq > self.owed_from.get(g, seq)
            ]
            if names:
                owed[seq] = names
        return owed

    def _contiguous(self, horizon: int, target: int) -> bool:
        """Every sequence number in (horizon, target] arrived, each with every copy this
        process is owed (an event of several groups names them all in ``also``)."""
        if target - horizon > len(self.held):
            return False
        for seq in range(horizon + 1, target + 1):
            messages = self.held.get(seq)
            if not messages:
                return False
            also = messages[0].get("also")
            if also:
                arrived = {m.get("group") for m in messages}
                for group in also:
                    if group not in arrived and seq > self.owed_from.get(group, seq):
                        return False
        return True

    def _missing(self, owed: dict[int, list[str]]) -> dict[int, list[str]]:
        """The owed (event, group) copies that have not arrived: a whole event, or the
        copy of one of its groups (an event on two topics travels as two messages)."""
        missing: dict[int, list[str]] = {}
        for seq, names in owed.items():
            arrived = {m.get("group") for m in self.held.get(seq, ())}
            lost = [g for g in names if g not in arrived]
            if lost:
                missing[seq] = lost
        return missing

    async def _fill(self, missing: dict[int, list[str]]) -> None:
        """Read the missing copies from the database into ``held`` (one per group, as the
        layer would have brought them)."""
        messages = await _db(event_messages_by_sequence)(list(missing))
        for message in messages:
            seq = message["seq"]
            self.held.setdefault(seq, []).extend(
                {**message, "group": g} for g in missing.get(seq, ())
            )
        self.stats["fills"] += len(missing)
        self.count("gap_fill_events", len(missing))
        logger.info("realtime hub: filled %d events from the database", len(missing))

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
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def metrics_key(prefix: str) -> str:
    """The Redis hash of the real-time counters ``/metrics`` reports."""
    return f"{prefix}:rt-metrics"


def event_group_names(
    visibility: str, topics: list[str], owner: str | None, targets: list[str] | None
) -> list[str]:
    """``services.fanout.event_groups`` for an event read as columns."""
    if visibility == "public":
        return [groups.public_group(t) for t in topics]
    if visibility == "authenticated":
        return [groups.auth_group(t) for t in topics]
    if visibility == "private":
        return [groups.user_group(owner)] if owner else []
    return [groups.user_group(u) for u in targets or []]


def _db(func: Any) -> Any:
    from channels.db import database_sync_to_async

    return database_sync_to_async(func, thread_sensitive=False)


def _on_server_shutdown(close: Any) -> None:
    """Run ``close`` (a coroutine function) before daphne's reactor stops."""
    try:
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred
    except ImportError:  # pragma: no cover - Twisted comes with daphne
        return
    if not getattr(reactor, "running", False):
        return  # not under daphne (a test's event loop)
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(close()))
    )


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
