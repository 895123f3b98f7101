"""``/api/v1/devices/``: a user registers, lists and deletes their own push devices."""

from __future__ import annotations

import pytest

from users.models import Device

pytestmark = pytest.mark.django_db

URL = "/api/v1/devices/"
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/wp/sub-1",
    "keys": {"p256dh": "BExamplePublicKey", "auth": "c2VjcmV0"},
}


@pytest.fixture
def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_register_is_idempotent_on_the_token(as_user, user):
    body = {"kind": "fcm", "token": "tok-1", "platform": "android", "label": "Pixel"}

    first = as_user.post(URL, body, format="json")
    again = as_user.post(URL, {**body, "label": ""}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.data["id"] == again.data["id"]
    assert again.data["label"] == "Pixel"  # kept when not sent again
    assert Device.objects.filter(user=user).count() == 1
    assert again.data["last_seen_at"] >= first.data["last_seen_at"]


def test_register_web_push_stores_the_subscription_and_the_user_agent(as_user):
    response = as_user.post(
        URL,
        {"kind": "webpush", "subscription": SUBSCRIPTION},
        format="json",
        HTTP_USER_AGENT="Firefox/140",
    )

    assert response.status_code == 201, response.data
    assert response.data["address"] == SUBSCRIPTION["endpoint"]
    assert response.data["subscription"] == SUBSCRIPTION
    assert response.data["label"] == "Firefox/140"
    assert response.data["active"] is True


def test_re_registering_enables_a_disabled_device(as_user, user):
    Device.objects.create(
        user=user, kind="fcm", address="tok-1", disabled_at="2026-01-01T00:00Z", disabled_reason="x"
    )

    response = as_user.post(URL, {"kind": "fcm", "token": "tok-1"}, format="json")

    assert response.status_code == 200
    assert (response.data["active"], response.data["disabled_reason"]) == (True, "")


def test_someone_elses_token_moves_to_the_caller(as_user, user, other_user):
    theirs = Device.objects.create(user=other_user, kind="fcm", address="tok-shared")

    response = as_user.post(URL, {"kind": "fcm", "token": "tok-shared"}, format="json")

    assert response.status_code == 200
    assert response.data["id"] == theirs.pk
    theirs.refresh_from_db()
    assert theirs.user_id == user.pk


def test_list_shows_only_own_devices(as_user, user, other_user):
    Device.objects.create(user=user, kind="fcm", address="mine")
    Device.objects.create(user=other_user, kind="fcm", address="theirs")

    response = as_user.get(URL)

    assert response.status_code == 200
    assert [d["address"] for d in response.data["results"]] == ["mine"]


def test_delete_own_device_and_404_for_someone_elses(as_user, user, other_user):
    mine = Device.objects.create(user=user, kind="fcm", address="mine")
    theirs = Device.objects.create(user=other_user, kind="fcm", address="theirs")

    assert as_user.delete(f"{URL}{theirs.pk}/").status_code == 404
    assert as_user.delete(f"{URL}{mine.pk}/").status_code == 204
    assert list(Device.objects.values_list("address", flat=True)) == ["theirs"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"kind": "apns", "token": "t"}, "kind", "not a valid choice"),
        ({"kind": "fcm"}, "token", "required for kind fcm"),
        ({"kind": "fcm", "token": "t", "subscription": SUBSCRIPTION}, "subscription", "only"),
        ({"kind": "webpush"}, "subscription", "required for kind webpush"),
        (
            {"kind": "webpush", "subscription": {**SUBSCRIPTION, "endpoint": "http://x.test/"}},
            "subscription.endpoint",
            "valid URL",
        ),
        (
            {"kind": "webpush", "subscription": {"endpoint": SUBSCRIPTION["endpoint"]}},
            "subscription.keys",
            "required",
        ),
        ({"kind": "fcm", "token": "t" * 256}, "token", "255"),
    ],
)
def test_bad_input_is_400_with_the_field_and_reason(as_user, body, field, reason):
    response = as_user.post(URL, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert any(reason in message for message in error["fields"][field]), error
    assert Device.objects.count() == 0


def test_anonymous_is_refused(api_client):
    assert api_client.get(URL).status_code in (401, 403)
    assert api_client.post(URL, {"kind": "fcm", "token": "t"}, format="json").status_code in (
        401,
        403,
    )
