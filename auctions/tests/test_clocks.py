"""Clocks run from the database schedule: Dutch/Japanese ticks applied once each (a
restart or a second worker neither skips nor repeats one), the floor with no bid,
Japanese drop-outs, and the candle going out at its committed moment."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.errors import AuctionError
from auctions.models import Auction, AuctionRuleState
from auctions.services import (
    auction_clock_run,
    auction_close,
    auction_drop_out,
    auction_enter,
    auction_start,
    auctions_run_clocks,
    bid_place,
)
from deliveries.models import Notification
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db
D = Decimal


def ticks(auction) -> list[tuple[int, str]]:
    return [
        (e.event_data["tick"], e.event_data["price"])
        for e in RealTimeEvent.objects.filter(auction_id=auction.pk,
                                             event_type="auction_price_changed")
        .order_by("sequence_number")
    ]


def test_dutch_ticks_catch_up_once_each_and_never_twice(make_auction, bidders):
    # Given a Dutch clock that started 35 s ago: 100, -5 every 10 s
    auction = make_auction("dutch", starts_at=timezone.now() - timedelta(seconds=35))
    state = AuctionRuleState.objects.get(auction=auction)
    assert auction.current_price == D("100.00") and state.clock_tick == 0
    # When the beat (back after a restart) runs the clock, twice
    assert auctions_run_clocks() == 3
    assert auction_clock_run(auction_id=auction.pk) == 0
    # Then ticks 1..3 were each published once, with the whole price
    assert ticks(auction) == [(1, "95.00"), (2, "90.00"), (3, "85.00")]
    auction.refresh_from_db()
    state.refresh_from_db()
    assert (auction.current_price, state.clock_tick) == (D("85.00"), 3)
    assert state.clock_due_at == auction.starts_at + timedelta(seconds=40)
    # and the events are short-lived, tagged, and each one's cause is the tick before
    events = list(RealTimeEvent.objects.filter(event_type="auction_price_changed")
                  .order_by("sequence_number"))
    assert {(e.retention_policy, "clock" in e.tags) for e in events} == {("short", True)}
    assert all(e.expires_at <= timezone.now() + timedelta(hours=1) for e in events)
    assert events[1].causal_events == [str(events[0].pk)]


def test_a_stale_worker_cannot_apply_a_tick_again(make_auction):
    auction = make_auction("dutch", starts_at=timezone.now() - timedelta(seconds=25))
    stale = AuctionRuleState.objects.get(auction=auction)  # read before the other run
    assert auction_clock_run(auction_id=auction.pk) == 2
    # a worker holding the old state row: its conditional UPDATE matches nothing
    from auctions.rules import rules_for
    from auctions.services.clocks import _advance

    auction.refresh_from_db()
    assert _advance(auction, stale, rules_for("dutch"), timezone.now()) == 0
    assert ticks(auction) == [(1, "95.00"), (2, "90.00")]


def test_dutch_floor_reached_with_no_bid_stops_the_clock_and_does_not_sell(make_auction):
    auction = make_auction("dutch", starts_at=timezone.now() - timedelta(minutes=10))
    assert auction_clock_run(auction_id=auction.pk) == 10  # 100 → 50 in ten ticks
    state = AuctionRuleState.objects.get(auction=auction)
    auction.refresh_from_db()
    assert (auction.current_price, state.clock_due_at) == (D("50.00"), None)
    assert auction_clock_run(auction_id=auction.pk) == 0
    Auction.objects.filter(pk=auction.pk).update(ends_at=timezone.now())
    result = auction_close(auction_id=auction.pk)
    assert (result.settlement.winning_bid, result.auction.final_price) == (None, None)


def test_dutch_first_bid_at_the_clock_price_wins_at_once(make_auction, bidders, seller):
    auction = make_auction("dutch", starts_at=timezone.now() - timedelta(seconds=21))
    auction.watchers.add(bidders[2])
    auction_clock_run(auction_id=auction.pk)
    dropped = Notification.objects.filter(user=bidders[2], event_type="auction_price_dropped")
    assert [n.title for n in dropped] == ["Price dropped to 90.00 USD"]
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="90.00")
    auction.refresh_from_db()
    assert (auction.status, auction.winner, auction.final_price) == (
        "completed", bidders[0], D("90.00"))
    with pytest.raises(AuctionError) as info:
        bid_place(auction_id=auction.pk, bidder=bidders[1], amount="90.00")
    assert info.value.status == 409
    closing = RealTimeEvent.objects.filter(event_type="auction_status_changed").last()
    bid_event = RealTimeEvent.objects.get(event_type="bid_placed")
    assert closing.causal_events == [str(bid_event.pk)]


def test_japanese_enter_tick_drop_out_last_one_in_wins(make_auction, bidders):
    ann, ben, cat = bidders
    auction = make_auction("japanese", start=False, starts_at=timezone.now() + timedelta(seconds=1),
                           config={"tick_seconds": 10, "increment": "10.00"})
    for who in bidders:
        auction_enter(auction_id=auction.pk, bidder=who)
    with pytest.raises(AuctionError) as info:
        auction_enter(auction_id=auction.pk, bidder=ann)
    assert info.value.code == "ALREADY_ENTERED"
    Auction.objects.filter(pk=auction.pk).update(starts_at=timezone.now() - timedelta(seconds=25))
    assert auction_start(auction_id=auction.pk)
    # the entrants hear that the clock started
    assert Notification.objects.filter(event_type="auction_started").count() == 3
    with pytest.raises(AuctionError) as info:
        bid_place(auction_id=auction.pk, bidder=ann, amount="100")
    assert info.value.code == "ENTRY_ONLY"
    assert auction_clock_run(auction_id=auction.pk) == 2  # 100 → 120
    auction_drop_out(auction_id=auction.pk, bidder=ben)  # at 120
    note = Notification.objects.get(user=ben, event_type="auction_dropped_out")
    assert note.message == "You left Vintage Watch Collection at 120.00 USD"
    auction.refresh_from_db()
    assert auction.status == "active"
    auction_drop_out(auction_id=auction.pk, bidder=cat)  # the runner-up leaves at 120
    auction.refresh_from_db()
    assert (auction.status, auction.winner, auction.final_price) == ("completed", ann, D("120.00"))
    with pytest.raises(AuctionError):
        auction_drop_out(auction_id=auction.pk, bidder=ann)


def test_japanese_with_one_entrant_ends_at_the_first_tick(make_auction, bidders):
    auction = make_auction("japanese", start=False, starts_at=timezone.now() + timedelta(seconds=1))
    auction_enter(auction_id=auction.pk, bidder=bidders[0])
    Auction.objects.filter(pk=auction.pk).update(starts_at=timezone.now() - timedelta(seconds=11))
    auction_start(auction_id=auction.pk)
    auction_clock_run(auction_id=auction.pk)
    auction.refresh_from_db()
    assert (auction.status, auction.winner, auction.final_price) == (
        "completed", bidders[0], D("100.00"))


def test_candle_goes_out_at_its_committed_moment_and_reveals_the_secret(make_auction, bidders,
                                                                         api_client):
    auction = make_auction("candle", config={"window_seconds": 600})
    started = RealTimeEvent.objects.get(event_type="auction_status_changed")
    state = AuctionRuleState.objects.get(auction=auction)
    assert started.event_data["commitment"] == state.commitment
    assert auction_clock_run(auction_id=auction.pk) == 0  # not out yet
    api_client.force_authenticate(bidders[1])
    before = api_client.get(f"/api/v1/auctions/{auction.pk}/").json()["rules"]
    assert "secret" not in before and before["commitment"] == state.commitment
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    out = state.clock_due_at
    assert auction.ends_at - timedelta(seconds=600) <= out <= auction.ends_at
    assert auction_clock_run(auction_id=auction.pk, now=out + timedelta(seconds=1)) == 1
    auction.refresh_from_db()
    assert (auction.status, auction.winner, auction.ends_at) == ("completed", bidders[0], out)
    closed = RealTimeEvent.objects.filter(event_type="auction_status_changed").last()
    secret = closed.event_data["proof"]["secret"]
    assert hashlib.sha256(secret.encode()).hexdigest() == started.event_data["commitment"]
    after = api_client.get(f"/api/v1/auctions/{auction.pk}/").json()["rules"]
    assert after["secret"] == secret
