"""The REST API: sending, the inbox, preferences."""

from __future__ import annotations

import pytest
from django.utils import timezone

from deliveries.models import Notification, NotificationDelivery, UserNotificationPreference
from deliveries.services import notify
from users.services import token_create

pytestmark = pytest.mark.usefixtures("catalogue")
URL = "/api/v1/notifications/"


@pytest.fixture
def service_client(api_client, make_user):
    owner = make_user(email="backend@example.test")
    _token, raw = token_create(user=owner, name="backend", is_service=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_client


def _deliver_in_app(notification):
    """Stand-in for the worker's bookkeeping: the in-app delivery went out."""
    NotificationDelivery.objects.filter(notification=notification, delivery_type="in_app").update(
        status="sent", sent_at=timezone.now()
    )


def test_service_token_sends_and_gets_201_with_deliveries(service_client, user):
    response = service_client.post(
        URL,
        {
            "user_id": str(user.pk),
            "template_key": "outbid",
            "context": {"amount": "$9"},
            "channels": ["email", "in_app"],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="req-1",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True
    assert body["notification"]["title"] == "You've been outbid"
    assert [(d["delivery_type"], d["status"]) for d in body["deliveries"]] == [
        ("email", "pending"),
        ("in_app", "pending"),
    ]
    # the same Idempotency-Key and body: the first result again, nothing new written
    again = service_client.post(
        URL,
        {
            "user_id": str(user.pk),
            "template_key": "outbid",
            "context": {"amount": "$9"},
            "channels": ["email", "in_app"],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="req-1",
    )
    assert again.status_code == 200
    assert again.json()["notification"]["id"] == body["notification"]["id"]
    assert Notification.objects.count() == 1


def test_staff_may_send_plain_users_may_not(api_client, staff_user, user, other_user):
    payload = {"user_id": str(other_user.pk), "title": "Hi", "message": "There"}
    api_client.force_authenticate(user)
    assert api_client.post(URL, payload, format="json").status_code == 403
    api_client.force_authenticate(staff_user)
    assert api_client.post(URL, payload, format="json").status_code == 201


def test_plain_token_may_not_send(api_client, user):
    _token, raw = token_create(user=user, name="mine")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.post(
        URL, {"user_id": str(user.pk), "title": "a", "message": "b"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"template_key": "nope", "context": {}}, "TEMPLATE_NOT_FOUND", "template_key"),
        ({"template_key": "outbid", "context": {}}, "TEMPLATE_VARIABLE_MISSING", "context.amount"),
        (
            {"template_key": "outbid", "context": {"amount": "1"}, "channels": ["pigeon"]},
            "UNKNOWN_CHANNEL",
            "channels",
        ),
        (
            {
                "template_key": "outbid",
                "context": {"amount": "1"},
                "channels": ["webhook"],
                "webhook_url": "not a url",
            },
            "INVALID_URL",
            "webhook_url",
        ),
        (
            {"template_key": "outbid", "context": {"amount": "1"}, "action_url": "javascript:x"},
            "INVALID_URL",
            "action_url",
        ),
        (
            {"template_key": "outbid", "context": {"amount": "1", "blob": "x" * 100_000}},
            "PAYLOAD_TOO_LARGE",
            "context",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    service_client, user, payload, code, field
):
    response = service_client.post(URL, {"user_id": str(user.pk), **payload}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert list(error["fields"]) == [field]
    assert Notification.objects.count() == 0
    assert NotificationDelivery.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"email": "someone@", "channels": ["email"]}, "INVALID_RECIPIENT", "email"),
        ({"phone": "555-0100", "channels": ["sms"]}, "INVALID_RECIPIENT", "phone"),
        ({"user_id": "00000000-0000-0000-0000-000000000000"}, "INVALID_RECIPIENT", "user_id"),
    ],
)
def test_malformed_addresses_are_400(service_client, payload, code, field):
    response = service_client.post(
        URL, {"template_key": "outbid", "context": {"amount": "1"}, **payload}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert list(response.json()["error"]["fields"]) == [field]
    assert NotificationDelivery.objects.count() == 0


def test_inbox_lists_own_sent_in_app_notifications_and_filters(api_client, user, other_user):
    mine = notify(user, template_key="outbid", context={"amount": "1"}, channels=["in_app"])
    marketing = notify(user, title="Sale", message="50% off", category="marketing")
    not_yet = notify(user, title="Later", message="Pending still")
    theirs = notify(other_user, title="Theirs", message="x")
    for result in (mine, marketing, theirs):
        _deliver_in_app(result.notification)
    api_client.force_authenticate(user)

    listed = api_client.get("/api/v1/inbox/").json()["results"]
    assert {n["id"] for n in listed} == {str(mine.notification.pk), str(marketing.notification.pk)}
    assert str(not_yet.notification.pk) not in {n["id"] for n in listed}
    only_marketing = api_client.get("/api/v1/inbox/?category=marketing").json()["results"]
    assert [n["title"] for n in only_marketing] == ["Sale"]
    assert api_client.get("/api/v1/inbox/unread_count/").json() == {"unread_count": 2}

    read = api_client.post(f"/api/v1/inbox/{mine.notification.pk}/read/")
    assert read.status_code == 200
    assert read.json()["is_read"] is True and read.json()["status"] == "read"
    unread = api_client.get("/api/v1/inbox/?unread=true").json()["results"]
    assert [n["title"] for n in unread] == ["Sale"]
    assert api_client.post("/api/v1/inbox/read_all/").json() == {"updated": 1}
    assert api_client.get("/api/v1/inbox/unread_count/").json() == {"unread_count": 0}

    archived = api_client.post(f"/api/v1/inbox/{marketing.notification.pk}/archive/")
    assert archived.json()["is_archived"] is True
    assert [n["title"] for n in api_client.get("/api/v1/inbox/").json()["results"]] == [
        "You've been outbid"
    ]
    # someone else's notification is 404 for every action
    other_id = theirs.notification.pk
    assert api_client.get(f"/api/v1/inbox/{other_id}/").status_code == 404
    assert api_client.post(f"/api/v1/inbox/{other_id}/read/").status_code == 404
    assert api_client.post(f"/api/v1/inbox/{other_id}/archive/").status_code == 404
    assert Notification.objects.get(pk=other_id).is_read is False


def test_preferences_crud_is_limited_to_own_rows(api_client, user, other_user):
    theirs = UserNotificationPreference.objects.create(
        user=other_user, invitation_type="outbid", delivery_method="email", is_enabled=False
    )
    api_client.force_authenticate(user)
    created = api_client.post(
        "/api/v1/preferences/",
        {
            "invitation_type": "outbid",
            "delivery_method": "email",
            "is_enabled": False,
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "timezone": "Europe/Berlin",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    pref_id = created.json()["id"]
    assert UserNotificationPreference.objects.get(pk=pref_id).user_id == user.pk
    duplicate = api_client.post(
        "/api/v1/preferences/",
        {"invitation_type": "outbid", "delivery_method": "email"},
        format="json",
    )
    assert duplicate.status_code == 400
    assert list(duplicate.json()["error"]["fields"]) == ["invitation_type"]
    bad_tz = api_client.patch(
        f"/api/v1/preferences/{pref_id}/", {"timezone": "Mars/Base"}, format="json"
    )
    assert bad_tz.status_code == 400
    assert list(bad_tz.json()["error"]["fields"]) == ["timezone"]
    patched = api_client.patch(
        f"/api/v1/preferences/{pref_id}/", {"is_enabled": True}, format="json"
    )
    assert patched.json()["is_enabled"] is True
    assert [p["id"] for p in api_client.get("/api/v1/preferences/").json()["results"]] == [pref_id]
    assert api_client.get(f"/api/v1/preferences/{theirs.pk}/").status_code == 404
    assert (
        api_client.patch(
            f"/api/v1/preferences/{theirs.pk}/", {"is_enabled": True}, format="json"
        ).status_code
        == 404
    )
    assert api_client.delete(f"/api/v1/preferences/{theirs.pk}/").status_code == 404
    assert UserNotificationPreference.objects.get(pk=theirs.pk).is_enabled is False
    assert api_client.delete(f"/api/v1/preferences/{pref_id}/").status_code == 204
