"""Frames from the client (a part of ``realtime.consumers.EventsConsumer``, whose
``receive`` dispatches them here): heartbeats, ``hello``, ``subscribe`` (with its replay
from the database) and ``unsubscribe``. How a replay and live events merge: see the
design notes in ``realtime.consumers``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.utils import timezone

from . import conf, groups, preferences, selectors, services
from .consumer_base import ConsumerBase, _db
from .errors import RealtimeError

logger = logging.getLogger("realtime.consumers")


def _subscriptions_and_position(connection_id: Any, topics: set[str]) -> int:
    services.connection_set_subscriptions(connection_id=connection_id, topics=topics)
    return selectors.sequence_latest_committed()


class ClientFrames(ConsumerBase):
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
