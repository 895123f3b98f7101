"""Fan-out: after commit, an event's ready layer message goes to the channel-layer groups
its visibility allows (``realtime.groups``), from one event loop per process, and the
row records ``published_at`` and the per-group ``delivery_status``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.utils import timezone

from notifyplatform.aio import LoopThread

from .. import groups
from ..models import RealTimeEvent, Visibility
from ..wire import event_text, layer_message
from .connections import _relaxed_commit

logger = logging.getLogger(__name__)
T = TypeVar("T")


def event_groups(event: RealTimeEvent) -> list[str]:
    """The channel-layer groups an event's visibility allows."""
    if event.visibility == Visibility.PUBLIC:
        return [groups.public_group(t) for t in event.broadcast_channels or []]
    if event.visibility == Visibility.AUTHENTICATED:
        return [groups.auth_group(t) for t in event.broadcast_channels or []]
    if event.visibility == Visibility.PRIVATE:
        return [groups.user_group(event.user_id)] if event.user_id else []
    return [groups.user_group(uid) for uid in event.target_audience or []]


# One event loop thread per process for the after-commit sends. ``async_to_sync`` from a
# plain thread builds a new event loop per call, and channels_redis keeps its connections
# per loop, so every publish paid for a fresh Redis connection; a loop that lives as long
# as the process keeps one pool warm.
_publisher = LoopThread("realtime-publisher")


def _run_in_publisher_loop(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code (a test, a consumer): the caller's own loop
        coro.close()
        raise RuntimeError("fan_out must be called from synchronous code")
    return _publisher.submit(coro).result()


async def _send_to_groups(group_names: Sequence[str], message: dict[str, Any]) -> dict[str, Any]:
    layer = get_channel_layer()
    status: dict[str, Any] = {}
    for name in group_names:
        try:
            # the group travels with the message: a server process is one member of
            # many groups and hands each copy to that group's consumers (realtime.hub)
            await layer.group_send(name, {**message, "group": name})
            status[name] = {"status": "sent"}
        except Exception as exc:  # noqa: BLE001 - recorded on the event, replay covers it
            logger.warning("group_send to %s failed: %s", name, exc)
            status[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}
    return status


def fan_out(event: RealTimeEvent, text: str | None = None) -> dict[str, Any]:
    """Send a committed event to its groups and record ``published_at`` and the
    per-group ``delivery_status``. A failed send loses nothing: the row stays
    replayable by sequence number."""
    text = text if text is not None else event_text(event)
    names = event_groups(event)
    status = (
        _run_in_publisher_loop(_send_many([(names, layer_message(event, text))]))[0]
        if names
        else {}
    )
    published_at = timezone.now()
    with transaction.atomic():
        # bookkeeping on a row that is already durable: no need to wait for the WAL flush
        _relaxed_commit()
        RealTimeEvent.objects.filter(pk=event.pk).update(
            published_at=published_at, delivery_status={"channel_layer": status}
        )
    event.published_at = published_at
    event.delivery_status = {"channel_layer": status}
    return status


async def _groups_with_members(names: Iterable[str]) -> set[str] | None:
    """Which of these groups have a member right now, asked in one pipelined round trip
    per Redis host (expired memberships dropped first, as ``group_send`` does); None when
    the layer is not channels_redis' or Redis could not answer (then every group is sent
    to, and ``group_send`` records what fails)."""
    from channels_redis.core import RedisChannelLayer

    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        return None
    by_host: dict[int, list[str]] = {}
    for name in names:
        by_host.setdefault(layer.consistent_hash(name), []).append(name)
    found: set[str] = set()
    try:
        for index, host_names in by_host.items():
            pipe = layer.connection(index).pipeline(transaction=False)
            expired = int(time.time()) - layer.group_expiry
            for name in host_names:
                key = layer._group_key(name)
                pipe.zremrangebyscore(key, min=0, max=expired)
                pipe.zcard(key)
            counts = (await pipe.execute())[1::2]
            found.update(name for name, count in zip(host_names, counts, strict=True) if count)
    except Exception as exc:  # noqa: BLE001 - fall back to sending to every group
        logger.warning("group membership lookup failed: %s", exc)
        return None
    return found


async def _send_many(sends: Sequence[tuple[list[str], dict[str, Any]]]) -> list[dict[str, Any]]:
    """``_send_to_groups`` for each (groups, message), in the order given, skipping the
    groups that have no member (an empty group's ``group_send`` costs two round trips to
    deliver nothing; most users of a big batch are not connected)."""
    live = await _groups_with_members({name for names, _ in sends for name in names})
    statuses: list[dict[str, Any]] = []
    for names, message in sends:
        targets = [n for n in names if live is None or n in live]
        if len(names) > 1:
            # an event of several groups: a server process checks it got every copy it
            # is owed (realtime.hub), so each copy names the others
            message = {**message, "also": names}
        sent = await _send_to_groups(targets, message) if targets else {}
        # a group nobody was in got nothing: not "sent" (a server process that lost its
        # membership, e.g. Redis restarted empty, fills the event from the database)
        statuses.append({n: sent.get(n, {"status": "no_members"}) for n in names})
    return statuses


def fan_out_many(
    events: Sequence[RealTimeEvent], texts: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """``fan_out`` for committed events, in the order given (``publish_many``'s sequence
    order, so each stream keeps its order): one hop to the publisher loop, one Redis round
    trip for the groups' membership, a ``group_send`` only to groups that have members,
    and ONE UPDATE recording ``published_at`` and ``delivery_status`` on every row."""
    if not events:
        return []
    if texts is None:
        texts = [event_text(event) for event in events]
    sends = [
        (event_groups(event), layer_message(event, text))
        for event, text in zip(events, texts, strict=True)
    ]
    statuses = _run_in_publisher_loop(_send_many(sends))
    published_at = timezone.now()
    records = []
    for event, status in zip(events, statuses, strict=True):
        event.published_at = published_at
        event.delivery_status = {"channel_layer": status}
        records.append({"id": str(event.pk), "status": event.delivery_status})
    with transaction.atomic(), connection.cursor() as cursor:
        # bookkeeping on rows that are already durable: no need to wait for the WAL flush
        _relaxed_commit()
        # ONE parameter, the group as a JSON array: a VALUES list of 2 placeholders per
        # row made psycopg split, adapt and quote 2,000 parameters in Python per group
        cursor.execute(
            """
            UPDATE real_time_events AS e
               SET published_at = %s, delivery_status = v.status
              FROM jsonb_to_recordset(%s::jsonb) AS v(id uuid, status jsonb)
             WHERE e.event_id = v.id
            """,
            [published_at, json.dumps(records)],
        )
    return statuses
