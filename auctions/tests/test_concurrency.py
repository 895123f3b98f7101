"""Bids on one auction are serialised by the auction row lock: of two simultaneous
bids of the same amount exactly one wins. Real threads, real PostgreSQL, committed
transactions (``transactional_db``)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from auctions.errors import AuctionError
from auctions.models import Bid
from auctions.services import bid_place


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rounds", range(3))
def test_two_simultaneous_equal_bids_exactly_one_wins(make_auction, bidders, rounds):
    # Given a running English auction
    auction = make_auction("english")
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def bid(user) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[user.email] = bid_place(auction_id=auction.pk, bidder=user, amount="150.00")
        except AuctionError as exc:
            outcomes[user.email] = exc
        finally:
            connection.close()  # each thread has its own connection

    # When two bidders bid the same amount at the same moment
    threads = [threading.Thread(target=bid, args=(u,)) for u in bidders[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # Then exactly one bid was accepted and the other was told it is too low
    accepted = [o for o in outcomes.values() if isinstance(o, Bid)]
    refused = [o for o in outcomes.values() if isinstance(o, AuctionError)]
    assert len(accepted) == 1 and len(refused) == 1
    assert refused[0].code == "BID_TOO_LOW"
    assert refused[0].message == "amount must be at least 160.00 USD"
    auction.refresh_from_db()
    assert (auction.bid_count, auction.current_price) == (1, Decimal("150.00"))
    assert list(Bid.objects.filter(auction=auction).values_list("status", flat=True)) == ["leading"]


def _race(calls) -> list[object]:
    """Run the calls at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except AuctionError as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("auction_type", "amount"), [("buy_it_now", "250.00"), ("dutch", "100.00")])
def test_two_buyers_at_once_exactly_one_buys(make_auction, bidders, auction_type, amount):
    # Given a buy-now (or a Dutch clock at 100) auction
    auction = make_auction(auction_type)
    # When two bidders take it at the same moment
    outcomes = _race([
        lambda u=u: bid_place(auction_id=auction.pk, bidder=u, amount=amount) for u in bidders[:2]
    ])
    # Then exactly one bought it; the other was told the auction is over
    accepted = [o for o in outcomes if isinstance(o, Bid)]
    refused = [o for o in outcomes if isinstance(o, AuctionError)]
    assert len(accepted) == 1 and len(refused) == 1
    assert (refused[0].status, refused[0].code) in {(409, "AUCTION_NOT_ACTIVE"), (409, "AUCTION_ENDED")}
    auction.refresh_from_db()
    assert (auction.status, auction.winner_id, auction.final_price) == (
        "completed", accepted[0].bidder_id, Decimal(amount))


@pytest.mark.django_db(transaction=True)
def test_two_japanese_drop_outs_at_once_leave_exactly_one_winner(make_auction, bidders):
    from datetime import timedelta

    from django.utils import timezone

    from auctions.models import Auction
    from auctions.services import auction_drop_out, auction_enter, auction_start

    auction = make_auction("japanese", start=False, starts_at=timezone.now() + timedelta(seconds=5))
    two = bidders[:2]
    for who in two:
        auction_enter(auction_id=auction.pk, bidder=who)
    Auction.objects.filter(pk=auction.pk).update(starts_at=timezone.now() - timedelta(seconds=1))
    auction_start(auction_id=auction.pk)
    # both of the last two try to drop out at the same moment
    outcomes = _race([lambda u=u: auction_drop_out(auction_id=auction.pk, bidder=u) for u in two])
    auction.refresh_from_db()
    dropped = [o for o in outcomes if isinstance(o, Bid)]
    refused = [o for o in outcomes if isinstance(o, AuctionError)]
    # the first drop-out decided it; the other, still in, won and could no longer leave
    assert len(dropped) == 1 and len(refused) == 1 and refused[0].status == 409
    assert auction.status == "completed"
    assert auction.winner_id == ({u.pk for u in two} - {dropped[0].bidder_id}).pop()


@pytest.mark.django_db(transaction=True)
def test_two_clock_runs_at_once_apply_each_tick_exactly_once(make_auction):
    from datetime import timedelta

    from django.utils import timezone

    from auctions.services import auction_clock_run
    from realtime.models import RealTimeEvent

    # Given a Dutch clock four ticks behind (started 45 s ago, a tick every 10 s)
    auction = make_auction("dutch", starts_at=timezone.now() - timedelta(seconds=45))
    # When two workers run its clock at the same moment, three times over
    for _ in range(3):
        _race([lambda: auction_clock_run(auction_id=auction.pk) for _ in range(2)])
    # Then ticks 1..4 were each published exactly once
    ticks = sorted(
        e.event_data["tick"]
        for e in RealTimeEvent.objects.filter(auction_id=auction.pk,
                                             event_type="auction_price_changed")
    )
    assert ticks == [1, 2, 3, 4]
    auction.refresh_from_db()
    assert auction.current_price == Decimal("80.00")
