"""The ``ws/v1/events/`` consumer. The protocol is described in the README
("Real-time protocol"); in short, JSON text frames:

client → server  ``hello {reconnect?, protocol?, batch?}``, ``subscribe {topics, since?}``,
                 ``unsubscribe {topics}``, ``ack {event_id}``, ``ping``, ``pong``
server → client  ``connected``, ``event``, ``subscribed``, ``unsubscribed``,
                 ``recovery_failed``, ``acked``, ``error {code, message}``, ``ping``, ``pong``

A client that connects with ``?batch=1`` (or says ``hello {batch: true}``) may also
receive a JSON *array* of ``event`` frames in one websocket message when several
events are ready for it at once (a replay, or live events while the server is behind);
the array's events are in sequence order and mean exactly what they mean one per
frame. Other clients always get one frame per message.

Design notes
* Fan-out is per process (``realtime.hub``): the process, not each consumer, is a
  member of the channel-layer groups; the hub hands every group message to the local
  consumers that joined that group, which keeps the layer's visibility rules.
* Events arrive from the layer as ready JSON text (serialised once per publish) and
  are forwarded as is (a batch is the texts joined into an array, never re-encoded).
  Under daphne the hub builds each event's websocket frame once per process and every
  connection writes those bytes to its socket (``realtime.wire``); other frames
  (connected, pong, errors...) take the ordinary ASGI send.
* A new connection's row is written in one INSERT with the others opening at the
  same time (``Hub.open_connection``).
* A ``subscribe`` with ``since`` replays from the database in a task of its own while
  the dispatch loop keeps draining the layer into a buffer: the layer's per-channel
  queue is bounded and drops messages when a consumer stops reading, so a long
  replay must never block it. After the replay the buffer is flushed in sequence
  order without the events the replay already sent.
* Order: the hub releases events in sequence order and fills what the layer lost
  (``realtime.hub``); a connection sends only increasing sequence numbers, and a
  replay waits for the hub to pass its end (``Hub.settle``) before merging the live
  events buffered meanwhile, so nothing live below the replay's end comes after it.
* Acks are per user: an ack is fanned out to the user's group and every connection of
  the user on every process drops it from its resend list (``hub_acked``).
* Counters live in memory and are written in batches (every ``NP_WS_FLUSH_MESSAGES``
  messages or ``NP_WS_FLUSH_SECONDS`` seconds, on each pong, and at disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from notifyplatform import jsonparse

from . import conf, selectors, services
from .consumer_acks import Acks
from .consumer_base import (
    CLOSE_HEARTBEAT_TIMEOUT,
    CLOSE_REASONS,
    CLOSE_TOO_MANY_ERRORS,
    RECENT_SEQ_WINDOW,
    _db,
)
from .consumer_connect import ConnectSteps
from .consumer_prefs import Preferences
from .consumer_protocol import ClientFrames
from .errors import RealtimeError
from .hub import get_hub

logger = logging.getLogger(__name__)


class EventsConsumer(ConnectSteps, ClientFrames, Acks, Preferences):
    # No per-consumer channel-layer channel: group messages come through the process's
    # hub (an alias that is not configured makes Channels skip the layer entirely).
    channel_layer_alias = "realtime-hub-no-consumer-channel"

    # --- life cycle -------------------------------------------------------------------

    async def connect(self) -> None:
        self._init_state()
        if self.scope.get("np_auth_error"):
            await self._refuse_token()
            return
        request = self._read_request()
        client_fields = await self._accept_handshake(request)
        position = await self._open_connection(request, client_fields)
        await self._send_connected(position)
        self.timer_task = asyncio.create_task(self._timers())
        await self._report_connect_errors(request)
        await self._start_streams(request, position)

    def _init_state(self) -> None:
        self.hub = get_hub()
        self.hub_groups = set()
        self.batch_frames = False
        self.channel_name = ""
        self.connection_id = None
        self._raw_send = self.base_send
        self._wire = None
        self.closing_reason = None
        self.topics = set()
        self.sent_seqs = OrderedDict()
        self.last_seq = 0  # events go out in increasing sequence order only
        self.pending_acks = {}
        self.replays = 0  # replays in progress; live events are buffered meanwhile
        self.replay_lock = asyncio.Lock()
        self.live_buffer = []
        self.private_replayed = False
        self.counters = services.ConnectionCounters()
        self.unflushed = 0
        self.first_unflushed_at = None
        self.wakeup = asyncio.Event()
        self.tasks = set()
        self.timer_task = None
        self._client_init()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "throttle"):
            self.throttle.close()
        for task in [self.timer_task, *self.tasks]:
            if task is not None:
                task.cancel()
        for task in [self.timer_task, *self.tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        hub_groups: set[str] = getattr(self, "hub_groups", set())
        self.hub_groups = set()
        if hub_groups:
            await self.hub.leave_all(hub_groups, self)
        await self.hub.forget(self)
        if self.connection_id is None:
            return
        reason = self.closing_reason or CLOSE_REASONS.get(code, f"closed_{code}")
        await _db(services.connection_disconnect)(
            connection_id=self.connection_id,
            reason=reason,
            counters=self._with_bandwidth(self.counters.take()),
        )

    # --- sending and counting --------------------------------------------------------

    async def _send_text(self, text: str, nbytes: int | None = None) -> None:
        await self._raw_send({"type": "websocket.send", "text": text})
        self.counters.messages_sent += 1
        nbytes = nbytes if nbytes is not None else len(text.encode())
        self.counters.bytes_sent += nbytes
        self.meter.sent(nbytes)
        self._traffic()

    async def _send_events(self, messages: list[dict[str, Any]]) -> None:
        """Send accepted layer messages in order: one frame each, or (for a client that
        asked for batches) JSON arrays of up to ``NP_WS_BATCH_MAX_EVENTS`` events."""
        if self.closing_reason is not None:
            return
        if not self.batch_frames or len(messages) == 1:
            chunks = [[message] for message in messages]
        else:
            size = self.hub.batch_max_events
            chunks = [messages[start : start + size] for start in range(0, len(messages), size)]
        wire = self._wire
        for chunk in chunks:
            if len(chunk) == 1:
                nbytes = chunk[0].get("n") or len(chunk[0]["text"].encode())
            else:
                nbytes = sum(m.get("n") or len(m["text"].encode()) for m in chunk) + len(chunk) + 1
            if wire is not None:
                # the frame's bytes are built once per publish (per run for an array)
                if not wire.write(self.hub.frame_of(chunk)):
                    return  # closing: the client replays what it missed
                self.counters.messages_sent += 1
                self.counters.bytes_sent += nbytes
                self.meter.sent(nbytes)
                self._traffic()
            elif len(chunk) == 1:
                await self._send_text(chunk[0]["text"], nbytes)
            else:
                await self._send_text("[" + ",".join(m["text"] for m in chunk) + "]", nbytes)

    async def _join(self, group: str) -> None:
        self.hub_groups.add(group)
        await self.hub.join(group, self)

    async def _leave(self, group: str) -> None:
        self.hub_groups.discard(group)
        await self.hub.leave(group, self)

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        if self.throttle.held:  # replies never overtake held events
            await self.throttle.flush()
        await self._send_text(json.dumps(frame, separators=(",", ":")))

    async def _send_error(self, code: str, message: str, **extra: Any) -> None:
        self.counters.errors += 1
        self.counters.last_error = f"{code}: {message}"
        await self._send_frame({"type": "error", "code": code, "message": message, **extra})
        self.error_total = getattr(self, "error_total", 0) + 1
        if self.error_total >= conf.get("NP_WS_MAX_ERRORS"):
            await self._server_close(CLOSE_TOO_MANY_ERRORS, "too_many_errors")

    def _traffic(self) -> None:
        self.unflushed += 1
        if self.first_unflushed_at is None:
            self.first_unflushed_at = time.monotonic()
            self.hub.mark_dirty(self)

    def hub_take_counters(
        self, now: float, flush_messages: int, flush_seconds: float
    ) -> tuple[uuid.UUID, services.ConnectionCounters] | None:
        """The counters to write now (every ``NP_WS_FLUSH_MESSAGES`` messages, every
        ``NP_WS_FLUSH_SECONDS`` seconds, or with a heartbeat), else None. The hub writes
        those of all its connections in one statement (``connection_flush_many``)."""
        if self.connection_id is None:
            return None
        due = (
            self.unflushed >= flush_messages
            or self.counters.last_heartbeat is not None
            or (
                self.first_unflushed_at is not None
                and now - self.first_unflushed_at >= flush_seconds
            )
        )
        if not due:
            return None
        self.unflushed = 0
        self.first_unflushed_at = None
        return self.connection_id, self._with_bandwidth(self.counters.take())

    async def _server_close(self, code: int, reason: str) -> None:
        if self.closing_reason is not None:
            return
        self.closing_reason = reason
        if self.connection_id is not None:
            await _db(services.connection_mark_disconnecting)(
                connection_id=self.connection_id, reason=reason
            )
        await self.close(code=code)

    def _remember(self, seq: int) -> None:
        self.sent_seqs[seq] = None
        if len(self.sent_seqs) > RECENT_SEQ_WINDOW:
            self.sent_seqs.popitem(last=False)

    # --- the timer task: heartbeats, ack redelivery (the hub flushes counters) --------

    async def _timers(self) -> None:
        while self.closing_reason is None:
            now = time.monotonic()
            deadlines = [self.next_ping]
            if self.pending_acks:
                deadlines.append(min(p.due for p in self.pending_acks.values()))
            delay = max(0.0, min(deadlines) - now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=delay)
            self.wakeup.clear()
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the connection's timers alive
                logger.exception("realtime timer failed on %s", self.connection_id)
                self.counters.errors += 1
                self.counters.last_error = f"INTERNAL: {type(exc).__name__}: {exc}"

    async def _tick(self) -> None:
        now = time.monotonic()
        if now >= self.next_ping:
            if self.unanswered_pings >= 2:
                await self._server_close(CLOSE_HEARTBEAT_TIMEOUT, "heartbeat_timeout")
                return
            self.unanswered_pings += 1
            self.next_ping = now + self.heartbeat_interval
            await self._send_frame({"type": "ping", "ts": int(time.time() * 1000)})
        due = [event_id for event_id, p in self.pending_acks.items() if p.due <= now]
        if due and self.user_id is not None:
            # acked on another connection whose ack fan-out did not reach us (Redis away)
            for event_id in await _db(selectors.event_ids_acked)(
                user_id=self.user_id, event_ids=due
            ):
                self.pending_acks.pop(event_id, None)
        for event_id, pending in list(self.pending_acks.items()):
            if pending.due <= now and event_id in self.pending_acks:
                pending.due = now + pending.timeout
                await self._send_text(pending.text, pending.nbytes)

    # --- events from the hub (realtime.hub) -------------------------------------------

    def hub_accept(self, message: dict[str, Any]) -> bool:
        """A live event of one of our groups: True when it is to be sent now."""
        if self.closing_reason is not None:
            return False
        if self.replays:  # connecting, or replaying
            self.live_buffer.append(message)
            return False
        return self._accept(message)

    async def hub_send(self, messages: list[dict[str, Any]]) -> None:
        await self._offer_events(messages)

    def _accept(self, message: dict[str, Any]) -> bool:
        if not self.prefs.wants(message):  # the client's filters (realtime.preferences)
            return False
        seq = message["seq"]
        if seq <= self.last_seq or seq in self.sent_seqs:
            # an event on two subscribed topics, replayed already, or one this
            # connection has passed (it only ever sends increasing sequence numbers)
            return False
        self._remember(seq)
        self.last_seq = seq
        if message.get("ack") and self.user_id is not None:
            self._track_ack(message["id"], seq, message["text"], message.get("n"), message["ack"])
        return True

    async def _deliver_all(self, messages: list[dict[str, Any]]) -> None:
        """Send, in sequence order, those of ``messages`` not sent yet."""
        fresh = [m for m in sorted(messages, key=lambda m: m["seq"]) if self._accept(m)]
        if fresh:
            await self._offer_events(fresh)

    # --- frames from the client ------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else bytes_data or b""
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        self.counters.messages_received += 1
        self.counters.bytes_received += size
        self.meter.received(size)
        self._traffic()
        if self.connection_id is None or self.closing_reason is not None:
            return
        if size > conf.get("NP_WS_MAX_MESSAGE_BYTES"):
            await self._send_error(
                "MESSAGE_TOO_LARGE",
                f"frames are limited to {conf.get('NP_WS_MAX_MESSAGE_BYTES')} bytes",
            )
            return
        try:
            # strict: a deeply nested frame was a RecursionError that closed the socket (1011)
            frame = jsonparse.loads(raw)
        except (ValueError, UnicodeDecodeError):
            await self._send_error("INVALID_JSON", "frames must be JSON objects")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._send_error("INVALID_FRAME", "frames need a string 'type'")
            return
        handler = {
            "subscribe": self._on_subscribe,
            "unsubscribe": self._on_unsubscribe,
            "ack": self._on_ack,
            "ping": self._on_ping,
            "pong": self._on_pong,
            "hello": self._on_hello,
            "preferences": self._on_preferences,
        }.get(frame["type"])
        if handler is None:
            await self._send_error("UNKNOWN_TYPE", f"unknown frame type {frame['type']!r}")
            return
        try:
            await handler(frame)
        except RealtimeError as exc:
            await self._send_error(exc.code, exc.message, field=exc.field)
