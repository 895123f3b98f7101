"""The auction lifecycle through the API: create (scheduled or draft), change, items,
schedule, cancel and close — by the seller or staff only — with 400s naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from auctions.models import Auction, AuctionRuleState
from auctions.services import bid_place
from deliveries.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(api_client):
    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


def body(**over):
    now = timezone.now()
    data = {
        "title": "Clock of the Year", "auction_type": "dutch",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "starting_price": "200.00", "reserve_price": "120.00", "currency": "eur",
        "config": {"decrement": "10.00", "tick_seconds": 30, "floor_price": "100.00"},
        "items": [{"title": "Longcase clock", "quantity": 1}],
    }
    data.update(over)
    return data


def test_create_schedules_an_auction_with_its_type_settings(client_for, seller):
    response = client_for(seller).post("/api/v1/auctions/", body(), format="json")
    assert response.status_code == 201, response.json()
    got = response.json()
    assert (got["status"], got["currency"], got["seller"], got["reserve_price"]) == (
        "scheduled", "EUR", str(seller.pk), "120.00")
    assert got["rules"]["config"] == {"decrement": "10.00", "tick_seconds": 30,
                                      "floor_price": "100.00"}
    assert [i["title"] for i in got["items"]] == ["Longcase clock"]
    assert AuctionRuleState.objects.get(auction_id=got["id"]).config["decrement"] == "10.00"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"config": {"tick_seconds": 0}}, "config.tick_seconds"),
        ({"auction_type": "buy_it_now", "starting_price": "0", "config": {}},
         "config.buy_now_price"),
        ({"config": {"decrement": "10", "colour": "red"}}, "config.colour"),
        ({"ends_at": (timezone.now() - timedelta(days=1)).isoformat()}, "ends_at"),
        ({"currency": "E1R"}, "currency"),
        ({"starting_price": "abc"}, "starting_price"),
        ({"auction_type": "blind"}, "auction_type"),
    ],
)
def test_bad_input_is_400_naming_the_field(client_for, seller, over, field):
    response = client_for(seller).post("/api/v1/auctions/", body(**over), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    assert not Auction.objects.exists()


def test_draft_is_private_until_scheduled_and_only_the_seller_changes_it(
    client_for, seller, bidders, staff_user
):
    created = client_for(seller).post("/api/v1/auctions/", body(draft=True), format="json").json()
    url = f"/api/v1/auctions/{created['id']}/"
    assert created["status"] == "draft"
    other = client_for(bidders[0])
    assert other.get(url).status_code == 404
    assert other.post(url + "schedule/").status_code == 404
    mine = client_for(seller)
    changed = mine.patch(url, {"reserve_price": "150.00", "currency": "GBP"}, format="json")
    assert changed.status_code == 200 and changed.json()["currency"] == "GBP"
    item = mine.post(url + "items/", {"title": "Pendulum"}, format="json")
    assert item.status_code == 201
    assert mine.post(url + "schedule/").json()["status"] == "scheduled"
    assert mine.post(url + "schedule/").status_code == 409
    other = client_for(bidders[0])
    assert other.get(url).json()["reserve_price"] is None  # the seller's secret
    refused = other.patch(url, {"title": "Mine now"}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "AUCTION_NOT_YOURS")
    assert client_for(staff_user).post(url + "cancel/", {"reason": "duplicate"},
                                       format="json").json()["status"] == "cancelled"


def test_cancel_a_running_auction_tells_the_bidders_and_stops_bids(
    client_for, make_auction, seller, bidders
):
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    response = client_for(seller).post(f"/api/v1/auctions/{auction.pk}/cancel/", {},
                                       format="json")
    assert response.json()["status"] == "cancelled"
    note = Notification.objects.get(user=bidders[0], event_type="auction_cancelled")
    assert note.message == "Vintage Watch Collection was cancelled: cancelled by the seller"
    again = client_for(bidders[1]).post(f"/api/v1/auctions/{auction.pk}/bids/",
                                        {"amount": "200"}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "AUCTION_NOT_ACTIVE")
    assert client_for(seller).patch(f"/api/v1/auctions/{auction.pk}/", {"title": "x"},
                                    format="json").status_code == 409


def test_seller_closes_now_and_the_highest_bid_wins(client_for, make_auction, seller, bidders):
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=bidders[0], amount="100")
    bid_place(auction_id=auction.pk, bidder=bidders[1], amount="130")
    assert client_for(bidders[0]).post(f"/api/v1/auctions/{auction.pk}/close/").status_code == 403
    closed = client_for(seller).post(f"/api/v1/auctions/{auction.pk}/close/").json()
    assert (closed["status"], closed["final_price"]) == ("completed", "130.00")
    auction.refresh_from_db()
    assert auction.winner == bidders[1] and auction.ends_at <= timezone.now()


def test_silent_sheet_is_open_to_signed_in_attendees_sealed_is_not(
    client_for, make_auction, bidders
):
    silent = make_auction("silent")
    bid_place(auction_id=silent.pk, bidder=bidders[0], amount="100")
    sheet = client_for(bidders[1]).get(f"/api/v1/auctions/{silent.pk}/bids/").json()
    rows = sheet["results"] if isinstance(sheet, dict) else sheet
    assert [(r["amount"], r["bidder"].startswith("Bidder ")) for r in rows] == [("100.00", True)]
    sealed = make_auction("vickrey", title="Sealed")
    bid_place(auction_id=sealed.pk, bidder=bidders[0], amount="150")
    hidden = client_for(bidders[1]).get(f"/api/v1/auctions/{sealed.pk}/bids/").json()
    assert (hidden["results"] if isinstance(hidden, dict) else hidden) == []


def test_anonymous_cannot_create(api_client):
    assert api_client.post("/api/v1/auctions/", body(), format="json").status_code in (401, 403)


def test_admin_actions_cancel_and_close_through_the_services(client, make_auction, bidders):
    from django.urls import reverse

    from users.models import User

    running = make_auction("english")
    bid_place(auction_id=running.pk, bidder=bidders[0], amount="100")
    other = make_auction("english", title="Other")
    client.force_login(User.objects.create_superuser(email="root@example.test", password=None))
    url = reverse("admin:auctions_auction_changelist")
    client.post(url, {"action": "close_selected", "_selected_action": [running.pk]})
    client.post(url, {"action": "cancel_selected", "_selected_action": [other.pk]})
    running.refresh_from_db()
    other.refresh_from_db()
    assert (running.status, running.winner, other.status) == ("completed", bidders[0], "cancelled")
    assert Notification.objects.filter(user=bidders[0], event_type="auction_ended").exists()


def test_japanese_enter_and_drop_out_through_the_api(client_for, make_auction, bidders):
    from auctions.services import auction_start

    auction = make_auction("japanese", start=False, starts_at=timezone.now() + timedelta(seconds=2))
    url = f"/api/v1/auctions/{auction.pk}/"
    for who in bidders[:2]:
        assert client_for(who).post(url + "enter/").status_code == 201
    early = client_for(bidders[0]).post(url + "drop-out/")
    assert (early.status_code, early.json()["error"]["code"]) == (409, "AUCTION_NOT_ACTIVE")
    Auction.objects.filter(pk=auction.pk).update(starts_at=timezone.now() - timedelta(seconds=1))
    auction_start(auction_id=auction.pk)
    late = client_for(bidders[2]).post(url + "enter/")
    assert (late.status_code, late.json()["error"]["code"]) == (409, "ENTRY_CLOSED")
    left = client_for(bidders[0]).post(url + "drop-out/")
    assert (left.status_code, left.json()["status"]) == (200, "dropped")
    got = client_for(bidders[1]).get(url).json()
    assert (got["status"], got["you_won"], got["final_price"]) == ("completed", True, "100.00")


def test_proxy_bid_through_the_api_keeps_the_maximum_private(client_for, make_auction, bidders):
    auction = make_auction("english")
    url = f"/api/v1/auctions/{auction.pk}/bids/"
    bad = client_for(bidders[0]).post(url, {"amount": "150", "max_amount": "120"}, format="json")
    assert bad.status_code == 400 and "max_amount" in bad.json()["error"]["fields"]
    ok = client_for(bidders[0]).post(url, {"amount": "100", "max_amount": "300"}, format="json")
    assert ok.status_code == 201
    sheet = client_for(bidders[1]).get(url).json()
    rows = sheet["results"] if isinstance(sheet, dict) else sheet
    assert "max_amount" not in rows[0] and "300" not in str(rows)
