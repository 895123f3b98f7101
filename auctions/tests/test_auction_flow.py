"""One English auction played from start to end with three bidders, a watcher and the
seller: every notification each party received (per channel, through the real
pipeline, email at a real SMTP server), every real-time event, and no private data
crossing between parties."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.models import Auction
from auctions.services import (
    auction_create,
    auction_topic,
    auction_watch,
    auctions_close_due,
    auctions_send_ending_notices,
    auctions_start_due,
    bid_place,
    bidder_pseudonym,
)
from deliveries.models import Notification, NotificationDelivery
from deliveries.services import delivery_send
from realtime.models import RealTimeEvent


def received(user) -> list[tuple[str, str, dict[str, str]]]:
    """(type, priority, {channel: delivery status}) of each notification, oldest first."""
    out = []
    for n in Notification.objects.filter(user=user).order_by("created_at"):
        out.append((n.event_type, n.priority,
                    {d.delivery_type: d.status for d in n.deliveries.all()}))
    return out


SENT_IN_APP = {"in_app": "sent"}
SENT_IN_APP_EMAIL = {"in_app": "sent", "email": "sent"}
# Nobody here registered a device, so push is recorded as skipped (no address).
SENT_IN_APP_PUSH = {"in_app": "sent", "push": "skipped"}
SENT_ALL = {"in_app": "sent", "push": "skipped", "email": "sent"}


@pytest.mark.django_db(transaction=True)
def test_english_auction_from_start_to_end(
    seller, bidders, make_user, channel_providers, smtp_server, settings
):
    # every notice sent directly, one per event (NP_AUCTION_WORKFLOWS off); the workflow
    # path (outbid digest, ending escalation) is test_workflow_wiring.py
    settings.NP_AUCTION_WORKFLOWS = False
    ann, ben, cat = bidders
    watcher = make_user(email="wes@example.test", display_name="Wes")
    everyone = [seller, ann, ben, cat, watcher]

    # Given a scheduled English auction (reserve 140) watched by Wes and Ann
    now = timezone.now()
    auction = auction_create(
        seller=seller, title="Vintage Watch Collection", auction_type="english",
        starts_at=now - timedelta(seconds=5), ends_at=now + timedelta(hours=1),
        starting_price="100.00", min_increment="10.00", reserve_price="140.00",
        items=[{"title": "1960 Omega Seamaster"}],
    )
    auction_watch(auction_id=auction.pk, user=watcher)
    auction_watch(auction_id=auction.pk, user=ann)

    # When beat starts it, three bidders bid, the end nears and beat closes it
    assert auctions_start_due() == 1
    bid_place(auction_id=auction.pk, bidder=ann, amount="100.00")
    bid_place(auction_id=auction.pk, bidder=ben, amount="120.00")
    bid_place(auction_id=auction.pk, bidder=cat, amount="130.00")
    bid_place(auction_id=auction.pk, bidder=ann, amount="150.00")
    auction.refresh_from_db()
    assert auctions_send_ending_notices(now=auction.ends_at - timedelta(seconds=60)) == 1
    assert auctions_send_ending_notices(now=auction.ends_at - timedelta(seconds=30)) == 0  # once
    assert auctions_close_due(now=auction.ends_at + timedelta(seconds=1)) == 1
    # ... and the pipeline sends every pending delivery (the worker's send service)
    for delivery_id in NotificationDelivery.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True):
        delivery_send(delivery_id)

    # Then the auction is won by Ann at her bid
    auction = Auction.objects.get(pk=auction.pk)
    assert (auction.status, auction.winner_id, auction.final_price) == (
        "completed", ann.pk, Decimal("150.00"),
    )

    # and each party received exactly these notifications, on these channels
    assert received(watcher) == [
        ("auction_started", "normal", SENT_IN_APP_EMAIL),
        ("auction_ending", "urgent", SENT_IN_APP_PUSH),
        ("auction_ended", "normal", SENT_IN_APP_EMAIL),
    ]
    assert received(ann) == [
        ("auction_started", "normal", SENT_IN_APP_EMAIL),
        ("bid_confirmed", "normal", SENT_IN_APP),
        ("outbid", "high", SENT_ALL),
        ("bid_confirmed", "normal", SENT_IN_APP),
        ("auction_ending", "urgent", SENT_IN_APP_PUSH),
        ("auction_ended", "normal", SENT_IN_APP_EMAIL),
    ]
    for loser in (ben, cat):
        assert received(loser) == [
            ("bid_confirmed", "normal", SENT_IN_APP),
            ("outbid", "high", SENT_ALL),
            ("auction_ending", "urgent", SENT_IN_APP_PUSH),
            ("auction_ended", "normal", SENT_IN_APP_EMAIL),
        ]
    assert received(seller) == [("new_bid", "normal", SENT_IN_APP_PUSH)] * 4 + [
        ("auction_ended", "normal", SENT_IN_APP_EMAIL),
    ]

    # with the texts each party should read
    winner_name = bidder_pseudonym(auction.pk, ann.pk)
    ended = {n.user_id: n.message for n in Notification.objects.filter(event_type="auction_ended")}
    assert ended[ann.pk] == "Vintage Watch Collection ended. Winner: you"
    for other in (ben, cat, watcher, seller):
        assert ended[other.pk] == f"Vintage Watch Collection ended. Winner: {winner_name}"
    outbid = {n.user_id: n.message for n in Notification.objects.filter(event_type="outbid")}
    assert outbid == {
        ann.pk: "Someone bid higher than your 100.00 USD bid",
        ben.pk: "Someone bid higher than your 120.00 USD bid",
        cat.pk: "Someone bid higher than your 130.00 USD bid",
    }
    seller_msgs = list(
        Notification.objects.filter(user=seller, event_type="new_bid")
        .order_by("created_at").values_list("message", flat=True)
    )
    assert seller_msgs == [
        f"{bidder_pseudonym(auction.pk, u.pk)} bid {amount} USD on 1960 Omega Seamaster"
        for u, amount in [(ann, "100.00"), (ben, "120.00"), (cat, "130.00"), (ann, "150.00")]
    ]

    # and the mail each party got at the SMTP server is theirs alone
    subjects = defaultdict(list)
    for message in smtp_server.messages():
        subjects[message["To"]].append(message["Subject"])
    assert dict(subjects) == {
        watcher.email: ["Auction started", "Auction completed"],
        ann.email: ["Auction started", "You've been outbid", "Auction completed"],
        ben.email: ["You've been outbid", "Auction completed"],
        cat.email: ["You've been outbid", "Auction completed"],
        seller.email: ["Auction completed"],
    }
    for message in smtp_server.messages():
        body = message.get_body(preferencelist=("plain",)).get_content()
        for person in everyone:
            if person.email != message["To"]:
                assert person.email not in body and person.email not in message.as_string()

    # no delivery was addressed to anyone but its notification's user
    for delivery in NotificationDelivery.objects.select_related("notification__user"):
        owner = delivery.notification.user
        expected = {"in_app": str(owner.pk), "email": owner.email}.get(delivery.delivery_type)
        if expected is not None:
            assert delivery.recipient == expected

    # and the auction topic told this story, publicly or to signed-in users only
    topic = [
        (e.event_type, e.visibility, e.event_data.get("new_status") or e.event_data.get("bid_amount"))
        for e in RealTimeEvent.objects.filter(broadcast_channels=[auction_topic(auction)])
        .order_by("sequence_number")
    ]
    assert topic == [
        ("auction_status_changed", "public", "active"),
        ("bid_placed", "authenticated", "100.00"),
        ("auction_price_changed", "public", None),
        ("bid_placed", "authenticated", "120.00"),
        ("auction_price_changed", "public", None),
        ("bid_placed", "authenticated", "130.00"),
        ("auction_price_changed", "public", None),
        ("bid_placed", "authenticated", "150.00"),
        ("auction_price_changed", "public", None),
        ("auction_ending", "public", None),
        ("auction_status_changed", "public", "completed"),
    ]
    closing = RealTimeEvent.objects.filter(event_type="auction_status_changed").order_by(
        "sequence_number").last()
    assert closing.event_data["winner"] == winner_name
    assert closing.event_data["final_price"] == "150.00"
    # every in-app notification reached its owner as a private event, and only theirs
    for person in everyone:
        in_app = NotificationDelivery.objects.filter(
            notification__user=person, delivery_type="in_app").count()
        private = RealTimeEvent.objects.filter(
            visibility="private", user=person, event_type="notification.created")
        assert private.count() == in_app
        assert all(e.event_type == "notification.created" for e in private)
        assert {e.event_data.get("id") for e in private} == {
            str(pk) for pk in Notification.objects.filter(user=person).values_list("pk", flat=True)
        }
    # no event anywhere carries an email address or a bidder's account id
    for event in RealTimeEvent.objects.exclude(visibility="private"):
        text = str(event.event_data)
        assert event.user_id is None
        for person in everyone:
            assert person.email not in text
        for bidder in bidders:
            assert str(bidder.pk) not in text
