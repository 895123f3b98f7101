"""Who sees what of an auction (issue 15, item 5): the reserve price is the seller's and
staff's only; a draft is visible to its seller and staff only, on every read path (list,
detail, items, bidding, watching, the demo page, the events)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from auctions.models import Auction, AuctionStatus, AuctionWatcher
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "other", "seller", "staff")


@pytest.fixture
def viewers(seller, bidders, staff_user):
    return {"anonymous": None, "other": bidders[0], "seller": seller, "staff": staff_user}


@pytest.fixture
def as_role(api_client, viewers):
    def login(role):
        api_client.force_authenticate(viewers[role])
        return api_client

    return login


@pytest.fixture
def reserved(make_auction):
    return make_auction("english", title="Reserved Watch", reserve_price=Decimal("500.00"))


@pytest.fixture
def draft(make_auction):
    auction = make_auction("english", start=False, title="Secret Draft")
    Auction.objects.filter(pk=auction.pk).update(status=AuctionStatus.DRAFT)
    auction.refresh_from_db()
    return auction


@pytest.mark.parametrize(
    ("role", "reserve"),
    [("anonymous", "401"), ("other", None), ("seller", "500.00"), ("staff", "500.00")],
)
def test_the_reserve_price_is_shown_to_the_seller_and_staff_only(as_role, reserved, role, reserve):
    client = as_role(role)
    listed = client.get("/api/v1/auctions/")
    detail = client.get(f"/api/v1/auctions/{reserved.pk}/")
    if reserve == "401":
        assert (listed.status_code, detail.status_code) == (401, 401)
        assert "500" not in listed.content.decode() + detail.content.decode()
        return
    [row] = listed.json()["results"]
    assert row["reserve_price"] == reserve
    assert detail.json()["reserve_price"] == reserve


def test_the_reserve_stays_hidden_after_the_auction_ends(as_role, reserved, bidders):
    from auctions.services import auction_close, bid_place

    bid_place(auction_id=reserved.pk, bidder=bidders[1], amount="450.00")
    auction_close(auction_id=reserved.pk, now=reserved.ends_at)
    body = as_role("other").get(f"/api/v1/auctions/{reserved.pk}/").json()
    assert (body["status"], body["reserve_price"], body["winner"]) == ("completed", None, None)
    assert as_role("seller").get(f"/api/v1/auctions/{reserved.pk}/").json()["reserve_price"] == (
        "500.00"
    )
    # no event of the auction carries the amount; the close says only whether it was met
    events = RealTimeEvent.objects.filter(auction_id=reserved.pk)
    assert events.exists()
    assert all(
        "reserve_price" not in e.event_data and "500" not in str(e.event_data) for e in events
    )
    closed = events.get(event_type="auction_status_changed", event_data__new_status="completed")
    assert closed.event_data["reserve_met"] is False


@pytest.mark.parametrize(
    ("role", "sees"), [("anonymous", None), ("other", False), ("seller", True), ("staff", True)]
)
def test_a_draft_is_visible_to_its_seller_and_staff_only(as_role, draft, reserved, role, sees):
    client = as_role(role)
    item = draft.items.get()
    responses = {
        "list": client.get("/api/v1/auctions/"),
        "drafts": client.get("/api/v1/auctions/", {"status": "draft"}),
        "detail": client.get(f"/api/v1/auctions/{draft.pk}/"),
        "items": client.get("/api/v1/auction-items/"),
        "item": client.get(f"/api/v1/auction-items/{item.pk}/"),
    }
    if sees is None:
        assert {r.status_code for r in responses.values()} == {401}
        return
    listed = [a["id"] for a in responses["list"].json()["results"]]
    drafts = [a["id"] for a in responses["drafts"].json()["results"]]
    items = [i["id"] for i in responses["items"].json()["results"]]
    if sees:
        assert str(draft.pk) in listed and drafts == [str(draft.pk)]
        assert responses["detail"].json()["title"] == "Secret Draft"
        assert str(item.pk) in items and responses["item"].status_code == 200
    else:
        assert listed == [str(reserved.pk)] and drafts == []
        assert responses["detail"].status_code == 404
        assert str(item.pk) not in items and responses["item"].status_code == 404
        assert "Secret Draft" not in "".join(r.content.decode() for r in responses.values())


def test_others_cannot_bid_on_or_watch_a_draft_nor_learn_it_exists(as_role, draft):
    client = as_role("other")
    bid = client.post(f"/api/v1/auctions/{draft.pk}/bids/", {"amount": "150.00"}, format="json")
    watch = client.post(f"/api/v1/auctions/{draft.pk}/watch/")
    unwatch = client.delete(f"/api/v1/auctions/{draft.pk}/watch/")
    for response in (bid, watch, unwatch):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "AUCTION_NOT_FOUND"
    assert AuctionWatcher.objects.filter(auction=draft).count() == 0
    # the seller may watch their own draft
    assert as_role("seller").post(f"/api/v1/auctions/{draft.pk}/watch/").status_code == 200


def test_the_demo_page_shows_neither_drafts_nor_reserves(client, draft, reserved):
    page = client.get("/realtime/demo/").content.decode()
    assert "Reserved Watch" in page
    assert "Secret Draft" not in page and str(draft.pk) not in page
    assert "500.00" not in page
