"""Idempotency-Key on POST /notifications/: scoped to the caller, fingerprinted, windowed.

- a second caller's identical key is its own key (it never sees the first caller's data);
- the same key with the same body returns the first result; with another body it is
  422 IDEMPOTENCY_KEY_REUSED and nothing is written;
- past NP_IDEMPOTENCY_KEY_TTL_HOURS the key is free again;
- API keys cannot reach the platform's own keys (invitation:…, batch:…);
- concurrent identical requests over real HTTP to a threaded server write one notification.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from deliveries.models import ApiIdempotencyKey, Notification, NotificationDelivery
from deliveries.services import notify
from users.services import token_create

URL = "/api/v1/notifications/"


def _service_token(make_user, email: str) -> str:
    owner = make_user(email=email)
    _token, raw = token_create(user=owner, name=email, is_service=True)
    return raw


def _post(client, token: str, body: dict, key: str | None = "order-42", **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(URL, json.dumps(body), content_type="application/json", **headers, **extra)


def _body(user, title: str = "Order shipped", **fields) -> dict:
    return {
        "user_id": str(user.pk),
        "title": title,
        "message": "It is on its way",
        "channels": ["in_app"],
        **fields,
    }


@pytest.mark.django_db
def test_a_second_caller_reusing_a_key_gets_its_own_notification(client, make_user):
    alice, bob = make_user(email="alice@x.test"), make_user(email="bob@x.test")
    shop = _service_token(make_user, "shop@x.test")
    bank = _service_token(make_user, "bank@x.test")
    carrier = _service_token(make_user, "carrier@x.test")
    # Given the shop sent alice a notification with key order-42
    first = _post(client, shop, _body(alice, "Your order shipped"))
    assert first.status_code == 201

    # When the bank uses the same key with the very same body, and the carrier for bob
    same_body = _post(client, bank, _body(alice, "Your order shipped"))
    other = _post(client, carrier, _body(bob, "Your parcel is out for delivery"))

    # Then each is a new notification of the caller's own, never the shop's
    assert same_body.status_code == 201, same_body.json()
    assert same_body.json()["created"] is True
    assert other.status_code == 201, other.json()
    assert other.json()["notification"]["user_id"] == str(bob.pk)
    assert other.json()["notification"]["title"] == "Your parcel is out for delivery"
    ids = {r.json()["notification"]["id"] for r in (first, other, same_body)}
    assert len(ids) == 3
    assert Notification.objects.count() == 3
    # and the shop's repeat still answers the shop's notification
    again = _post(client, shop, _body(alice, "Your order shipped"))
    assert again.status_code == 200
    assert again.json()["notification"]["id"] == first.json()["notification"]["id"]


@pytest.mark.django_db
def test_a_user_session_and_a_token_of_the_same_user_are_different_callers(
    api_client, client, make_user, user
):
    staff = make_user(email="ops@x.test", is_staff=True)
    _token, raw = token_create(user=staff, name="ops", is_service=True)
    by_token = _post(client, raw, _body(user))
    api_client.force_authenticate(staff)
    by_session = api_client.post(URL, _body(user), format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    assert (by_token.status_code, by_session.status_code) == (201, 201)
    assert by_token.json()["notification"]["id"] != by_session.json()["notification"]["id"]


@pytest.mark.django_db
def test_the_same_key_and_body_returns_the_first_result(client, make_user, user):
    token = _service_token(make_user, "shop@x.test")
    first = _post(client, token, _body(user))
    # the same body with its keys in another order and other whitespace
    reordered = dict(reversed(list(_body(user).items())))
    again = client.post(
        URL,
        json.dumps(reordered, indent=3),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY="order-42",
    )
    # the key may come in the body too: the same caller, the same key
    in_body = _post(client, token, {**_body(user), "idempotency_key": "order-42"}, key=None)

    assert first.status_code == 201
    assert (again.status_code, in_body.status_code) == (200, 200)
    assert again.json()["created"] is False
    assert again.json()["notification"]["id"] == first.json()["notification"]["id"]
    assert again.json()["deliveries"] == first.json()["deliveries"]
    assert in_body.json()["notification"]["id"] == first.json()["notification"]["id"]
    assert Notification.objects.count() == 1
    assert NotificationDelivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"title": "Order cancelled"},
        {"channels": ["in_app", "email"]},
        {"priority": "urgent"},
        {"context": {"a": 1}},
    ],
)
def test_the_same_key_with_another_body_is_422(client, make_user, user, change):
    token = _service_token(make_user, "shop@x.test")
    first = _post(client, token, _body(user))

    reused = _post(client, token, {**_body(user), **change})

    assert first.status_code == 201
    assert reused.status_code == 422, reused.json()
    error = reused.json()["error"]
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert list(error["fields"]) == ["idempotency_key"]
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_a_rejected_request_does_not_take_the_key(client, make_user, user):
    token = _service_token(make_user, "shop@x.test")
    bad = _post(client, token, _body(user, channels=["pigeon"]))
    fixed = _post(client, token, _body(user))

    assert (bad.status_code, fixed.status_code) == (400, 201)


@pytest.mark.django_db
def test_keys_are_kept_for_the_configured_window(client, make_user, user, settings):
    settings.NP_IDEMPOTENCY_KEY_TTL_HOURS = 2
    token = _service_token(make_user, "shop@x.test")
    first = _post(client, token, _body(user))
    # an hour later the key still holds
    ApiIdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=1))
    within = _post(client, token, _body(user, "Something else"))
    assert within.status_code == 422

    # past the window it is free again (and the expired row is replaced)
    ApiIdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=3))
    after = _post(client, token, _body(user, "Something else"))

    assert after.status_code == 201
    assert after.json()["notification"]["id"] != first.json()["notification"]["id"]
    assert ApiIdempotencyKey.objects.count() == 1


@pytest.mark.django_db
def test_expired_keys_are_pruned_as_new_ones_are_written(client, make_user, user, settings):
    settings.NP_IDEMPOTENCY_KEY_TTL_HOURS = 1
    token = _service_token(make_user, "shop@x.test")
    for n in range(5):
        _post(client, token, _body(user), key=f"old-{n}")
    ApiIdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=2))

    _post(client, token, _body(user), key="new")

    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_an_address_only_recipient_repeat_returns_the_same_deliveries(client, make_user):
    token = _service_token(make_user, "shop@x.test")
    body = {"email": "guest@x.test", "title": "Receipt", "message": "Thanks", "channels": ["email"]}
    first = _post(client, token, body)
    again = _post(client, token, body)
    other = _post(client, token, {**body, "email": "someone@x.test"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 422)
    assert again.json()["deliveries"] == first.json()["deliveries"]
    assert NotificationDelivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize("internal", ["batch:7:{user}", "invitation:1:sent", "demo:{user}"])
def test_api_keys_cannot_reach_the_platforms_own_keys(client, make_user, user, internal):
    # Given a notification the platform wrote for alice with its own key
    key = internal.format(user=user.pk)
    own = notify(user, title="Platform", message="Internal", idempotency_key=key)
    bob = make_user(email="bob@x.test")
    token = _service_token(make_user, "shop@x.test")

    # When an API caller sends bob a notification with that very key
    response = _post(client, token, _body(bob, "From the shop"), key=key)

    # Then it is bob's new notification; the platform's key still names alice's
    assert response.status_code == 201, response.json()
    assert response.json()["notification"]["user_id"] == str(bob.pk)
    assert Notification.objects.get(idempotency_key=key).pk == own.notification.pk
    assert Notification.objects.filter(user=bob, idempotency_key__isnull=True).count() == 1


@pytest.mark.django_db
def test_notify_refuses_an_internal_key_held_by_another_user(make_user, user):
    notify(user, title="A", message="For alice", idempotency_key="bid:1:outbid")
    bob = make_user(email="bob@x.test")

    from deliveries.errors import NotifyError

    with pytest.raises(NotifyError) as caught:
        notify(bob, title="A", message="For bob", idempotency_key="bid:1:outbid")
    assert (caught.value.code, caught.value.status) == ("IDEMPOTENCY_KEY_REUSED", 422)
    assert not Notification.objects.filter(user=bob).exists()


def _race(url: str, requests: list[tuple[dict, dict]]) -> list[httpx.Response]:
    """Send every request at once (one thread each, released together)."""
    barrier = threading.Barrier(len(requests))
    answers: list[httpx.Response | None] = [None] * len(requests)

    def run(index: int, headers: dict, body: dict) -> None:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            answers[index] = http.post(url, json=body, headers=headers)

    threads = [
        threading.Thread(target=run, args=(i, headers, body))
        for i, (headers, body) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


@pytest.mark.e2e
def test_concurrent_identical_requests_write_one_notification(
    live_server, transactional_db, make_user, purge_queue
):
    alice = make_user(email="alice@x.test")
    token = _service_token(make_user, "shop@x.test")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "order-42"}

    answers = _race(live_server.url + URL, [(headers, _body(alice))] * 16)

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 15 + [201], [a.text[:200] for a in answers]
    assert len({a.json()["notification"]["id"] for a in answers}) == 1
    assert Notification.objects.count() == 1
    assert NotificationDelivery.objects.count() == 1
    assert ApiIdempotencyKey.objects.count() == 1


@pytest.mark.e2e
def test_concurrent_requests_with_one_key_and_different_bodies_write_one(
    live_server, transactional_db, make_user, purge_queue
):
    alice = make_user(email="alice@x.test")
    token = _service_token(make_user, "shop@x.test")
    other = _service_token(make_user, "bank@x.test")
    key = {"Idempotency-Key": "order-42"}
    requests = [
        ({"Authorization": f"Bearer {token}", **key}, _body(alice, f"Title {n % 2}"))
        for n in range(12)
    ] + [({"Authorization": f"Bearer {other}", **key}, _body(alice, "Bank"))] * 4

    answers = _race(live_server.url + URL, requests)

    shop, bank = answers[:12], answers[12:]
    assert sorted(a.status_code for a in bank) == [200, 200, 200, 201]
    created = [a for a in shop if a.status_code == 201]
    assert len(created) == 1
    winner = created[0].json()["notification"]
    for answer in shop:
        if answer.status_code == 200:
            assert answer.json()["notification"]["id"] == winner["id"]
        else:
            assert answer.status_code in (201, 422)
            if answer.status_code == 422:
                assert answer.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert sum(a.status_code == 422 for a in shop) == 6  # the other title, every time
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_a_key_longer_than_255_characters_is_400(client, make_user, user):
    token = _service_token(make_user, "shop@x.test")

    response = _post(client, token, _body(user), key="k" * 256)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "idempotency_key": ["must be 1 to 255 characters"]
    }
    assert Notification.objects.count() == 0
