"""Acknowledgments on a connection (a part of ``realtime.consumers.EventsConsumer``).

Acks are per user: an ``ack_required`` event sent to a signed-in user is re-sent until
acknowledged; an ack is stored on the event and fanned out to the user's group, and every
connection of the user on every process drops it from its resend list (``hub_acked``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from . import conf, groups, selectors, services
from .consumer_base import ConsumerBase, PendingAck, _db
from .errors import RealtimeError
from .wire import event_text, layer_message


class Acks(ConsumerBase):
    def hub_acked(self, event_id: str) -> None:
        """Acknowledged on another connection of this user (any server process)."""
        self.pending_acks.pop(event_id, None)

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
            text = event_text(event)
            message = layer_message(event, text)
            self._remember(event.sequence_number)
            await self._send_text(text, message["n"])
            self._track_ack(
                message["id"], event.sequence_number, text, message["n"], message["ack"]
            )

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
