"""Order and gap fill of the per-process fan-out (``realtime.hub``; see "Ordering and
recovery" in the README's protocol section).

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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from . import groups
from .selectors import event_messages_by_sequence, event_owed, sequence_latest_committed

logger = logging.getLogger("realtime.hub")


class HubOrdering:
    """The hub's release of events in sequence order up to its horizon (a part of
    ``realtime.hub.Hub``, whose ``__init__`` sets these attributes)."""

    held: dict[int, list[dict[str, Any]]]  # arrived, above the horizon
    horizon: int | None  # every owed event up to it has been released
    owed_from: dict[str, int]  # group -> events above this are owed
    owed_params: tuple[list[str], list[str], list[str]] | None
    missing_since: float | None
    settle_target: int
    settle_waiters: list[tuple[int, asyncio.Future[None]]]
    reorder_wait: float
    stats: dict[str, int]
    wakeup: asyncio.Event

    if TYPE_CHECKING:

        def count(self, name: str, n: int = 1) -> None: ...

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


def _db(func: Callable[..., Any]) -> Any:
    return database_sync_to_async(func, thread_sensitive=False)
