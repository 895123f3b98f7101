"""Notifications per type (the penny text only for penny auctions, proxy exceeded, what
each loser must pay, the Chinese draw) with an action link, and the causal fields of a
bid's events."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.models import Auction
from auctions.services import auction_close, auction_url, bid_place
from deliveries.models import Notification
from realtime.models import RealTimeEvent
from realtime.retention import event_purge_expired

pytestmark = pytest.mark.django_db


def close(auction):
    Auction.objects.filter(pk=auction.pk).update(ends_at=timezone.now())
    return auction_close(auction_id=auction.pk)


def test_penny_text_only_for_penny_and_every_note_links_to_the_auction(make_auction, bidders):
    english = make_auction("english")
    bid_place(auction_id=english.pk, bidder=bidders[0], amount="100")
    note = Notification.objects.get(user=bidders[0], event_type="bid_confirmed")
    assert note.message == "Your bid of 100.00 USD on Vintage Watch Collection is in"
    assert "extended" not in note.message
    penny = make_auction("penny", title="Penny", starting_price=Decimal("0"),
                         bid_increment=Decimal("0.01"), extension_seconds=20)
    bid_place(auction_id=penny.pk, bidder=bidders[0], amount="0.01")
    assert Notification.objects.get(user=bidders[0], event_type="bid_placed").message == (
        "Your bid extended Penny by 20s")
    for n in Notification.objects.all():
        meta = n.metadata or {}
        url = meta.get("action_url") or getattr(n, "action_url", None)
        assert url in (auction_url(english), auction_url(penny)), n.event_type
        label = meta.get("action_label") or getattr(n, "action_label", None)
        assert label, n.event_type


def test_proxy_exceeded_is_told_with_the_maximum(make_auction, bidders, settings):
    settings.NP_AUCTION_WORKFLOWS = False  # outbid sent directly (workflows: test_workflow_wiring)
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100", max_amount="150")
    # Ben's 120 is answered by Ann's proxy at 130: Ben is outbid at once
    bid_place(auction_id=auction.pk, bidder=ben, amount="120")
    auction.refresh_from_db()
    assert (auction.current_price, auction.bids.get(status="leading").bidder) == (
        Decimal("130.00"), ann)
    assert Notification.objects.filter(user=ben, event_type="outbid").count() == 1
    # Ben's maximum of 300 beats Ann's 150: he leads at 160, Ann's proxy was exceeded
    bid_place(auction_id=auction.pk, bidder=ben, amount="140", max_amount="300")
    auction.refresh_from_db()
    assert auction.current_price == Decimal("160.00")
    exceeded = Notification.objects.get(user=ann, event_type="proxy_bid_exceeded")
    assert exceeded.message == (
        "Someone bid over your maximum of 150.00 USD on Vintage Watch Collection")


def test_all_pay_losers_are_told_what_they_must_pay(make_auction, bidders):
    auction = make_auction("all_pay")
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    bid_place(auction_id=auction.pk, bidder=bidders[1], amount="110")
    close(auction)
    owed = {n.user_id: n.title for n in Notification.objects.filter(
        event_type="auction_payment_due")}
    assert owed == {bidders[0].pk: "You must pay 100.00 USD", bidders[1].pk: "You must pay 110.00 USD"}


def test_chinese_winner_is_told_they_were_drawn(make_auction, bidders):
    auction = make_auction("chinese", starting_price=Decimal("0"), config={"entry_price": "5.00"})
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="10.00")
    bid_place(auction_id=auction.pk, bidder=bidders[1], amount="5.00")
    result = close(auction)
    winner = result.settlement.winning_bid.bidder
    assert list(Notification.objects.filter(event_type="auction_drawn").values_list(
        "user_id", flat=True)) == [winner.pk]
    assert Notification.objects.filter(event_type="auction_payment_due").count() == 2


def test_a_bids_events_form_a_causal_chain(make_auction, bidders):
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100")
    bid = bid_place(auction_id=auction.pk, bidder=ben, amount="120")
    events = list(RealTimeEvent.objects.filter(auction_id=auction.pk).order_by("sequence_number"))
    # every event names the auction's event before it
    assert events[0].previous_event_id is None
    for before, after in zip(events, events[1:], strict=False):
        assert after.previous_event_id == before.pk
    placed = RealTimeEvent.objects.get(bid=bid, event_type="bid_placed")
    followers = RealTimeEvent.objects.filter(correlation_id=placed.correlation_id).exclude(
        pk=placed.pk)
    assert sorted(e.event_type for e in followers) == ["auction_price_changed", "outbid"]
    assert all(e.causal_events == [str(placed.pk)] for e in followers)
    assert placed.correlation_id == f"bid:{bid.pk}"
    assert placed.expected_impacts == {
        "notifications": {"bid_confirmed": 1, "new_bid": 1, "outbid": 1},
        "price_change": {"from": "100.00", "to": "120.00"},
    }
    assert placed.tags == ["auction", "english", "bid"]
    assert (placed.retention_policy, events[0].retention_policy) == ("standard", "long")
    outbid = followers.get(event_type="outbid")
    assert (outbid.visibility, outbid.user_id) == ("private", ann.pk)


def test_retention_purges_events_past_their_expiry(make_auction, bidders):
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    in_two_hours = timezone.now() + timedelta(hours=2)
    purged = event_purge_expired(now=in_two_hours)
    left = set(RealTimeEvent.objects.filter(auction_id=auction.pk).values_list(
        "event_type", flat=True))
    assert purged >= 1  # the price tick (1 h) went; the bid (7 d) and the start (30 d) stay
    assert left == {"auction_status_changed", "bid_placed"}


def test_admin_shows_an_events_causes_and_effects_as_links(make_auction, bidders, client):
    from django.urls import reverse

    from users.models import User

    auction = make_auction("english")
    bid = bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    placed = RealTimeEvent.objects.get(bid=bid, event_type="bid_placed")
    price = RealTimeEvent.objects.get(event_type="auction_price_changed")
    client.force_login(User.objects.create_superuser(email="root@example.test", password=None))

    def link(event) -> str:
        return reverse("admin:realtime_realtimeevent_change", args=[event.pk])

    page = client.get(link(price)).content.decode()
    assert f'href="{link(placed)}"' in page  # its cause
    page = client.get(link(placed)).content.decode()
    assert f'href="{link(price)}"' in page  # its effect


def test_reverse_auction_tells_a_beaten_seller_they_were_underbid(make_auction, bidders):
    auction = make_auction("reverse", starting_price=Decimal("500.00"))
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="480")
    bid_place(auction_id=auction.pk, bidder=bidders[1], amount="450")
    note = Notification.objects.get(user=bidders[0], event_type="underbid")
    assert note.message == "Someone offered less than your 480.00 USD on Vintage Watch Collection"
    assert not Notification.objects.filter(event_type="outbid").exists()
    result = close(auction)
    assert (result.settlement.winning_bid.bidder, result.auction.final_price) == (
        bidders[1], Decimal("450.00"))
