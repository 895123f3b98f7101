"""What the parts of the ``ws/v1/events/`` consumer (``realtime.consumers``) share: the
connection's state, the close codes, and the database hop they all use."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

if TYPE_CHECKING:
    import uuid

    from . import client_info, preferences
    from .errors import RealtimeError
    from .hub import Hub
    from .services.connections import ConnectionCounters
    from .wire import WireWriter

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


def _db(func: Callable[..., Any]) -> Any:
    # Not thread-sensitive: Channels' default runs every consumer's queries on ONE
    # thread, so a few hundred clients connecting at once queue behind each other for
    # longer than daphne's 5 s handshake timeout. No call here spans a transaction.
    return database_sync_to_async(func, thread_sensitive=False)


@dataclass
class PendingAck:
    seq: int
    text: str
    nbytes: int
    timeout: float
    due: float


class ConsumerBase(AsyncWebsocketConsumer):
    """The state of one connection (set in ``EventsConsumer.connect``) and the methods
    every part of the consumer calls, declared for the type checker."""

    hub: Hub
    hub_groups: set[str]
    batch_frames: bool
    connection_id: uuid.UUID | None
    user_id: str | None
    closing_reason: str | None
    topics: set[str]
    sent_seqs: OrderedDict[int, None]
    last_seq: int
    pending_acks: dict[str, PendingAck]
    replays: int  # replays in progress (and the connect itself); live events are buffered
    replay_lock: asyncio.Lock
    live_buffer: list[dict[str, Any]]
    private_replayed: bool
    counters: ConnectionCounters
    wakeup: asyncio.Event
    tasks: set[asyncio.Task[Any]]
    timer_task: asyncio.Task[Any] | None
    unflushed: int
    first_unflushed_at: float | None
    heartbeat_interval: int
    last_pong: float
    unanswered_pings: int
    next_ping: float
    prefs: preferences.Preferences
    throttle: preferences.Throttle
    meter: client_info.BandwidthMeter
    compressed: bool
    _raw_send: Any
    _wire: WireWriter | None

    if TYPE_CHECKING:

        async def _send_text(self, text: str, nbytes: int | None = None) -> None: ...
        async def _send_events(self, messages: list[dict[str, Any]]) -> None: ...
        async def _send_frame(self, frame: dict[str, Any]) -> None: ...
        async def _send_error(self, code: str, message: str, **extra: Any) -> None: ...
        async def _join(self, group: str) -> None: ...
        async def _leave(self, group: str) -> None: ...
        def _remember(self, seq: int) -> None: ...
        async def _deliver_all(self, messages: list[dict[str, Any]]) -> None: ...
        def _track_ack(
            self, event_id: str, seq: int, text: str, nbytes: int | None, timeout: float
        ) -> None: ...
        async def _resend_pending_acks(
            self, *, topics: list[str], include_private: bool
        ) -> None: ...
        async def _replay_done(self) -> None: ...
        async def _subscribe(
            self,
            topics: list[str],
            since: int | None,
            resend_private: bool = False,
            joined_position: int | None = None,
        ) -> None: ...
        def _connect_preferences(self, query: dict[str, list[str]]) -> RealtimeError | None: ...
        def _client_fields(self, headers: dict[bytes, bytes]) -> dict[str, Any]: ...
        async def _set_preferences(self, raw: Any, *, reply: bool = True) -> None: ...
