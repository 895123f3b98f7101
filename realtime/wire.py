"""Ready-made websocket frames written straight to a connection (the fan-out's write path).

Through ASGI, every frame to every subscriber goes Channels' send → daphne's
``handle_reply`` → autobahn's ``sendMessage``/``sendFrame`` (header built, a debug log
line's arguments formatted, traffic counted) → Twisted's ``transport.write``, which
only buffers and registers a writer, so the bytes leave on the next loop turn after two
``epoll_ctl`` calls (add the writer, remove it again). Profiled with py-spy at 20 events/s
to 1,000 subscribers, that path was most of the server's time (~40 µs per frame).

An event's frame is the same bytes for every subscriber, so the hub builds it once per
publish (``text_frame``) and each connection's ``WireWriter`` writes those bytes:
straight to the socket when nothing is queued in Twisted's buffer (as asyncio's own
transports do), else through ``transport.write`` behind what is queued, so order
is kept. Frames from the server are unmasked, and a plain text frame is valid whatever
extensions were negotiated (an uncompressed frame under permessage-deflate has RSV1 0).

``WireWriter.for_send`` returns None for any other server or transport (another ASGI
server, TLS terminated by daphne itself, a test's communicator): the caller then uses
the ordinary ASGI ``send``.

The event frames themselves are built here too: ``event_frame``/``event_text`` (the JSON
a client receives), ``layer_message`` (what travels through the channel layer) and
``replay_message`` (the same message spliced from a row read for a replay).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder

if TYPE_CHECKING:
    from .models import RealTimeEvent

EVENT_MESSAGE_TYPE = "rt.event"  # the channel-layer message type consumers handle


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class WireWriter:
    """Writes ready frames to one daphne websocket connection."""

    __slots__ = ("protocol", "open_state", "transport", "direct")

    def __init__(self, protocol: Any, open_state: int) -> None:
        self.protocol = protocol
        self.open_state = open_state
        self.transport = protocol.transport
        self.direct = _plain_tcp(self.transport)

    @classmethod
    def for_send(cls, send: Any) -> WireWriter | None:
        """The writer behind daphne's ASGI ``send`` (``partial(server.handle_reply,
        protocol)``), or None when ``send`` is anything else."""
        protocol = daphne_protocol(send)
        if protocol is None:
            return None
        from autobahn.websocket.protocol import WebSocketProtocol

        if getattr(protocol, "transport", None) is None or protocol.send_queue:
            return None
        return cls(protocol, WebSocketProtocol.STATE_OPEN)

    def write(self, frame: bytes) -> bool:
        """Write ``frame``; False (nothing written) once the websocket is closing or
        closed, as autobahn would refuse the send then."""
        protocol = self.protocol
        if protocol.state != self.open_state or protocol.send_queue:
            if protocol.state != self.open_state:
                return False
            protocol.sendData(frame)  # behind autobahn's own queue
            return True
        transport = self.transport
        if (
            self.direct
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
            and not transport._tempDataBuffer
            and len(transport.dataBuffer) == transport.offset
        ):
            try:
                sent = transport.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # Twisted's own write below notices the broken connection
            if sent == len(frame):
                return True
            frame = frame[sent:]
        transport.write(frame)
        return True


def daphne_protocol(send: Any) -> Any:
    """daphne's websocket protocol behind its ASGI ``send`` (``partial(server.handle_reply,
    protocol)``), or None when ``send`` is anything else."""
    try:
        from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol
    except ImportError:  # pragma: no cover - daphne is a dependency
        return None
    if not isinstance(send, functools.partial) or len(send.args) != 1:
        return None
    protocol = send.args[0]
    return protocol if isinstance(protocol, DaphneWebSocketProtocol) else None


def apply_frame_limit(send: Any, max_bytes: int) -> bool:
    """Make daphne's server (autobahn) refuse client messages over ``max_bytes`` with a
    close frame 1009 ("message too big") instead of dropping the TCP connection, which is
    what autobahn does by default (``failByDrop``) at daphne's own 1 MiB limit. Set on the
    connection and on its factory (so every later connection of the process has it, however
    daphne was started); False when the server is not daphne."""
    protocol = daphne_protocol(send)
    if protocol is None:
        return False
    options = {
        "maxMessagePayloadSize": max_bytes,
        "maxFramePayloadSize": max_bytes,
        "failByDrop": False,
    }
    for target in (protocol, getattr(protocol, "factory", None)):
        if target is None:
            continue
        for name, value in options.items():
            if getattr(target, name, None) != value:
                setattr(target, name, value)
    return True


def _plain_tcp(transport: Any) -> bool:
    """A Twisted TCP connection without TLS, whose buffer this module knows."""
    try:
        from twisted.internet.tcp import Connection
    except ImportError:  # pragma: no cover - Twisted is a dependency of daphne
        return False
    return (
        isinstance(transport, Connection)
        and not getattr(transport, "TLS", False)
        and hasattr(transport, "_tempDataBuffer")
        and hasattr(transport, "_writeDisconnected")
        and hasattr(transport, "dataBuffer")
        and hasattr(transport, "offset")
        and hasattr(transport, "socket")
    )


# --- event frames ---------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_frame(event: RealTimeEvent) -> dict[str, Any]:
    """The ``event`` frame a client receives. Never names other recipients
    (``target_audience`` stays on the server)."""
    return {
        "type": "event",
        "id": str(event.id),
        "seq": event.sequence_number,
        "event_type": event.event_type,
        "category": event.event_category,
        "visibility": event.visibility,
        "topics": list(event.broadcast_channels or []),
        "priority": event.priority,
        "data": event.event_data,
        "metadata": event.event_metadata,
        "auction_id": str(event.auction_id) if event.auction_id else None,
        "item_id": str(event.item_id) if event.item_id else None,
        "bid_id": str(event.bid_id) if event.bid_id else None,
        "correlation_id": event.correlation_id,
        "previous_event_id": str(event.previous_event_id) if event.previous_event_id else None,
        "generated_at": _iso(event.generated_at),
        "expires_at": _iso(event.expires_at),
        "ack_required": bool(event.ack_required),
        "ack_timeout": event.ack_timeout,
    }


def event_text(event: RealTimeEvent) -> str:
    return json.dumps(event_frame(event), cls=DjangoJSONEncoder, separators=(",", ":"))


def layer_message(event: RealTimeEvent, text: str) -> dict[str, Any]:
    """What travels through the channel layer: the ready frame plus what the consumer
    needs without parsing it (ordering, de-duplication, ack tracking, byte count, and
    the type, category, priority and topics a connection's preferences filter on)."""
    return {
        "type": EVENT_MESSAGE_TYPE,
        "text": text,
        "seq": event.sequence_number,
        "id": str(event.id),
        "ack": event.ack_timeout if event.ack_required else 0,
        "n": len(text.encode()),
        "et": event.event_type,
        "cat": event.event_category,
        "pri": event.priority,
        "tk": ",".join(event.broadcast_channels or []),
    }


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_REPLAY_FRAME = (
    '{"type":"event","id":"%s","seq":%d,"event_type":%s,"category":%s,"visibility":%s,'
    '"topics":%s,"priority":%s,"data":%s,"metadata":%s,"auction_id":%s,"item_id":%s,'
    '"bid_id":%s,"correlation_id":%s,"previous_event_id":%s,"generated_at":%s,'
    '"expires_at":%s,"ack_required":%s,"ack_timeout":%s}'
)


def _js(value: Any) -> str:
    return "null" if value is None else _encode(value)


def _js_id(value: Any) -> str:
    return _encode(str(value)) if value else "null"


@functools.lru_cache(maxsize=1024)
def _js_word(value: str | None) -> str:
    """``_js`` of a value from a small set (event type, category, visibility, priority),
    encoded once per process rather than once per replayed row."""
    return _js(value)


def _js_iso(value: str | None) -> str:
    """A timestamp's ISO text as a JSON string: it holds only digits, ``-:.+T``, so
    quoting is all the encoding it needs."""
    return "null" if value is None else f'"{value}"'


def _topics_csv(topics_json: str | None) -> str:
    """The comma-joined topic names of ``broadcast_channels``' jsonb text (``["a", "b"]``).
    Without a backslash in it no name holds a quote (jsonb escapes quotes and control
    characters), so the names are cut out of the text; anything else is decoded."""
    if not topics_json or topics_json == "[]":
        return ""
    if "\\" not in topics_json and topics_json.startswith('["') and topics_json.endswith('"]'):
        return topics_json[2:-2].replace('", "', ",")
    return ",".join(json.loads(topics_json))


def replay_message(row: Sequence[Any]) -> dict[str, Any]:
    """The layer message of an event row read for a replay
    (``selectors.REPLAY_ROW_FIELDS``). The frame has ``event_frame``'s keys and values;
    the JSON columns are the database's own text of them (same values, jsonb's key
    order and spacing), the id and timestamps the database's text as ``str()`` and
    ``_iso`` give them."""
    (
        event_id,
        seq,
        event_type,
        category,
        visibility,
        topics_json,
        priority,
        data_json,
        metadata_json,
        auction_id,
        item_id,
        bid_id,
        correlation_id,
        previous_event_id,
        generated_at,
        expires_at,
        ack_required,
        ack_timeout,
    ) = row
    text = _REPLAY_FRAME % (
        event_id,
        seq,
        _js_word(event_type),
        _js_word(category),
        _js_word(visibility),
        topics_json or "[]",
        _js_word(priority),
        data_json or "null",
        metadata_json or "null",
        _js_id(auction_id),
        _js_id(item_id),
        _js_id(bid_id),
        _js(correlation_id),
        _js_id(previous_event_id),
        _js_iso(generated_at),
        _js_iso(expires_at),
        "true" if ack_required else "false",
        _js(ack_timeout),
    )
    return {
        "type": EVENT_MESSAGE_TYPE,
        "text": text,
        "seq": seq,
        "id": event_id,
        "ack": ack_timeout if ack_required else 0,
        "n": len(text.encode()),
        "et": event_type,
        "cat": category,
        "pri": priority,
        "tk": _topics_csv(topics_json),
    }
