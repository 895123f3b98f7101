"""One-click unsubscribe (RFC 8058) over real loopback SMTP: the headers, the signed URL, the
opt-out it writes and the skip it causes."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from deliveries.models import UserNotificationPreference
from deliveries.services import delivery_send, notify
from deliveries.unsubscribe import unsubscribe_url

pytestmark = pytest.mark.usefixtures("catalogue")

_CONTEXT = {"auction_title": "Clocks", "winner": "Bob"}


def _send_email(user, sink, category):
    result = notify(
        user,
        template_key="auction_ended",
        context=_CONTEXT,
        channels=["email"],
        category=category,
    )
    [delivery] = result.deliveries
    assert delivery_send(delivery.pk).outcome == "sent"
    return sink.messages[-1]


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_marketing_email_carries_one_click_headers_and_posting_the_url_opts_out(
    user, pipeline_providers, smtp_server, settings
):
    settings.NP_UNSUBSCRIBE_MAILTO = "unsubscribe@example.test"
    sink, _port = smtp_server
    mail = _send_email(user, sink, "marketing")

    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    targets = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    assert len(targets) == 2
    https, mailto = targets
    assert https.startswith(str(settings.NP_PUBLIC_BASE_URL).rstrip("/") + "/u/")
    assert mailto.startswith("mailto:unsubscribe@example.test?subject=unsubscribe%20")

    client = Client(enforce_csrf_checks=True)  # RFC 8058: no CSRF token, no login
    page = client.get(_path(https))
    assert page.status_code == 200
    assert b"<form method='post'" in page.content and b"auction_ended" in page.content
    assert not UserNotificationPreference.objects.filter(user=user).exists()

    response = client.post(_path(https), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    pref = UserNotificationPreference.objects.get(user=user)
    assert (pref.invitation_type, pref.delivery_method, pref.is_enabled) == (
        "auction_ended",
        "email",
        False,
    )
    assert pref.delivery_preferences["unsubscribed"]["via"] == "list-unsubscribe"
    # a second click (mail clients retry) changes nothing and still answers 200
    assert client.post(_path(https), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert UserNotificationPreference.objects.filter(user=user).count() == 1

    again = notify(
        user,
        template_key="auction_ended",
        context=_CONTEXT,
        channels=["email", "in_app"],
        category="marketing",
    )
    email, in_app = again.deliveries
    assert email.status == "skipped"
    # the trace says why: the user unsubscribed (not a generic opt-out), with how
    assert email.delivery_metadata["decision"]["rule"] == "unsubscribed"
    assert email.delivery_metadata["decision"]["preference_id"] == pref.pk
    assert email.delivery_metadata["decision"]["unsubscribed"]["via"] == "list-unsubscribe"
    assert in_app.status == "sent"  # the other channel goes out (in-app: written sent)


def test_unsubscribing_keeps_the_users_existing_row_settings(user, pipeline_providers):
    pref = UserNotificationPreference.objects.create(
        user=user,
        invitation_type="auction_ended",
        delivery_method="email",
        frequency_limit=3,
        delivery_preferences={"over_cap": "defer"},
    )
    url = unsubscribe_url(user.pk, "auction_ended", "email")
    assert Client().post(_path(url)).status_code == 200
    pref.refresh_from_db()
    assert pref.is_enabled is False and pref.frequency_limit == 3
    assert pref.delivery_preferences["over_cap"] == "defer"
    assert "unsubscribed" in pref.delivery_preferences


def test_transactional_email_carries_no_unsubscribe_header(user, pipeline_providers, smtp_server):
    sink, _port = smtp_server
    mail = _send_email(user, sink, "auction")
    assert mail["List-Unsubscribe"] is None
    assert mail["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_or_tampered_token_is_404(user, method):
    url = _path(unsubscribe_url(user.pk, "auction_ended", "email"))
    token = url.split("/")[2]
    for bad in ("nonsense", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        response = getattr(Client(), method)(f"/u/{bad}/")
        assert response.status_code == 404
    assert not UserNotificationPreference.objects.filter(user=user).exists()


def test_opting_back_in_clears_the_unsubscribe_record(user, pipeline_providers):
    from deliveries.services import preference_update

    url = unsubscribe_url(user.pk, "auction_ended", "email")
    assert Client().post(_path(url)).status_code == 200
    pref = UserNotificationPreference.objects.get(user=user)

    preference_update(preference=pref, data={"is_enabled": True})
    preference_update(preference=pref, data={"is_enabled": False})  # a plain opt-out later

    again = notify(user, template_key="auction_ended", context=_CONTEXT, channels=["email"])
    [email] = again.deliveries
    assert email.delivery_metadata["decision"]["rule"] == "opt_out"
