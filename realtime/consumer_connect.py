"""Opening a connection (the steps of ``realtime.consumers.EventsConsumer.connect``).

Accept first: daphne drops a handshake the application has not accepted within its
``websocket_connect_timeout``, and the row's writes can queue under load. The groups are
joined before the position is read, and live events are buffered until the
``connected`` frame (and any connect-time replay) is out, so nothing falls between them.
A new connection's row is written in one INSERT with the others opening at the same
time (``Hub.open_connection``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from . import client_info, conf, groups
from .consumer_base import CLOSE_AUTH_FAILED, PROTOCOL_VERSION, ConsumerBase
from .errors import RealtimeError
from .wire import WireWriter, apply_frame_limit


@dataclass
class ConnectRequest:
    """What the handshake asked for (the URL's parameters, headers and peer)."""

    since: int | None
    topics: list[str]
    errors: list[RealtimeError]  # bad parameters, reported once connected
    prefs_error: RealtimeError | None
    reconnect: int
    protocol: str
    headers: dict[bytes, bytes]
    client_ip: str
    session_id: str


class ConnectSteps(ConsumerBase):
    async def _refuse_token(self) -> None:
        """A bad API token: accept, say why, close with ``CLOSE_AUTH_FAILED``."""
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

    def _read_request(self) -> ConnectRequest:
        """The user, heartbeat, batch and preferences of the connect URL (set on the
        connection) and the rest of what the handshake asked for."""
        user = self.scope.get("user")
        self.user_id = str(user.pk) if user is not None and user.is_authenticated else None
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        interval = _int_param(query, "heartbeat") or conf.get("NP_WS_HEARTBEAT_INTERVAL")
        self.heartbeat_interval = max(
            conf.get("NP_WS_HEARTBEAT_MIN"), min(conf.get("NP_WS_HEARTBEAT_MAX"), interval)
        )
        reconnect = max(0, _int_param(query, "reconnect") or 0)
        self.batch_frames = _truthy((query.get("batch") or [""])[0])
        prefs_error = self._connect_preferences(query)
        protocol = (query.get("protocol") or query.get("v") or [PROTOCOL_VERSION])[0]
        client = self.scope.get("client") or ("0.0.0.0", 0)  # noqa: S104 - unix sockets
        since, topics, errors = _connect_params(query)
        return ConnectRequest(
            since=since,
            topics=topics,
            errors=errors,
            prefs_error=prefs_error,
            reconnect=reconnect,
            protocol=protocol,
            headers=dict(self.scope.get("headers", [])),
            client_ip=client[0],
            session_id=self._session_id(),
        )

    def _session_id(self) -> str:
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if self.scope.get("np_api_token_id"):
            return f"token:{self.scope['np_api_token_id']}"
        return session_key or ("anonymous" if self.user_id is None else "session")

    async def _accept_handshake(self, request: ConnectRequest) -> dict[str, Any]:
        """Accept, and set up the send path; the row's client columns."""
        client_info.offer_compression(_unwrapped_send(self.base_send))
        await self.accept()
        self._raw_send = _unwrapped_send(self.base_send)
        # client frames over NP_WS_MAX_FRAME_BYTES: close 1009, not a dropped connection
        apply_frame_limit(self._raw_send, conf.get("NP_WS_MAX_FRAME_BYTES"))
        # events go out as ready frames through the socket when the server is daphne
        # (realtime.wire); every other frame keeps the ASGI path
        self._wire = WireWriter.for_send(self._raw_send)
        return self._client_fields(request.headers)

    async def _open_connection(self, request: ConnectRequest, client_fields: dict[str, Any]) -> int:
        """Join the user's and the URL's topics' groups, write the row; the committed
        sequence position read after joining."""
        hub_channel = await self.hub.start()
        self.channel_name = f"{hub_channel}.{uuid.uuid4().hex[:16]}"
        # buffer live events until the connected (and subscribed) frames are out
        self.replays += 1
        if request.since is not None:
            self.replays += 1  # ... and until the replay is done
        if self.user_id is not None:
            await self._join(groups.user_group(self.user_id))
        for topic in request.topics:
            for name in groups.topic_groups(topic, authenticated=self.user_id is not None):
                await self._join(name)
        connection_id, position = await self.hub.open_connection(
            dict(
                user_id=self.user_id,
                session_id=request.session_id,
                socket_id=self.channel_name,
                client_ip=request.client_ip,
                user_agent=request.headers.get(b"user-agent", b"").decode("latin-1")[:1000],
                protocol_version=request.protocol,
                heartbeat_interval=self.heartbeat_interval,
                reconnect_count=request.reconnect,
                topics=request.topics,
                **client_fields,
            )
        )
        self.connection_id = connection_id
        self.topics.update(request.topics)
        self.hub.owe(self.hub_groups, position)
        return position

    async def _send_connected(self, position: int) -> None:
        """Start the heartbeat and say ``connected``."""
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

    async def _report_connect_errors(self, request: ConnectRequest) -> None:
        """The connect URL's bad parameters, as the same frames a bad subscribe, hello
        or preferences frame gets."""
        if request.prefs_error is not None:
            error = request.prefs_error
            await self._send_error(error.code, error.message, field=error.field)
        for error in request.errors:
            await self._send_error(error.code, error.message, field=error.field)

    async def _start_streams(self, request: ConnectRequest, position: int) -> None:
        """Subscribe (and replay) from the first instant, or resend what a reconnecting
        user has not acknowledged; then release the live events buffered meanwhile."""
        if request.since is not None or request.topics:
            # ?topics=a,b&since=N: no live event can overtake the replay
            await self._subscribe(
                request.topics, request.since, resend_private=True, joined_position=position
            )
        elif self.user_id is not None:
            await self._resend_pending_acks(topics=[], include_private=True)
        await self._replay_done()  # the connect-time buffer


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
