"""Per-connection preferences and client information (a part of
``realtime.consumers.EventsConsumer``; the rules are in ``realtime.preferences`` and
``realtime.client_info``)."""

from __future__ import annotations

from typing import Any

from . import client_info, preferences
from .consumer_base import ConsumerBase, _db
from .errors import RealtimeError
from .services.connections import ConnectionCounters


class Preferences(ConsumerBase):
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

    def _with_bandwidth(self, counters: ConnectionCounters) -> ConnectionCounters:
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
