"""Saved audiences: each kind selects the right users; the staff CRUD API with its
recipient count; topics users join and leave through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from auctions.models import Auction, AuctionWatcher
from campaigns.audience import saved_audience_users
from campaigns.errors import BatchError
from campaigns.models import Audience, AudienceMember, TopicSubscription
from campaigns.services import audience_members_from_csv, audience_save

pytestmark = pytest.mark.django_db


def emails(audience: Audience) -> list[str]:
    return sorted(saved_audience_users(audience).values_list("email", flat=True))


@pytest.fixture
def people(make_user):
    return {
        "ana": make_user(email="ana@a.test", region="eu-west", locale="pt-BR"),
        "ben": make_user(email="ben@a.test", region="us-east", locale="en"),
        "cy": make_user(email="cy@a.test", region="EU-WEST", locale="pt"),
        "gone": make_user(email="gone@a.test", region="eu-west", locale="pt", is_active=False),
    }


def test_all_region_and_locale_audiences_select_active_matching_users(people):
    every = audience_save(name="everyone", kind="all")
    eu = audience_save(name="eu", kind="region", value="eu-west")
    pt = audience_save(name="portuguese", kind="locale", value="pt")
    pt_br = audience_save(name="brazil", kind="locale", value="pt-BR")

    assert emails(every) == ["ana@a.test", "ben@a.test", "cy@a.test"]
    assert emails(eu) == ["ana@a.test", "cy@a.test"]  # case-insensitive, active only
    assert emails(pt) == ["ana@a.test", "cy@a.test"]  # pt matches pt-BR too
    assert emails(pt_br) == ["ana@a.test"]


def test_auction_watchers_list_and_topic_audiences(people, make_user):
    seller = make_user(email="seller@a.test")
    now = timezone.now()
    auction = Auction.objects.create(
        title="Watch", seller=seller, auction_type="english", starts_at=now,
        ends_at=now + timedelta(hours=1),
    )
    other = Auction.objects.create(
        title="Other", seller=seller, auction_type="english", starts_at=now,
        ends_at=now + timedelta(hours=1),
    )
    AuctionWatcher.objects.create(auction=auction, user=people["ana"])
    AuctionWatcher.objects.create(auction=auction, user=people["gone"])
    AuctionWatcher.objects.create(auction=other, user=people["ben"])
    watchers = audience_save(name="watchers", kind="auction_watchers", value=str(auction.pk))
    listed = audience_save(
        name="vips", kind="list", user_ids=[people["ben"].pk, people["cy"].pk]
    )
    topic = audience_save(name="Weekly news", kind="topic", value="weekly-news")
    TopicSubscription.objects.create(audience=topic, user=people["cy"])

    assert emails(watchers) == ["ana@a.test"]
    assert emails(listed) == ["ben@a.test", "cy@a.test"]
    assert emails(topic) == ["cy@a.test"]


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"kind": "region"}, "value", "needs a value"),
        ({"kind": "all", "value": "x"}, "value", "takes no value"),
        ({"kind": "galaxy"}, "kind", "unknown kind"),
        ({"kind": "auction_watchers", "value": "12"}, "value", "not an auction id"),
        ({"kind": "list", "user_ids": ["nope"]}, "user_ids", "not a user id"),
        ({"kind": "region", "value": "eu", "user_ids": []}, "user_ids", "only a list"),
    ],
)
def test_bad_audiences_are_refused_with_their_field(fields, field, fragment):
    with pytest.raises(BatchError) as caught:
        audience_save(name="bad", **fields)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert not Audience.objects.exists()


def test_csv_members_replace_the_list_and_bad_csv_changes_nothing(people):
    listed = audience_save(name="csv list", kind="list", user_ids=[people["ben"].pk])
    counts = audience_members_from_csv(
        listed, f"email\nana@a.test\nnobody@a.test\n{people['cy'].pk}\n".encode()
    )
    assert counts == {"entries": 3, "members": 2, "unmatched": 1}
    assert emails(listed) == ["ana@a.test", "cy@a.test"]

    with pytest.raises(BatchError) as caught:
        audience_members_from_csv(listed, b"ana@a.test\nnot-an-id\n")
    assert "row 2: 'not-an-id'" in caught.value.message
    assert AudienceMember.objects.filter(audience=listed).count() == 2


# --- API ------------------------------------------------------------------------------------


def test_staff_crud_and_count(api_client, staff_user, people):
    api_client.force_authenticate(staff_user)
    created = api_client.post(
        "/api/v1/audiences/",
        {"name": "eu", "kind": "region", "value": "eu-west"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert api_client.get(f"/api/v1/audiences/{pk}/count/").json() == {
        "id": pk, "recipients": 2
    }
    listed = api_client.post(
        "/api/v1/audiences/",
        {"name": "two", "kind": "list", "user_ids": [str(people["ana"].pk), str(people["ben"].pk)]},
        format="json",
    )
    assert listed.status_code == 201
    assert listed.json()["members"] == 2
    patched = api_client.patch(
        f"/api/v1/audiences/{pk}/", {"value": "us-east"}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["value"] == "us-east"
    assert api_client.get(f"/api/v1/audiences/{pk}/count/").json()["recipients"] == 1
    assert api_client.delete(f"/api/v1/audiences/{pk}/").status_code == 204
    assert list(Audience.objects.values_list("name", flat=True)) == ["two"]


def test_api_bad_audience_is_400_with_the_field(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    response = api_client.post(
        "/api/v1/audiences/", {"name": "x", "kind": "region"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"value": ["a region audience needs a value"]}
    duplicate = api_client.post("/api/v1/audiences/", {"name": "a", "kind": "all"}, format="json")
    again = api_client.post("/api/v1/audiences/", {"name": "a", "kind": "all"}, format="json")
    assert duplicate.status_code == 201 and again.status_code == 400
    assert "name" in again.json()["error"]["fields"]


def test_audiences_api_is_staff_only(api_client, user):
    api_client.force_authenticate(user)
    assert api_client.get("/api/v1/audiences/").status_code == 403
    assert api_client.post(
        "/api/v1/audiences/", {"name": "x", "kind": "all"}, format="json"
    ).status_code == 403


def test_topic_join_and_leave_through_the_api(api_client, user, other_user):
    topic = audience_save(name="Weekly news", kind="topic", value="weekly-news")
    api_client.force_authenticate(user)

    joined = api_client.post("/api/v1/topics/weekly-news/subscription/")
    again = api_client.post("/api/v1/topics/weekly-news/subscription/")
    assert (joined.status_code, again.status_code) == (201, 200)
    assert joined.json() == {
        "key": "weekly-news", "name": "Weekly news", "description": "", "subscribed": True
    }
    assert list(saved_audience_users(topic)) == [user]
    listing = api_client.get("/api/v1/topics/").json()
    assert [(t["key"], t["subscribed"]) for t in listing["results"]] == [("weekly-news", True)]

    # another user sees the topic unsubscribed, and leaving touches only their own row
    api_client.force_authenticate(other_user)
    assert api_client.get("/api/v1/topics/").json()["results"][0]["subscribed"] is False
    assert api_client.delete("/api/v1/topics/weekly-news/subscription/").status_code == 204
    assert list(saved_audience_users(topic)) == [user]

    api_client.force_authenticate(user)
    assert api_client.delete("/api/v1/topics/weekly-news/subscription/").status_code == 204
    assert list(saved_audience_users(topic)) == []
    missing = api_client.post("/api/v1/topics/nope/subscription/")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "TOPIC_NOT_FOUND"


def test_topics_need_a_signed_in_user(api_client):
    audience_save(name="t", kind="topic", value="t")
    assert api_client.post("/api/v1/topics/t/subscription/").status_code in (401, 403)


def test_an_audience_a_broadcast_uses_cannot_be_deleted(api_client, staff_user, catalogue):
    from campaigns.services import broadcast_create

    api_client.force_authenticate(staff_user)
    audience = audience_save(name="eu", kind="region", value="nowhere")
    broadcast_create(
        audience=audience, template_key="auction_started", channels=["in_app"],
        context={"auction_title": "x"},
    )
    response = api_client.delete(f"/api/v1/audiences/{audience.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "AUDIENCE_IN_USE"
    assert Audience.objects.filter(pk=audience.pk).exists()
