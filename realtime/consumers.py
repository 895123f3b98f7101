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
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone

from notifyplatform import jsonparse

from . import client_info, conf, groups, preferences, selectors, services
from .errors import RealtimeError
from .hub import get_hub
from .wire import WireWriter, apply_frame_limit

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = "1.0"
CLOSE_AUTH_FAILED = 4401
CLOSE_HEARTBEAT_TIMEOUT = 4408
CLOSE_TOO_MANY_ERRORS = 4400
RECENT_SEQ_WINDOW = 10_000  # sequence numbers remembered for de-duplication

CLOSE_REASONS = {
    1000: "client_closed",
    1001: "client_going_away",
    1006: "connection_lost",
    CLOSE_AUTH_FAILED: "auth_failed",
    CLOSE_HEARTBEAT_TIMEOUT: "heartbeat_timeout",
    CLOSE_TOO_MANY_ERRORS: "too_many_errors",
}


def _db(func: Any) -> Any:
    # Not thread-sensitive: Channels' default runs every consumer's queries on ONE
    # thread, so a few hundred clients connecting at once queue behind each other for
    # longer than daphne's 5 s handshake timeout. No call here spans a transaction.
    return database_sync_to_async(func, thread_sensitive=False)


def _subscriptions_and_position(connection_id: Any, topics: set[str]) -> int:
    services.connection_set_subscriptions(connection_id=connection_id, topics=topics)
    return selectors.sequence_latest_committed()


def _connect_params(
    query: dict[str, list[str]],
) -> tuple[int | None, list[str], list[RealtimeError]]:
    """``since`` and ``topics`` of the connect URL, validated like a ``subscribe`` frame's
    (and ``batch`` like a ``hello`` frame's): a bad one is left out and reported as the
    same error frame once connected."""
    errors: list[RealtimeError] = []
    since: int | None = None
    if "since" in query:
        raw = (query["since"] or [""])[0]
        if raw.isdigit():
            since = int(raw)
        else:
            errors.append(
                RealtimeError("INVALID_SINCE", "since must be a non-negative integer", "since")
            )
    topics: list[str] = []
    if "topics" in query:
        try:
            topics = groups.normalise_topics(t for t in query["topics"][0].split(",") if t)
        except ValueError as exc:
            errors.append(RealtimeError("INVALID_TOPIC", str(exc), "topics"))
            topics = []
        if len(topics) > conf.get("NP_WS_MAX_TOPICS"):
            errors.append(
                RealtimeError(
                    "TOO_MANY_TOPICS", f"at most {conf.get('NP_WS_MAX_TOPICS')} topics", "topics"
                )
            )
            topics = []
    if "batch" in query and (query["batch"] or [""])[0].lower() not in _BATCH_VALUES:
        errors.append(RealtimeError("INVALID_BATCH", "batch must be true or false", "batch"))
    return since, topics, errors


_BATCH_VALUES = ("1", "true", "yes", "on", "0", "false", "no", "off", "")


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    try:
        return int(query[name][0])
    except (KeyError, ValueError, IndexError):
        return None


@dataclass
class PendingAck:
    seq: int
    text: str
    nbytes: int
    timeout: float
    due: float


def _unwrapped_send(send: Any) -> Any:
    """The server's own ``send`` under Channels' session middleware wrappers: they only
    act on ``http.response.start`` (saving the session, setting its cookie) yet cost a
    few lazy-object look-ups on every websocket frame, which adds up at 1,000 frames per
    event. Falls back to ``send`` itself if the wrapper changes shape."""
    seen = 0
    while seen < 5 and callable(getattr(getattr(send, "__self__", None), "real_send", None)):
        send = send.__self__.real_send
        seen += 1
    return send


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


