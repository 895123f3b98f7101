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
