"""The auctions API: listing with filters, bidding (201 / 400 naming the field / 409),
watch and unwatch."""

from __future__ import annotations

import pytest

from auctions.models import AuctionWatcher, Bid

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_user(api_client):
    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


def test_list_filters_by_status_and_type(as_user, make_auction, bidders):
    english = make_auction("english")
    make_auction("vickrey", title="Sealed one")
    make_auction("dutch", start=False, title="Later")
    client = as_user(bidders[0])

    body = client.get("/api/v1/auctions/", {"status": "active", "type": "english"}).json()
    assert [a["id"] for a in body["results"]] == [str(english.pk)]
    row = body["results"][0]
    assert (row["bidding_supported"], row["is_watching"], row["items"][0]["title"]) == (
        True, False, "1960 Omega Seamaster",
    )
    scheduled = client.get("/api/v1/auctions/", {"status": "scheduled"}).json()["results"]
    assert [(a["title"], a["bidding_supported"]) for a in scheduled] == [("Later", True)]
    item = english.items.get()
    got = client.get(f"/api/v1/auction-items/{item.pk}/").json()
    assert got["auction"] == str(english.pk)
    listed = client.get("/api/v1/auction-items/", {"auction": str(english.pk)}).json()["results"]
    assert [i["id"] for i in listed] == [str(item.pk)]


def test_bid_is_placed(as_user, make_auction, bidders):
    auction = make_auction("english")
    response = as_user(bidders[0]).post(
        f"/api/v1/auctions/{auction.pk}/bids/", {"amount": "100.00"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["amount"], body["status"], body["current_price"]) == ("100.00", "leading", "100.00")


@pytest.mark.parametrize(
    ("amount", "code", "reason"),
    [
        ("99.99", "BID_TOO_LOW", "amount must be at least 100.00 USD"),
        ("ten", "BID_AMOUNT_INVALID", "amount must be a number"),
        ("1.001", "BID_AMOUNT_INVALID", "amount can have at most two decimals"),
    ],
)
def test_bad_amount_is_400_naming_the_field(as_user, make_auction, bidders, amount, code, reason):
    auction = make_auction("english")
    response = as_user(bidders[0]).post(
        f"/api/v1/auctions/{auction.pk}/bids/", {"amount": amount}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"error": {"code": code, "message": reason, "fields": {"amount": [reason]}}}
    assert Bid.objects.count() == 0


def test_missing_amount_is_400(as_user, make_auction, bidders):
    auction = make_auction("english")
    response = as_user(bidders[0]).post(f"/api/v1/auctions/{auction.pk}/bids/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"amount": ["This field is required."]}


def test_off_clock_dutch_bid_is_400_and_inactive_auction_is_409(as_user, make_auction, bidders):
    client = as_user(bidders[0])
    dutch = make_auction("dutch")
    response = client.post(f"/api/v1/auctions/{dutch.pk}/bids/", {"amount": "90"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BID_NOT_CLOCK_PRICE"
    assert response.json()["error"]["message"] == "a Dutch bid must be the clock price, 100.00 USD"

    later = make_auction("english", start=False, title="Later")
    response = client.post(f"/api/v1/auctions/{later.pk}/bids/", {"amount": "100"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "AUCTION_NOT_ACTIVE"


def test_watch_and_unwatch(as_user, make_auction, bidders):
    auction = make_auction("english")
    client = as_user(bidders[0])
    assert client.post(f"/api/v1/auctions/{auction.pk}/watch/").status_code == 200
    assert client.post(f"/api/v1/auctions/{auction.pk}/watch/").status_code == 200  # idempotent
    assert AuctionWatcher.objects.filter(auction=auction, user=bidders[0]).count() == 1
    assert client.get(f"/api/v1/auctions/{auction.pk}/").json()["is_watching"] is True
    assert client.delete(f"/api/v1/auctions/{auction.pk}/watch/").status_code == 204
    assert not AuctionWatcher.objects.filter(auction=auction).exists()


def test_anonymous_clients_are_refused(api_client, make_auction):
    auction = make_auction("english")
    response = api_client.post(f"/api/v1/auctions/{auction.pk}/bids/", {"amount": "100"})
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "NOT_AUTHENTICATED"
