"""bid_place: the rules applied through the service, the errors, and what each bid
emits (notifications through the pipeline, real-time events on the auction topic)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.errors import AuctionError
from auctions.models import Auction, Bid
from auctions.services import auction_topic, bid_place, bidder_pseudonym
from deliveries.models import Notification
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db


def refused(**kwargs) -> AuctionError:
    with pytest.raises(AuctionError) as info:
        bid_place(**kwargs)
    return info.value


def notes(user) -> list[tuple[str, str, list[str]]]:
    return [
        (n.event_type, n.priority, sorted(d.delivery_type for d in n.deliveries.all()))
        for n in Notification.objects.filter(user=user).order_by("created_at")
    ]


def test_english_bid_emits_bid_placed_new_bid_and_outbid(make_auction, seller, bidders, settings):
    # the direct path: with NP_AUCTION_WORKFLOWS on (the default) the outbid notice goes
    # through the ``outbid`` digest workflow instead (test_workflow_wiring.py)
    settings.NP_AUCTION_WORKFLOWS = False
    # Given a running English auction with a leading bid by Ann
    ann, ben, _ = bidders
    auction = make_auction("english")
    first = bid_place(auction_id=auction.pk, bidder=ann, amount="100.00")

    # When Ben bids higher
    second = bid_place(auction_id=auction.pk, bidder=ben, amount="110.00")

    # Then the bids and the auction reflect it
    first.refresh_from_db()
    auction.refresh_from_db()
    assert (first.status, second.status) == ("outbid", "leading")
    assert (auction.current_price, auction.bid_count) == (Decimal("110.00"), 2)
    # and each party got exactly what seed 004 lists
    assert notes(ann) == [
        ("bid_confirmed", "normal", ["in_app"]),
        ("outbid", "high", ["email", "in_app", "push"]),
    ]
    assert notes(ben) == [("bid_confirmed", "normal", ["in_app"])]
    assert notes(seller) == [
        ("new_bid", "normal", ["in_app", "push"]),
        ("new_bid", "normal", ["in_app", "push"]),
    ]
    outbid = Notification.objects.get(user=ann, event_type="outbid")
    assert outbid.message == "Someone bid higher than your 100.00 USD bid"
    assert outbid.bid_id == second.pk and outbid.auction_id == auction.pk
    new_bid = Notification.objects.filter(user=seller).order_by("created_at").last()
    assert new_bid.message == (
        f"{bidder_pseudonym(auction.pk, ben.pk)} bid 110.00 USD on 1960 Omega Seamaster"
    )
    # and the topic carried the bid with a pseudonym, never an account
    event = RealTimeEvent.objects.filter(event_type="bid_placed").order_by("sequence_number").last()
    assert event.visibility == "authenticated"
    assert event.broadcast_channels == [auction_topic(auction)]
    assert event.user_id is None
    assert event.event_data["bidder"] == bidder_pseudonym(auction.pk, ben.pk)
    assert event.event_data["bid_amount"] == "110.00"
    assert event.event_data["current_price"] == "110.00"
    assert event.event_data["previous_price"] == "100.00"
    assert str(ben.pk) not in str(event.event_data) and ben.email not in str(event.event_data)


def test_bid_below_the_increment_is_refused_and_nothing_written(make_auction, bidders):
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100")
    err = refused(auction_id=auction.pk, bidder=ben, amount="105")
    assert (err.code, err.field, err.status) == ("BID_TOO_LOW", "amount", 400)
    assert err.message == "amount must be at least 110.00 USD"
    assert Bid.objects.filter(auction=auction).count() == 1
    assert Notification.objects.filter(user=ben).count() == 0


def test_seller_cannot_bid(make_auction, seller):
    auction = make_auction("english")
    err = refused(auction_id=auction.pk, bidder=seller, amount="100")
    assert (err.code, err.field, err.status) == ("SELLER_CANNOT_BID", "bidder", 400)


def test_scheduled_auction_refuses_bids_with_409(make_auction, bidders):
    auction = make_auction(
        "english", start=False,
        starts_at=timezone.now() + timedelta(hours=1), ends_at=timezone.now() + timedelta(hours=2),
    )
    err = refused(auction_id=auction.pk, bidder=bidders[0], amount="100")
    assert (err.code, err.status) == ("AUCTION_NOT_ACTIVE", 409)
    assert err.message == "the auction is not accepting bids (status scheduled)"


def test_active_auction_past_its_end_refuses_bids_with_409(make_auction, bidders):
    auction = make_auction("english")
    Auction.objects.filter(pk=auction.pk).update(
        starts_at=timezone.now() - timedelta(hours=2), ends_at=timezone.now() - timedelta(seconds=1)
    )
    err = refused(auction_id=auction.pk, bidder=bidders[0], amount="100")
    assert (err.code, err.status) == ("AUCTION_ENDED", 409)


def test_dutch_bid_off_the_clock_price_is_refused_clearly(make_auction, bidders):
    auction = make_auction("dutch")
    err = refused(auction_id=auction.pk, bidder=bidders[0], amount="90")
    assert (err.code, err.status, err.field) == ("BID_NOT_CLOCK_PRICE", 400, "amount")
    assert err.message == "a Dutch bid must be the clock price, 100.00 USD"


def test_item_from_another_auction_is_refused(make_auction, bidders):
    auction = make_auction("english")
    other = make_auction("english", title="Other")
    err = refused(
        auction_id=auction.pk, bidder=bidders[0], amount="100", item=other.items.get().pk
    )
    assert (err.code, err.field) == ("ITEM_NOT_IN_AUCTION", "item")


def test_penny_bid_extends_the_end(make_auction, bidders):
    # Given a penny auction with a 15-second extension per bid
    auction = make_auction(
        "penny", starting_price=Decimal("0.00"), bid_increment=Decimal("0.01"),
        extension_seconds=15,
    )
    ends_at = auction.ends_at
    # When two bids are placed at the next price each
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="0.01")
    bid_place(auction_id=auction.pk, bidder=bidders[1], amount="0.02")
    # Then the end moved 30 seconds and the bidder was told so
    auction.refresh_from_db()
    assert auction.ends_at == ends_at + timedelta(seconds=30)
    assert auction.current_price == Decimal("0.02")
    placed = Notification.objects.get(user=bidders[1], event_type="bid_placed")
    assert placed.message == "Your bid extended Vintage Watch Collection by 15s"
    event = RealTimeEvent.objects.filter(event_type="bid_placed").order_by("sequence_number").last()
    assert event.event_data["extended_by_seconds"] == 15
    assert event.event_data["ends_at"] == auction.ends_at.isoformat()


def test_sealed_bids_never_reveal_amounts_or_notify_others(make_auction, seller, bidders):
    ann, ben, _ = bidders
    auction = make_auction("sealed_first_price")
    bid_place(auction_id=auction.pk, bidder=ann, amount="150.00")
    bid_place(auction_id=auction.pk, bidder=ben, amount="170.00")
    auction.refresh_from_db()
    assert auction.current_price is None
    assert list(auction.bids.values_list("status", flat=True)) == ["sealed", "sealed"]
    # only the bidders' own confirmations: no outbid, no amounts to the seller
    assert notes(ann) == [("bid_confirmed", "normal", ["in_app"])]
    assert notes(seller) == []
    for event in RealTimeEvent.objects.filter(event_type="bid_placed"):
        assert "bid_amount" not in event.event_data and "current_price" not in event.event_data
        # the amounts in any spelling (not bare digits: ids and pseudonyms may contain "150")
        text = str(event.event_data)
        assert not any(amount in text for amount in ("150.0", "170.0", "150,", "170,", ": 150", ": 170"))
    err = refused(auction_id=auction.pk, bidder=ann, amount="200.00")
    assert err.code == "SEALED_BID_EXISTS"
