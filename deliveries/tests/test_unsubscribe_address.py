"""Address-level one-click unsubscribe: an address-only recipient (no account) gets a
List-Unsubscribe link that suppresses the address on the channel; the next send to it is
skipped with decision ``unsubscribed`` — at planning and at send time. Real loopback SMTP."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from deliveries.models import NotificationDelivery, Suppression
from deliveries.services import delivery_send, notify, notify_many
from deliveries.services.sending import deliveries_send_batch
from deliveries.types import Recipient
from deliveries.unsubscribe import address_unsubscribe_url

pytestmark = pytest.mark.usefixtures("catalogue")

_CONTEXT = {"auction_title": "Clocks", "winner": "Bob"}
GUEST = "Guest@Example.test"


def _notify_guest(category: str = "marketing") -> NotificationDelivery:
    result = notify(
        Recipient(email=GUEST),
        template_key="auction_ended",
        context=_CONTEXT,
        channels=["email"],
        category=category,
    )
    [delivery] = result.deliveries
    return delivery


def _one_click_url(mail) -> str:
    https = re.findall(r"<(https?://[^>]+)>", mail["List-Unsubscribe"])[0]
    return re.sub(r"^https?://[^/]+", "", https)


def test_an_address_only_email_unsubscribes_its_address(pipeline_providers, smtp_server):
    sink, _port = smtp_server
    delivery = _notify_guest()
    assert delivery_send(delivery.pk).outcome == "sent"
    mail = sink.messages[-1]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = _one_click_url(mail)

    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    assert page.status_code == 200 and b"<form method='post'" in page.content
    assert not Suppression.objects.exists()

    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    suppression = Suppression.objects.get(channel="email", address="guest@example.test")
    assert (suppression.reason, suppression.category) == ("unsubscribe", "marketing")
    assert suppression.receipt["source"] == "list-unsubscribe"
    assert suppression.receipt["type"] == "auction_ended"
    assert client.post(path).status_code == 200  # again: idempotent
    assert Suppression.objects.count() == 1

    again = _notify_guest()
    assert again.status == "skipped"
    assert again.delivery_metadata["decision"]["rule"] == "unsubscribed"
    assert again.delivery_metadata["decision"]["scope"] == "address"
    # scoped to the category it came from: a transactional email still goes out
    transactional = _notify_guest(category="auction")
    assert transactional.status == "pending"
    assert delivery_send(transactional.pk).outcome == "sent"


def test_a_pending_send_is_skipped_when_the_address_unsubscribes_before_it_goes(
    pipeline_providers, smtp_server
):
    sink, _port = smtp_server
    single, batched = _notify_guest(), _notify_guest()
    url = address_unsubscribe_url("guest@example.test", "auction_ended", "email", "marketing")
    assert Client().post(re.sub(r"^https?://[^/]+", "", url)).status_code == 200

    assert delivery_send(single.pk).outcome == "suppressed"
    [summary] = deliveries_send_batch([batched.pk])
    assert summary.outcome == "suppressed"
    for delivery in (single, batched):
        delivery.refresh_from_db()
        assert delivery.status == "skipped"
        assert delivery.delivery_metadata["decision"]["rule"] == "unsubscribed"
    assert sink.messages == []


def test_notify_many_records_unsubscribed_for_an_unsubscribed_user_address(
    user, other_user, make_user, pipeline_providers
):
    elsewhere = make_user(email="elsewhere@example.test")
    Suppression.objects.create(
        channel="email", address=user.email.lower(), reason="unsubscribe", category="marketing"
    )
    Suppression.objects.create(
        channel="email", address=other_user.email.lower(), reason="hard_bounce"
    )
    Suppression.objects.create(  # another category's unsubscribe: does not apply
        channel="email", address=elsewhere.email, reason="unsubscribe", category="invitation"
    )

    results = notify_many(
        [user, other_user, elsewhere],
        template_key="auction_ended",
        context=_CONTEXT,
        channels=["email"],
        category="marketing",
    )

    rules = {
        d.recipient: d.delivery_metadata["decision"]["rule"]
        for d in NotificationDelivery.objects.filter(
            notification__in=[r.notification.pk for r in results]
        )
        if d.delivery_metadata.get("decision")
    }
    assert rules == {user.email: "unsubscribed", other_user.email: "suppressed"}


def test_a_transactional_address_only_email_has_no_unsubscribe_link(
    pipeline_providers, smtp_server
):
    sink, _port = smtp_server
    delivery = _notify_guest(category="auction")
    assert delivery_send(delivery.pk).outcome == "sent"
    assert sink.messages[-1]["List-Unsubscribe"] is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_address_token_is_404(method):
    url = address_unsubscribe_url("guest@example.test", "auction_ended", "email", "marketing")
    token = url.rstrip("/").rsplit("/", 1)[-1]
    forged = token.replace("Z3Vlc3", "YXR0YW", 1) if "Z3Vlc3" in token else token[:-3] + "abc"
    assert getattr(Client(), method)(f"/u/{forged}/").status_code == 404
    assert not Suppression.objects.exists()


def test_an_every_category_suppression_outranks_a_scoped_unsubscribe(pipeline_providers):
    Suppression.objects.create(
        channel="email", address="guest@example.test", reason="unsubscribe", category="marketing"
    )
    Suppression.objects.create(channel="email", address="guest@example.test", reason="hard_bounce")

    marketing, transactional = _notify_guest(), _notify_guest(category="auction")

    for delivery in (marketing, transactional):
        assert delivery.status == "skipped"
        assert delivery.delivery_metadata["decision"]["rule"] == "suppressed"
        assert delivery.delivery_metadata["decision"]["reason"] == "hard_bounce"
