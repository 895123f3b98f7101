"""Click tracking (issue 17): the signed tracked link ``/c/<token>/`` and
``POST /api/v1/inbox/{id}/click/`` record the click (``clicked_at`` once, status ``clicked``,
every click counted in the delivery's metadata, a ``notification_clicked`` event to the
user) and the link redirects to the notification's own action URL only.

Real rows in PostgreSQL, the real in-app sender, signed Mailgun receipts posted to the real
receipt endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from deliveries.links import SALT, click_token, tracked_action_url
from deliveries.models import Notification, NotificationDelivery
from deliveries.services import delivery_send, notify
from deliveries.tests.test_receipt_status import SIGNING_KEY, _post_receipt
from providers.models import Provider
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.usefixtures("catalogue")

ACTION = "https://shop.example/orders/7?tab=tracking"


def _path(url: str) -> str:
    assert url.startswith("http://testserver/c/") or "/c/" in url, url
    return url[url.index("/c/") :]


def _clicked_events(user) -> list[RealTimeEvent]:
    return list(
        RealTimeEvent.objects.filter(event_type="notification_clicked", user_id=str(user.pk))
    )


@pytest.fixture
def public_base(settings):
    settings.NP_PUBLIC_BASE_URL = "https://notify.example"
    return settings.NP_PUBLIC_BASE_URL


def _sent_in_app(user, capture, **kwargs) -> tuple[Notification, NotificationDelivery]:
    """Written sent by notify() (a due in-app row needs no worker); its after-commit
    publishing run too."""
    with capture(execute=True):
        result = notify(user, title="Shipped", message="Track it", channels=["in_app"], **kwargs)
    delivery = result.deliveries[0]
    assert delivery.status == "sent"
    result.notification.refresh_from_db()
    return result.notification, delivery


def test_the_tracked_link_records_each_click_and_redirects_to_the_action(
    client, user, pipeline_providers, django_capture_on_commit_callbacks, public_base
):
    notification, delivery = _sent_in_app(
        user, django_capture_on_commit_callbacks, action_url=ACTION
    )
    # The in-app payload (the real-time event the sender published) carries the tracked link.
    created = RealTimeEvent.objects.get(event_type="notification.created", user_id=str(user.pk))
    link = created.event_data["tracked_action_url"]
    assert link == tracked_action_url(notification.pk)
    assert link.startswith(f"{public_base}/c/") and ACTION not in link
    assert notification.status == "sent" and notification.clicked_at is None

    first = client.get(_path(link))

    assert first.status_code == 302 and first["Location"] == ACTION
    assert first["Referrer-Policy"] == "no-referrer"
    notification.refresh_from_db()
    assert notification.status == "clicked" and notification.is_read is True
    clicked_at = notification.clicked_at
    assert clicked_at is not None

    second = client.get(_path(link))

    assert second.status_code == 302 and second["Location"] == ACTION
    notification.refresh_from_db()
    assert notification.clicked_at == clicked_at  # the first click's time, kept
    delivery.refresh_from_db()
    assert delivery.delivery_metadata["clicks"] == 2
    events = _clicked_events(user)
    assert len(events) == 2
    assert {e.visibility for e in events} == {"private"}
    assert {e.event_data["notification_id"] for e in events} == {str(notification.pk)}
    assert {e.event_data["delivery_id"] for e in events} == {delivery.pk}


def test_a_link_naming_a_delivery_counts_the_click_on_that_delivery(
    client, user, pipeline_providers
):
    result = notify(
        user, title="Shipped", message="Track it", channels=["in_app", "email"], action_url=ACTION
    )
    email = next(d for d in result.deliveries if d.delivery_type == "email")
    in_app = next(d for d in result.deliveries if d.delivery_type == "in_app")

    response = client.get(_path(tracked_action_url(result.notification.pk, email.pk)))

    assert response.status_code == 302 and response["Location"] == ACTION
    email.refresh_from_db()
    in_app.refresh_from_db()
    assert email.delivery_metadata["clicks"] == 1
    assert "clicks" not in (in_app.delivery_metadata or {})


def test_forged_tampered_and_expired_links_are_404_and_record_nothing(
    client, user, pipeline_providers, django_capture_on_commit_callbacks
):
    notification, _delivery = _sent_in_app(
        user, django_capture_on_commit_callbacks, action_url=ACTION
    )
    bare, _ = _sent_in_app(
        user, django_capture_on_commit_callbacks
    )  # no action URL: nothing to redirect to
    good = click_token(notification.pk)
    value, signature = good.rsplit(":", 1)
    tampered_signature = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other_id = click_token(bare.pk).rsplit(":", 1)[0]
    forged = [
        f"{value}:{tampered_signature}",  # signature altered
        f"{other_id}:{signature}",  # another notification's payload under this signature
        signing.Signer(salt="another-salt").sign_object({"n": str(notification.pk)}),
        signing.Signer(key="not-our-key", salt=SALT).sign_object({"n": str(notification.pk)}),
        signing.Signer(salt=SALT).sign_object({"n": "not-a-uuid"}),
        "nonsense",
        click_token(bare.pk),
    ]
    for token in forged:
        response = client.get(f"/c/{token}/")
        assert response.status_code == 404, token
        assert not response.has_header("Location")

    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(days=366)
    )
    assert client.get(f"/c/{good}/").status_code == 404  # older than NP_CLICK_LINK_MAX_AGE_DAYS

    notification.refresh_from_db()
    assert notification.status == "sent" and notification.clicked_at is None
    assert _clicked_events(user) == []
    assert client.post(f"/c/{good}/").status_code == 405  # following a link is a GET


def test_inbox_click_api_is_for_the_owner_only(
    api_client,
    user,
    other_user,
    pipeline_providers,
    django_capture_on_commit_callbacks,
    public_base,
):
    notification, delivery = _sent_in_app(
        user, django_capture_on_commit_callbacks, action_url=ACTION
    )
    url = f"/api/v1/inbox/{notification.pk}/click/"

    api_client.force_authenticate(other_user)
    assert api_client.post(url).status_code == 404
    notification.refresh_from_db()
    assert notification.status == "sent" and _clicked_events(user) == []

    api_client.force_authenticate(user)
    response = api_client.post(url)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(notification.pk) and body["status"] == "clicked"
    assert body["tracked_action_url"] == tracked_action_url(notification.pk)
    assert body["tracked_action_url"].startswith(f"{public_base}/c/")
    listed = api_client.get(f"/api/v1/inbox/{notification.pk}/").json()
    assert listed["tracked_action_url"] == body["tracked_action_url"]
    delivery.refresh_from_db()
    assert delivery.delivery_metadata["clicks"] == 1
    assert len(_clicked_events(user)) == 1
    assert api_client.post("/api/v1/inbox/not-an-id/click/").status_code == 404


@pytest.fixture
def mailgun(monkeypatch):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    return Provider.objects.create(
        provider_name="mailgun", provider_type="email", provider_class="mailgun"
    )


def test_a_later_receipt_or_read_never_lowers_clicked(client, api_client, user, mailgun):
    result = notify(
        user, title="Shipped", message="Track it", channels=["in_app", "email"], action_url=ACTION
    )
    for delivery in result.deliveries:
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            status="sent", provider_name="mailgun", provider_message_id=f"{delivery.pk}@mg"
        )
    Notification.objects.filter(pk=result.notification.pk).update(status="sent")
    email = next(d for d in result.deliveries if d.delivery_type == "email")
    assert client.get(_path(tracked_action_url(result.notification.pk))).status_code == 302

    assert _post_receipt(client, f"{email.pk}@mg", "delivered").status_code == 200
    email.refresh_from_db()
    assert email.status == "delivered"  # the receipt was applied ...
    notification = Notification.objects.get(pk=result.notification.pk)
    assert notification.status == "clicked"  # ... and did not lower the notification

    Notification.objects.filter(pk=notification.pk).update(is_read=False)
    api_client.force_authenticate(user)
    NotificationDelivery.objects.filter(notification=notification, delivery_type="in_app").update(
        status="sent"
    )
    read = api_client.post(f"/api/v1/inbox/{notification.pk}/read/")
    assert read.status_code == 200 and read.json()["status"] == "clicked"
    assert api_client.post("/api/v1/inbox/read_all/").status_code == 200
    notification.refresh_from_db()
    assert notification.status == "clicked" and notification.clicked_at is not None


def test_every_outbound_message_carries_a_tracked_link_naming_its_delivery(
    client, user, pipeline_providers, webhook_receiver
):
    result = notify(
        user,
        title="Shipped",
        message="Track it",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
        action_url=ACTION,
    )
    [delivery] = result.deliveries
    assert delivery_send(delivery.pk).outcome == "sent"
    [arrival] = webhook_receiver.arrivals
    sent = arrival["payload"]["data"]["data"]
    assert sent["action_url"] == ACTION
    assert sent["tracked_action_url"] == tracked_action_url(result.notification.pk, delivery.pk)

    response = client.get(_path(sent["tracked_action_url"]))

    assert response.status_code == 302 and response["Location"] == ACTION
    delivery.refresh_from_db()
    assert delivery.delivery_metadata["clicks"] == 1
