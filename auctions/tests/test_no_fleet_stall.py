"""Closing an auction with many watchers must not stall the platform's other publishes.

Every publish takes the event-ordering lock (``realtime.services``) until its transaction
commits; the close notifies each watcher, so the close publishes its own event last and
the lock is held for the sequence draw, the insert and the commit only. Real threads, real
PostgreSQL, committed transactions. The benchmark (``bench/auction_close_stall.py``) runs
the same scenario with 10,000 watchers."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from auctions.models import Auction, AuctionWatcher
from auctions.services import auction_close
from realtime.services import publish
from users.models import User

WATCHERS = 2_000


@pytest.mark.django_db(transaction=True)
def test_closing_an_auction_with_many_watchers_does_not_stall_an_unrelated_publish(
    make_auction,
):
    # given: a running auction with 150 watchers, due to close
    auction = make_auction("english")
    users = User.objects.bulk_create(
        [User(email=f"watcher{n}@example.test", display_name=f"W{n}") for n in range(WATCHERS)]
    )
    AuctionWatcher.objects.bulk_create([AuctionWatcher(auction=auction, user=u) for u in users])
    Auction.objects.filter(pk=auction.pk).update(ends_at=timezone.now() - timedelta(seconds=1))

    closing = threading.Event()
    closed_after: list[float] = []

    def close() -> None:
        try:
            closing.set()
            started = time.perf_counter()
            assert auction_close(auction_id=auction.pk) is not None
            closed_after.append(time.perf_counter() - started)
        finally:
            connection.close()

    # when: unrelated events are published while the close notifies its watchers
    latencies: list[float] = []

    def publish_unrelated() -> None:
        try:
            closing.wait(10)
            while closer.is_alive():
                started = time.perf_counter()
                publish(
                    event_type="chat.message",
                    category="user",
                    data={"n": len(latencies)},
                    visibility="public",
                    topics=["elsewhere"],
                )
                latencies.append(time.perf_counter() - started)
        finally:
            connection.close()

    closer = threading.Thread(target=close)
    publisher = threading.Thread(target=publish_unrelated)
    publisher.start()
    closer.start()
    closer.join(60)
    publisher.join(60)

    # then: the publishes went on all through the close, none waited for it
    (close_seconds,) = closed_after
    assert close_seconds > 0.3, "the close is too quick on this machine to show a stall"
    assert len(latencies) >= 5
    assert max(latencies) < close_seconds / 3, (max(latencies), close_seconds)
