"""The beat-driven lifecycle: start once, warn once, close once with the type's winner
and price (sealed amounts revealed only then)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.models import Auction
from auctions.services import (
    auction_watch,
    auctions_close_due,
    auctions_send_ending_notices,
    auctions_start_due,
    bid_place,
)
from auctions.tasks import close_auctions, send_auction_ending_notices, start_auctions
from deliveries.models import Notification
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db


def test_scheduled_auction_starts_once_and_tells_watchers(make_auction, make_user):
    # Given a scheduled auction whose start has come, watched by one user
    auction = make_auction("english", start=False)
    fan = make_user()
    auction_watch(auction_id=auction.pk, user=fan)
    # When beat runs the start task twice
    assert start_auctions() == 1
    assert start_auctions() == 0
    # Then it is active, announced publicly once and the watcher was told once
    auction.refresh_from_db()
    assert auction.status == "active"
    [event] = RealTimeEvent.objects.filter(event_type="auction_status_changed")
    assert (event.visibility, event.event_data["old_status"], event.event_data["new_status"]) == (
        "public", "scheduled", "active",
    )
    [note] = Notification.objects.filter(user=fan)
    assert (note.event_type, note.message) == ("auction_started", "Vintage Watch Collection is now live")


def test_future_auction_does_not_start(make_auction):
    make_auction("english", start=False, starts_at=timezone.now() + timedelta(hours=1),
                 ends_at=timezone.now() + timedelta(hours=2))
    assert auctions_start_due() == 0


def test_ending_notice_respects_the_configured_window(make_auction, bidders, settings):
    settings.NP_AUCTION_ENDING_NOTICE_SECONDS = 120
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    assert auctions_send_ending_notices(now=auction.ends_at - timedelta(seconds=121)) == 0
    assert auctions_send_ending_notices(now=auction.ends_at - timedelta(seconds=90)) == 1
    assert send_auction_ending_notices() == 0  # already sent
    note = Notification.objects.get(user=bidders[0], event_type="auction_ending")
    assert (note.priority, note.message) == ("urgent", "Vintage Watch Collection ends in 1 min 30 s")


def test_vickrey_closes_with_the_second_price_revealed_only_at_the_end(make_auction, bidders):
    ann, ben, cat = bidders
    auction = make_auction("vickrey", reserve_price=Decimal("120.00"))
    bid_place(auction_id=auction.pk, bidder=ann, amount="200.00")
    bid_place(auction_id=auction.pk, bidder=ben, amount="150.00")
    bid_place(auction_id=auction.pk, bidder=cat, amount="130.00")
    assert auctions_close_due(now=auction.ends_at - timedelta(seconds=1)) == 0  # not yet
    Auction.objects.filter(pk=auction.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert close_auctions() == 1
    auction.refresh_from_db()
    assert (auction.status, auction.winner_id, auction.final_price) == (
        "completed", ann.pk, Decimal("150.00"),
    )
    statuses = dict(auction.bids.values_list("bidder_id", "status"))
    assert statuses == {ann.pk: "won", ben.pk: "lost", cat.pk: "lost"}
    closing = RealTimeEvent.objects.get(event_type="auction_status_changed",
                                        event_data__new_status="completed")
    assert closing.event_data["final_price"] == "150.00"
    assert "200" not in str(closing.event_data)  # the winner's own bid stays sealed
    assert Notification.objects.get(user=ann, event_type="auction_ended").message == (
        "Vintage Watch Collection ended. Winner: you"
    )


def test_reserve_not_met_closes_unsold(make_auction, bidders, seller):
    auction = make_auction("sealed_first_price", reserve_price=Decimal("500.00"))
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="300.00")
    assert auctions_close_due(now=auction.ends_at + timedelta(seconds=1)) == 1
    auction.refresh_from_db()
    assert (auction.status, auction.winner_id, auction.final_price) == ("completed", None, None)
    assert Notification.objects.get(user=seller, event_type="auction_ended").message == (
        "Vintage Watch Collection ended. Winner: no winner (reserve not met)"
    )
    assert list(auction.bids.values_list("status", flat=True)) == ["lost"]


def _close_with_watchers(make_auction, bidders, count: int) -> tuple[int, Auction]:
    """Close an auction watched by ``count`` users (one bid from Ann); the queries it took."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from auctions.models import AuctionWatcher
    from auctions.services import auction_close
    from users.models import User

    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount=Decimal("120.00"))
    tag = f"w{count}"
    users = User.objects.bulk_create(
        [User(email=f"{tag}-{n}@example.test", display_name=f"W{n}") for n in range(count)]
    )
    AuctionWatcher.objects.bulk_create([AuctionWatcher(auction=auction, user=u) for u in users])
    Auction.objects.filter(pk=auction.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with CaptureQueriesContext(connection) as queries:
        assert auction_close(auction_id=auction.pk) is not None
    return len(queries), auction


def test_closing_tells_every_watcher_once_in_queries_that_do_not_grow_with_them(
    make_auction, bidders
):
    # Given two auctions, one watched by 10 users and one by 200
    few, _ = _close_with_watchers(make_auction, bidders, 10)
    many, auction = _close_with_watchers(make_auction, bidders, 200)
    # Then the close of the second took no more queries than the first: the watchers are
    # told in one bulk fan-out, not a notify() each
    assert many <= few, (few, many)
    ended = Notification.objects.filter(
        auction_id=auction.pk, event_type="auction_ended"
    )
    # every watcher, the bidder and the seller, each once, under the per-user key
    assert ended.count() == 202
    keys = set(ended.values_list("idempotency_key", flat=True))
    assert len(keys) == 202 and all(k.startswith(f"auction:{auction.pk}:ended:") for k in keys)
    winner = ended.get(user=bidders[0])
    others = ended.exclude(user=bidders[0])
    assert winner.template_data["winner"] == "you"
    [shown] = {n.template_data["winner"] for n in others}
    assert shown.startswith("Bidder ")  # the winner's pseudonym, the same for everyone else
    # and a second close is a no-op
    from auctions.services import auction_close

    assert auction_close(auction_id=auction.pk) is None
    assert ended.count() == 202
