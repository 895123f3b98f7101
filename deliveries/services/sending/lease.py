"""Lease keeping: a live worker extends the leases of the sends it still has in flight.

A claim leases its rows for ``NP_DELIVERY_LEASE_SECONDS``; the sweeper re-queues a row whose
lease ran out, because its worker is presumed dead. A worker that is alive but slow (a
provider answering near its timeout, failover through several candidates, a starved
machine) must not be mistaken for a dead one: that would send the message a second time
while the first send is still in flight. So while a claim's sends are in flight, one
thread per process renews their leases every third of a lease, in one UPDATE per claim.
Only the rows still ``sending`` under this claim's token are renewed; a row already
recorded, or taken over, is left alone.

The renewal stops ``NP_DELIVERY_LEASE_MAX_SECONDS`` after the claim: a send stuck that long
is given up on and the sweeper may re-queue it, so a wedged worker cannot hold rows forever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, connections
from django.utils import timezone

from .policy import _setting, lease_seconds

logger = logging.getLogger(__package__)  # one logger for the whole send path (JSON logs)

_RENEW_SQL = """
    UPDATE notification_deliveries
    SET delivery_metadata = jsonb_set(delivery_metadata, '{lease,until}', to_jsonb(%(until)s::float8))
    WHERE id = ANY(%(ids)s) AND status = 'sending'
        AND delivery_metadata -> 'lease' ->> 'token' = %(token)s
"""


def lease_max_seconds() -> float:
    return _setting("NP_DELIVERY_LEASE_MAX_SECONDS", 3600)


@dataclass(eq=False)
class Held:
    """The leases of one claim: its token, its rows, when they are next renewed."""

    token: str
    ids: list[int]
    lease: float
    started: float  # monotonic, as the two below
    give_up_at: float
    next_at: float


class _Keeper:
    """One renewal thread per process (started on first use, again after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[Held] = set()
        self._wake = threading.Event()
        self._pid: int | None = None

    def hold(self, token: str, ids: list[int]) -> Held:
        lease = lease_seconds()
        now = time.monotonic()
        held = Held(token, ids, lease, now, now + lease_max_seconds(), now + lease / 3)
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: a thread of its own
                self._held.clear()  # a parent's claims are the parent's to renew
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="np-lease-keeper", daemon=True).start()
            self._held.add(held)
        self._wake.set()
        return held

    def release(self, held: Held) -> None:
        with self._lock:
            self._held.discard(held)

    def _run(self) -> None:
        while True:
            self._wake.clear()  # before the snapshot: a hold() from now on wakes the wait
            with self._lock:
                now = time.monotonic()
                due = [held for held in self._held if held.next_at <= now]
            for held in due:
                try:
                    self._renew(held)
                except Exception:  # noqa: BLE001 - the thread must outlive any one round
                    logger.exception("lease renewal round failed")
            with self._lock:
                now = time.monotonic()
                wait = min((held.next_at - now for held in self._held), default=60.0)
            self._wake.wait(max(wait, 0.0))

    def _renew(self, held: Held) -> None:
        now = time.monotonic()
        if now >= held.give_up_at:
            logger.warning(
                "sends of claim %s still in flight after %.0f s: their leases are no longer "
                "renewed (NP_DELIVERY_LEASE_MAX_SECONDS)",
                held.token,
                now - held.started,
            )
            self.release(held)
            return
        held.next_at = now + held.lease / 3
        until = (timezone.now() + timedelta(seconds=held.lease)).timestamp()
        try:
            with connection.cursor() as cursor:
                cursor.execute(_RENEW_SQL, {"until": until, "ids": held.ids, "token": held.token})
        except Exception:  # noqa: BLE001 - the next round tries again; the sends go on
            logger.exception("renewing the leases of claim %s failed", held.token)
        finally:
            connections.close_all()  # back to the pool: this thread lives as long as the process


_keeper = _Keeper()


@contextmanager
def leases_kept(token: str, ids: list[int]) -> Iterator[None]:
    """Renew the leases of this claim's rows while the block runs (their sends)."""
    held = _keeper.hold(token, ids)
    try:
        yield
    finally:
        _keeper.release(held)
