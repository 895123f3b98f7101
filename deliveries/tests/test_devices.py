"""Push to many devices: one push delivery per active registered device, planned with one
device query per notify()/notify_many() chunk; a provider's UNREGISTERED/410 disables the
device. Real PostgreSQL; the sends go to the provider sandbox over HTTP."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import NotificationDelivery, UserNotificationPreference
from deliveries.services import notify, notify_many
from deliveries.services.sending import deliveries_send, delivery_send
from providers.models import Provider
from providers.tests.conftest import _sandbox_server, sandbox  # noqa: F401  # fixtures
from users.models import Device

pytestmark = pytest.mark.django_db

SUBSCRIPTION = {
    "endpoint": "https://push.example.test/wp/sub-1",
    "keys": {"p256dh": "BExamplePublicKey", "auth": "c2VjcmV0"},
}


def _device(user, address, *, kind="fcm", **fields):
    return Device.objects.create(user=user, kind=kind, address=address, **fields)


def _push(user, **kwargs):
    return notify(user, title="Outbid", message="Someone bid more", channels=["push"], **kwargs)


def _pushes(result):
    return sorted(
        (d for d in result.deliveries if d.delivery_type == "push"), key=lambda d: d.recipient
    )


def test_two_devices_get_two_push_deliveries_and_a_disabled_one_none(user):
    phone = _device(user, "fcm-token-phone", platform="android")
    browser = _device(
        user, SUBSCRIPTION["endpoint"], kind="webpush", subscription=SUBSCRIPTION, platform="web"
    )
    _device(user, "fcm-token-old", disabled_at=timezone.now(), disabled_reason="gone")

    deliveries = _pushes(_push(user))

    assert [(d.recipient, d.status) for d in deliveries] == [
        ("fcm-token-phone", "pending"),
        (SUBSCRIPTION["endpoint"], "pending"),
    ]
    assert deliveries[0].delivery_metadata["device_id"] == phone.pk
    assert "subscription" not in deliveries[0].delivery_metadata
    assert deliveries[1].delivery_metadata["device_id"] == browser.pk
    assert deliveries[1].delivery_metadata["subscription"] == SUBSCRIPTION


def test_a_user_without_devices_keeps_the_token_in_the_preference_row(user, other_user):
    _device(other_user, "someone-elses-token")
    UserNotificationPreference.objects.create(
        user=user,
        invitation_type="*",
        delivery_method="push",
        delivery_preferences={"device_token": "legacy-token"},
    )

    [delivery] = _pushes(_push(user))

    assert delivery.recipient == "legacy-token"
    assert "device_id" not in delivery.delivery_metadata


def test_a_token_named_by_the_caller_wins_over_the_registry(user):
    _device(user, "registered-token")

    [delivery] = _pushes(_push(user, metadata={"device_token": "explicit-token"}))

    assert delivery.recipient == "explicit-token"


def test_notify_many_fans_out_per_device_with_one_device_query_per_chunk(make_user):
    users = [make_user(email=f"u{i}@example.test") for i in range(6)]
    for i, u in enumerate(users):
        for n in range(i % 3):  # 0, 1 or 2 devices
            _device(u, f"tok-{i}-{n}")
    _device(users[0], "tok-0-disabled", disabled_at=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        results = notify_many(users, title="Sale", message="Now on", channels=["push"])
    device_queries = [q for q in queries.captured_queries if '"user_devices"' in q["sql"]]

    assert len(device_queries) == 1
    by_user = {r.notification.user_id: sorted(d.recipient for d in r.deliveries) for r in results}
    assert by_user[users[0].pk] == [""]  # no active device, no preference token: skipped
    assert by_user[users[1].pk] == ["tok-1-0"]
    assert by_user[users[2].pk] == ["tok-2-0", "tok-2-1"]
    assert by_user[users[5].pk] == ["tok-5-0", "tok-5-1"]
    rows = NotificationDelivery.objects.filter(recipient="tok-5-1")
    assert rows.get().delivery_metadata["device_id"] == Device.objects.get(address="tok-5-1").pk


@pytest.fixture
def fcm(sandbox):  # noqa: F811
    return Provider.objects.create(
        provider_name="fcm-main",
        provider_type="push",
        provider_class="fcm",
        configuration={"api_base_url": sandbox.url, "project_id": "np-demo"},
    )


@pytest.mark.parametrize("path", ["single", "batch"])
def test_unregistered_disables_the_device_and_the_next_push_skips_it(
    user,
    fcm,
    sandbox,  # noqa: F811  # the fixture imported above
    path,
):
    sandbox.configure("fcm", invalid_recipients=["tok-gone"])
    gone = _device(user, "tok-gone")
    alive = _device(user, "tok-alive")
    ids = [d.pk for d in _pushes(_push(user))]

    if path == "single":
        outcomes = sorted(delivery_send(i).outcome for i in ids)
    else:
        outcomes = sorted(s.outcome for s in deliveries_send(ids))

    assert outcomes == ["failed", "sent"]
    gone.refresh_from_db()
    alive.refresh_from_db()
    assert gone.disabled_at is not None
    assert gone.disabled_reason.startswith("fcm-main: ")
    assert alive.disabled_at is None
    assert [d.recipient for d in _pushes(_push(user))] == ["tok-alive"]


def test_a_retryable_failure_leaves_the_device_active(user, fcm, sandbox):  # noqa: F811
    sandbox.configure("fcm", fail_rate=1.0)
    device = _device(user, "tok-flaky")
    [delivery] = _pushes(_push(user))

    assert delivery_send(delivery.pk).outcome in {"retry", "failed"}

    device.refresh_from_db()
    assert device.disabled_at is None


def test_a_user_whose_devices_are_all_disabled_gets_no_push_not_the_old_token(user):
    _device(user, "tok-gone", disabled_at=timezone.now(), disabled_reason="UNREGISTERED")
    UserNotificationPreference.objects.create(
        user=user,
        invitation_type="*",
        delivery_method="push",
        delivery_preferences={"device_token": "tok-gone"},
    )

    [delivery] = _pushes(_push(user))

    assert (delivery.status, delivery.recipient) == ("skipped", "")
    assert delivery.delivery_metadata["rules"][0]["reason"] == "every device is disabled"


@pytest.fixture
def webpush(sandbox, settings, monkeypatch):  # noqa: F811
    from cryptography.hazmat.primitives.asymmetric import ec

    from providers.tests.test_push import b64url_encode

    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    monkeypatch.setenv("WEBPUSH_VAPID_PRIVATE_KEY", b64url_encode(raw))
    monkeypatch.setenv("WEBPUSH_VAPID_SUBJECT", "mailto:ops@example.com")
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the sandbox listens on loopback
    return Provider.objects.create(
        provider_name="webpush-main",
        provider_type="push",
        provider_class="webpush",
        credentials_required=["WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_SUBJECT"],
    )


def test_web_push_410_gone_disables_the_subscription(user, webpush, sandbox):  # noqa: F811
    from providers.tests.test_push import make_subscription

    sandbox.configure("webpush", gone_ids=["sub-gone"])
    gone_sub, _, _ = make_subscription(f"{sandbox.url}/push/sub-gone")
    live_sub, _, _ = make_subscription(f"{sandbox.url}/push/sub-live")
    gone = _device(user, gone_sub["endpoint"], kind="webpush", subscription=gone_sub)
    live = _device(user, live_sub["endpoint"], kind="webpush", subscription=live_sub)

    summaries = deliveries_send([d.pk for d in _pushes(_push(user))])

    assert sorted(s.outcome for s in summaries) == ["failed", "sent"]
    gone.refresh_from_db()
    live.refresh_from_db()
    assert (gone.disabled_at is not None, live.disabled_at is None) == (True, True)
    assert [m["recipient"] for m in sandbox.messages("webpush") if m["outcome"] == "accepted"] == [
        "sub-live"
    ]
