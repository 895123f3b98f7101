"""A Dutch clock driven by a real Celery worker with beat (``auctions.run_clocks``),
killed with SIGKILL mid-auction and replaced: every tick is published exactly once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from auctions.models import AuctionRuleState
from deliveries.tests.conftest import purge_queue, start_worker, wait_for  # noqa: F401
from realtime.models import RealTimeEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def published_ticks(auction) -> list[int]:
    return sorted(
        e.event_data["tick"]
        for e in RealTimeEvent.objects.filter(auction_id=auction.pk,
                                             event_type="auction_price_changed")
    )


@pytest.mark.usefixtures("purge_queue")
def test_clock_survives_a_killed_worker_without_skipping_or_doubling_a_tick(
    make_auction, start_worker  # noqa: F811
):
    # Given a running Dutch clock: 100, -1 every 2 s, floor 60 (40 ticks)
    auction = make_auction(
        "dutch", starts_at=timezone.now() - timedelta(seconds=1),
        config={"decrement": "1.00", "tick_seconds": 2, "floor_price": "60.00"},
    )

    def tick() -> int:
        return AuctionRuleState.objects.get(auction=auction).clock_tick

    # When a worker with beat runs it, dies (SIGKILL) and a new one takes over
    first = start_worker(beat=True)
    wait_for(lambda: tick() >= 2, timeout=90)
    first.kill()
    at_kill = tick()
    time.sleep(4.5)  # at least two ticks come due while no worker runs
    start_worker(beat=True)
    wait_for(lambda: tick() >= at_kill + 3, timeout=90)

    # Then every tick from 1 to the current one was published once, none twice
    now_tick = tick()
    ticks = published_ticks(auction)
    assert ticks[: now_tick] == list(range(1, now_tick + 1))
    assert len(ticks) == len(set(ticks))
    auction.refresh_from_db()
    assert auction.current_price <= 100 - now_tick + 1