class EventsConsumer(AsyncWebsocketConsumer):
    # No per-consumer channel-layer channel: group messages come through the process's
    # hub (an alias that is not configured makes Channels skip the layer entirely).
    channel_layer_alias = "realtime-hub-no-consumer-channel"

    # --- life cycle -------------------------------------------------------------------

    async def connect(self) -> None:
        self.hub = get_hub()
        self.hub_groups: set[str] = set()
        self.batch_frames = False
        self.channel_name = ""
        self.connection_id: uuid.UUID | None = None
        self._raw_send = self.base_send
        self._wire: WireWriter | None = None
        self.closing_reason: str | None = None
        self.topics: set[str] = set()
        self.sent_seqs: OrderedDict[int, None] = OrderedDict()
        self.last_seq = 0  # events go out in increasing sequence order only
        self.pending_acks: dict[str, PendingAck] = {}
        self.replays = 0  # replays in progress; live events are buffered meanwhile
        self.replay_lock = asyncio.Lock()
        self.live_buffer: list[dict[str, Any]] = []
        self.private_replayed = False
        self.counters = services.ConnectionCounters()
        self.unflushed = 0
        self.first_unflushed_at: float | None = None
        self.wakeup = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.timer_task: asyncio.Task[Any] | None = None
        self._client_init()

        if self.scope.get("np_auth_error"):
            await self.accept()
            await self._send_frame(
                {
                    "type": "error",
                    "code": "AUTH_FAILED",
                    "message": "invalid, expired or revoked API token",
                }
            )
            self.closing_reason = "auth_failed"
            await self.close(code=CLOSE_AUTH_FAILED)
            return

        user = self.scope.get("user")
        self.user_id: str | None = (
            str(user.pk) if user is not None and user.is_authenticated else None
        )
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        interval = _int_param(query, "heartbeat") or conf.get("NP_WS_HEARTBEAT_INTERVAL")
        self.heartbeat_interval = max(
            conf.get("NP_WS_HEARTBEAT_MIN"), min(conf.get("NP_WS_HEARTBEAT_MAX"), interval)
        )
        reconnect = max(0, _int_param(query, "reconnect") or 0)
        self.batch_frames = _truthy((query.get("batch") or [""])[0])
        prefs_error = self._connect_preferences(query)
        protocol = (query.get("protocol") or query.get("v") or [PROTOCOL_VERSION])[0]
        headers = dict(self.scope.get("headers", []))
        client = self.scope.get("client") or ("0.0.0.0", 0)  # noqa: S104 - unix sockets
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        if self.scope.get("np_api_token_id"):
            session_id = f"token:{self.scope['np_api_token_id']}"
        else:
            session_id = session_key or ("anonymous" if self.user_id is None else "session")

        since, connect_topics, connect_errors = _connect_params(query)
        # accept first: daphne drops a handshake the application has not accepted within
        # its websocket_connect_timeout, and the row's writes can queue under load
        client_info.offer_compression(_unwrapped_send(self.base_send))
        await self.accept()
        self._raw_send = _unwrapped_send(self.base_send)
        # client frames over NP_WS_MAX_FRAME_BYTES: close 1009, not a dropped connection
        apply_frame_limit(self._raw_send, conf.get("NP_WS_MAX_FRAME_BYTES"))
        # events go out as ready frames through the socket when the server is daphne
        # (realtime.wire); every other frame keeps the ASGI path
        self._wire = WireWriter.for_send(self._raw_send)
        client_fields = self._client_fields(headers)
        hub_channel = await self.hub.start()
        self.channel_name = f"{hub_channel}.{uuid.uuid4().hex[:16]}"
        # buffer live events until the connected (and subscribed) frames are out; the
        # groups are joined before the position is read so nothing falls between them
        self.replays += 1
        if since is not None:
            self.replays += 1  # ... and until the replay below is done
        if self.user_id is not None:
            await self._join(groups.user_group(self.user_id))
        for topic in connect_topics:
            for name in groups.topic_groups(topic, authenticated=self.user_id is not None):
                await self._join(name)
        connection_id, position = await self.hub.open_connection(
            dict(
                user_id=self.user_id,
                session_id=session_id,
                socket_id=self.channel_name,
                client_ip=client[0],
                user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:1000],
                protocol_version=protocol,
                heartbeat_interval=self.heartbeat_interval,
                reconnect_count=reconnect,
                topics=connect_topics,
                **client_fields,
            )
        )
        self.connection_id = connection_id
        self.topics.update(connect_topics)
        self.hub.owe(self.hub_groups, position)

        now = time.monotonic()
        self.last_pong = now
        self.unanswered_pings = 0
        self.next_ping = now + self.heartbeat_interval
        await self._send_frame(
            {
                "type": "connected",
                "connection_id": str(self.connection_id),
                "user_id": self.user_id,
                "authenticated": self.user_id is not None,
                "protocol": PROTOCOL_VERSION,
                "heartbeat_interval": self.heartbeat_interval,
                "position": position,
                "batch": self.batch_frames,
                "preferences": self.prefs.as_json(),
                "compression": self.compressed,
            }
        )
        self.timer_task = asyncio.create_task(self._timers())
        if prefs_error is not None:
            await self._send_error(prefs_error.code, prefs_error.message, field=prefs_error.field)
        for error in connect_errors:  # the same frames as a bad subscribe/hello frame
            await self._send_error(error.code, error.message, field=error.field)
        if since is not None or connect_topics:
            # ?topics=a,b&since=N: subscribe (and replay) from the first instant, so
            # no live event can overtake the replay
            await self._subscribe(
                connect_topics, since, resend_private=True, joined_position=position
            )
        elif self.user_id is not None:
            # a reconnecting user gets their unacknowledged private events again
            await self._resend_pending_acks(topics=[], include_private=True)
        await self._replay_done()  # the connect-time buffer

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
        hub_groups = getattr(self, "hub_groups", set())
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

    def hub_acked(self, event_id: str) -> None:
        """Acknowledged on another connection of this user (any server process)."""
        self.pending_acks.pop(event_id, None)

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

    def _track_ack(
        self, event_id: str, seq: int, text: str, nbytes: int | None, timeout: float
    ) -> None:
        if event_id in self.pending_acks:
            return
        if len(self.pending_acks) >= conf.get("NP_WS_MAX_PENDING_ACKS"):
            return  # the rest are re-sent on the next connection
        self.pending_acks[event_id] = PendingAck(
            seq=seq,
            text=text,
            nbytes=nbytes if nbytes is not None else len(text.encode()),
            timeout=float(timeout),
            due=time.monotonic() + float(timeout),
        )
        self.wakeup.set()

    async def _resend_pending_acks(self, *, topics: list[str], include_private: bool) -> None:
        events = await _db(selectors.event_list_pending_ack)(
            user_id=self.user_id, topics=topics, include_private=include_private
        )
        for event in events:
            if str(event.id) in self.pending_acks or not self.prefs.wants_event(event):
                continue
            text = services.event_text(event)
            message = services.layer_message(event, text)
            self._remember(event.sequence_number)
            await self._send_text(text, message["n"])
            self._track_ack(
                message["id"], event.sequence_number, text, message["n"], message["ack"]
            )

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

    def _heartbeat_seen(self) -> None:
        self.last_pong = time.monotonic()
        self.unanswered_pings = 0
        self.counters.last_heartbeat = timezone.now()
        self.hub.mark_dirty(self)  # the hub writes last_heartbeat with the counters

    async def _on_pong(self, frame: dict[str, Any]) -> None:
        self._heartbeat_seen()

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        self._heartbeat_seen()
        await self._send_frame({"type": "pong", "ts": int(time.time() * 1000)})

    async def _on_hello(self, frame: dict[str, Any]) -> None:
        reconnect = frame.get("reconnect")
        protocol = frame.get("protocol")
        if reconnect is not None and (not isinstance(reconnect, int) or reconnect < 0):
            raise RealtimeError(
                "INVALID_RECONNECT", "reconnect must be a non-negative integer", "reconnect"
            )
        if protocol is not None and not isinstance(protocol, str):
            raise RealtimeError("INVALID_PROTOCOL", "protocol must be a string", "protocol")
        batch = frame.get("batch")
        if batch is not None and not isinstance(batch, bool):
            raise RealtimeError("INVALID_BATCH", "batch must be true or false", "batch")
        prefs = frame.get("preferences")
        if prefs is not None and not isinstance(prefs, dict):
            raise RealtimeError(
                preferences.ERROR_CODE, "preferences: must be an object", "preferences"
            )
        if prefs is not None or batch is not None:
            raw = dict(prefs or {})
            if batch is not None:  # ``batch`` is the ``coalesce`` preference
                raw.setdefault("coalesce", batch)
            await self._set_preferences(raw, reply=prefs is not None)
        await _db(services.connection_update_client)(
            connection_id=self.connection_id, reconnect_count=reconnect, protocol_version=protocol
        )

    def _topics_of(self, frame: dict[str, Any]) -> list[str]:
        topics = frame.get("topics", [])
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list):
            raise RealtimeError("INVALID_TOPIC", "topics must be a list of names", "topics")
        try:
            return groups.normalise_topics(topics)
        except ValueError as exc:
            raise RealtimeError("INVALID_TOPIC", str(exc), "topics") from exc

    async def _on_subscribe(self, frame: dict[str, Any]) -> None:
        topics = self._topics_of(frame)
        since = frame.get("since")
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int) or since < 0
        ):
            raise RealtimeError("INVALID_SINCE", "since must be a non-negative integer", "since")
        if since is not None:
            # buffer live events from now on: joining the groups before reading the
            # database means no event can fall between the replay and live delivery
            self.replays += 1
        await self._subscribe(topics, since)

    async def _subscribe(
        self,
        topics: list[str],
        since: int | None,
        resend_private: bool = False,
        joined_position: int | None = None,
    ) -> None:
        """Join ``topics``; with ``since`` (the caller has already counted the replay
        in ``self.replays``) replay what the client missed in a task of its own.
        ``joined_position``: the topics are already joined and recorded (at connect)
        and this was the position then."""
        authenticated = self.user_id is not None
        if joined_position is not None:
            new = topics
            position = joined_position
        else:
            new, position = await self._join_topics(topics, since)
        if since is None:
            await self._send_frame(
                {"type": "subscribed", "topics": topics, "position": position, "replayed": 0}
            )
            if authenticated and (new or resend_private):
                await self._resend_pending_acks(topics=new, include_private=resend_private)
            return
        task = asyncio.create_task(self._replay(topics, new, since, resend_private))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _join_topics(self, topics: list[str], since: int | None) -> tuple[list[str], int]:
        """Join the groups of the topics not joined yet and record the subscriptions;
        returns those topics and the position after joining."""
        try:
            new = [t for t in topics if t not in self.topics]
            if len(self.topics) + len(new) > conf.get("NP_WS_MAX_TOPICS"):
                raise RealtimeError(
                    "TOO_MANY_TOPICS", f"at most {conf.get('NP_WS_MAX_TOPICS')} topics", "topics"
                )
            authenticated = self.user_id is not None
            for topic in new:
                for name in groups.topic_groups(topic, authenticated=authenticated):
                    await self._join(name)
            self.topics.update(new)
            position = await _db(_subscriptions_and_position)(self.connection_id, set(self.topics))
            self.hub.owe(
                [n for t in new for n in groups.topic_groups(t, authenticated=authenticated)],
                position,
            )
        except BaseException:
            if since is not None:
                await self._replay_done()
            raise
        return new, position

    async def _replay(
        self, topics: list[str], new: list[str], since: int, resend_private: bool
    ) -> None:
        try:
            async with self.replay_lock:
                await self._replay_locked(topics, since)
                if self.user_id is not None and (new or resend_private):
                    await self._resend_pending_acks(topics=new, include_private=resend_private)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("replay failed on %s", self.connection_id)
            await self._send_error("REPLAY_FAILED", f"{type(exc).__name__}")
        finally:
            await self._replay_done()

    async def _replay_done(self) -> None:
        self.replays -= 1
        if not self.replays:
            buffered = self.live_buffer
            self.live_buffer = []
            await self._deliver_all(buffered)

    async def _replay_locked(self, topics: list[str], since: int) -> None:
        limit = conf.get("NP_REPLAY_MAX_EVENTS")
        include_private = self.user_id is not None and not self.private_replayed
        oldest = await _db(selectors.sequence_oldest_retained)()
        if oldest - 1 > since:
            await self._recovery_failed(topics, since, oldest, "BEYOND_RETENTION")
            return
        events = await _db(selectors.event_messages_since)(
            user_id=self.user_id,
            topics=topics,
            include_private=include_private,
            since=since,
            limit=limit + 1,
        )
        if len(events) > limit:
            await self._recovery_failed(topics, since, oldest, "TOO_MANY_EVENTS")
            return
        if include_private:
            self.private_replayed = True
        replayed = 0
        position = since
        messages = []
        for message in events:
            position = message["seq"]
            if position not in self.sent_seqs and self.prefs.wants(message):
                messages.append(message)
                replayed += 1
        # wait until the hub has handed over every live event up to the end of the
        # replay (other topics, the private stream: they are buffered meanwhile), then
        # interleave them so the client sees one increasing sequence and nothing live
        # below the replay's end comes after it; _deliver_all drops the duplicates
        latest = await _db(selectors.sequence_latest_committed)()
        if not await self.hub.settle(max(position, latest)):
            logger.warning("replay on %s: live events not settled in time", self.connection_id)
        messages.extend(self.live_buffer)
        self.live_buffer = []
        await self._deliver_all(messages)
        await self._send_frame(
            {
                "type": "subscribed",
                "topics": topics,
                "position": max(position, latest),
                "replayed": replayed,
            }
        )

    async def _recovery_failed(
        self, topics: list[str], since: int, oldest: int, reason: str
    ) -> None:
        position = await _db(selectors.sequence_latest_committed)()
        await self._send_frame(
            {
                "type": "recovery_failed",
                "topics": topics,
                "since": since,
                "reason": reason,
                "oldest_sequence": oldest,
                "position": position,
                "message": "events after this position are no longer available; reload state",
            }
        )
        await self._send_frame(
            {"type": "subscribed", "topics": topics, "position": position, "replayed": 0}
        )

    async def _on_unsubscribe(self, frame: dict[str, Any]) -> None:
        topics = self._topics_of(frame)
        gone = [t for t in topics if t in self.topics]
        for topic in gone:
            for name in groups.topic_groups(topic, authenticated=self.user_id is not None):
                await self._leave(name)
            self.topics.discard(topic)
        if gone:
            await _db(services.connection_set_subscriptions)(
                connection_id=self.connection_id, topics=self.topics
            )
        await self._send_frame({"type": "unsubscribed", "topics": topics})

    async def _on_ack(self, frame: dict[str, Any]) -> None:
        event_id = frame.get("event_id")
        if self.user_id is None:
            raise RealtimeError("AUTH_REQUIRED", "anonymous clients cannot acknowledge", "event_id")
        try:
            event_id = str(uuid.UUID(str(event_id)))
        except ValueError as exc:
            raise RealtimeError(
                "INVALID_EVENT_ID", "event_id must be an event's id", "event_id"
            ) from exc
        result = await _db(services.event_acknowledge)(event_id=event_id, user_id=self.user_id)
        self.pending_acks.pop(event_id, None)
        # the user's other connections, on every server process, stop resending it
        await self.hub.send_ack(groups.user_group(self.user_id), event_id)
        await self._send_frame(
            {"type": "acked", "event_id": event_id, "duplicate": not result.created}
        )

    # --- preferences and client info (realtime.preferences, realtime.client_info) -----

    def _client_init(self) -> None:
        self.prefs = preferences.DEFAULT
        self.throttle = preferences.Throttle(self._send_events)
        self.meter = client_info.BandwidthMeter()
        self.compressed = False

    def _connect_preferences(self, query: dict[str, list[str]]) -> RealtimeError | None:
        """The connect URL's preferences; an invalid one is reported once connected and
        the connection keeps the defaults (with ``?batch=1`` honoured)."""
        try:
            self._apply_preferences(preferences.from_query(query, batch=self.batch_frames))
        except RealtimeError as exc:
            self._apply_preferences(preferences.parse({"coalesce": self.batch_frames}))
            return exc
        return None

    def _apply_preferences(self, prefs: preferences.Preferences) -> None:
        self.prefs = prefs
        self.batch_frames = prefs.coalesce
        self.throttle.configure(prefs)

    def _client_fields(self, headers: dict[bytes, bytes]) -> dict[str, Any]:
        """The row's client columns, once the handshake is accepted."""
        self.compressed = client_info.compression_negotiated(self._raw_send)
        if self.compressed:
            # ready-made frames bypass autobahn, which compresses what it sends
            self._wire = None
        peer = client_info.transport_peer(self._raw_send, self.scope)
        return {
            "user_preferences": self.prefs.as_json(),
            "compression_enabled": self.compressed,
            "geo_location": client_info.geo_location(headers, peer),
        }

    def _with_bandwidth(self, counters: services.ConnectionCounters) -> services.ConnectionCounters:
        counters.bandwidth_usage = self.meter.take()
        return counters

    async def _offer_events(self, messages: list[dict[str, Any]]) -> None:
        """Send accepted events, through the rate limit when the client set one."""
        if self.throttle.active or self.throttle.held:
            await self.throttle.offer(messages)
        else:
            await self._send_events(messages)

    async def _set_preferences(self, raw: Any, *, reply: bool = True) -> None:
        prefs = preferences.parse(raw, self.prefs)
        if self.throttle.held:
            await self.throttle.flush()  # what is held goes out under the old rules
        self._apply_preferences(prefs)
        await _db(preferences.connection_set_preferences)(
            connection_id=self.connection_id, preferences=prefs
        )
        if reply:
            await self._send_frame({"type": "preferences", "preferences": prefs.as_json()})

    async def _on_preferences(self, frame: dict[str, Any]) -> None:
        await self._set_preferences({k: v for k, v in frame.items() if k != "type"})
