"""The end-user preference page (``/preferences/`` and the signed ``/p/<token>/`` link in
every email's footer): what it shows, what it saves (through the preference services, so
``notify`` honours it), its errors, and who it lets in."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from deliveries.models import UserNotificationPreference
from deliveries.preference_links import preference_token_resolve, preference_url
from deliveries.services import delivery_send, notify
from deliveries.types import Recipient
from notifyplatform.choices import Channel
from templates.services import template_type_list
from users.models import Device

pytestmark = pytest.mark.usefixtures("catalogue")

_CONTEXT = {"auction_title": "Clocks", "winner": "Bob"}
TYPE = "auction_ended"


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _form(off=(), **channel_settings):
    """The whole page's form: every type on every channel switched on except ``off``;
    ``email__timezone="Europe/Paris"`` sets one channel setting."""
    data: dict[str, object] = {
        "on": [
            f"{t}:{c}" for t in template_type_list() for c in Channel.values if (t, c) not in off
        ]
    }
    for channel in Channel.values:
        data[f"{channel}-frequency_period"] = "daily"
    for key, value in channel_settings.items():
        channel, name = key.split("__")
        data[f"{channel}-{name}"] = value
    return data


def _notify(user, channels=("email", "in_app")):
    return notify(user, template_key=TYPE, context=_CONTEXT, channels=list(channels))


def _parts(mail):
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
        for p in mail.walk()
        if not p.is_multipart()
    }
    return parts["text/plain"], parts.get("text/html")


def test_every_email_to_a_user_carries_the_signed_preference_link_in_text_and_html(
    user, pipeline_providers, smtp_server
):
    sink, _port = smtp_server
    [delivery] = _notify(user, ["email"]).deliveries
    assert delivery_send(delivery.pk).outcome == "sent"
    text, html = _parts(sink.messages[-1])
    [text_link] = re.findall(r"https?://\S+/p/[^/\s]+/", text)
    assert "Manage your notification preferences" in text
    # the footer follows the standard signature separator, so mail clients recognise it
    # (SMTP carries CRLF line ends)
    footer = text.replace("\r\n", "\n").split("\n-- \n")[1]
    assert footer.startswith("Manage your notification preferences: ")
    assert html is not None
    [html_link] = re.findall(r'href="(https?://[^"]+/p/[^"]+/)"', html)
    assert html_link == text_link
    assert html.index("/p/") < html.lower().rindex("</body>")  # inside the body
    assert preference_token_resolve(text_link.rstrip("/").rsplit("/", 1)[1]) == str(user.pk)


def test_an_email_to_an_address_only_recipient_has_no_preference_footer(
    pipeline_providers, smtp_server
):
    sink, _port = smtp_server
    result = notify(
        Recipient(email="guest@example.test"),
        template_key=TYPE,
        context=_CONTEXT,
        channels=["email"],
    )
    [delivery] = result.deliveries
    assert delivery_send(delivery.pk).outcome == "sent"
    text, html = _parts(sink.messages[-1])
    assert "/p/" not in text and "/p/" not in (html or "")
    assert "Manage your notification preferences" not in text


def test_token_page_shows_that_users_preferences_and_devices_only(user, other_user):
    Device.objects.create(user=user, kind="fcm", address="tok-alice", label="Alice phone")
    Device.objects.create(user=other_user, kind="fcm", address="tok-bob", label="Bob phone")
    UserNotificationPreference.objects.create(
        user=other_user, invitation_type="*", delivery_method="sms", frequency_limit=77
    )
    client = Client()
    client.force_login(other_user)  # a session of someone else changes nothing
    page = client.get(_path(preference_url(user.pk)))
    assert page.status_code == 200
    body = page.content.decode()
    assert "alice@example.test" in body and "Alice phone" in body
    assert "bob@example.test" not in body and "Bob phone" not in body
    assert 'value="77"' not in body
    assert page["Referrer-Policy"] == "same-origin"
    assert "no-store" in page["Cache-Control"]
    assert page["X-Frame-Options"] == "DENY"  # no clickjacking of the form in a frame
    # every type × channel is a labelled checkbox inside a fieldset with a legend
    assert f'<label for="on-email-{TYPE}">{TYPE}</label>' in body
    assert f'id="on-email-{TYPE}" checked' in body
    assert body.count("<legend>") >= 4 * len(Channel.values)


def test_session_page_needs_a_login_and_shows_the_signed_in_user(user, other_user):
    client = Client(enforce_csrf_checks=True)
    anonymous = client.get("/preferences/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/preferences/"
    login_page = client.get(anonymous["Location"])
    assert b'<label for="id_username">Email</label>' in login_page.content
    token = client.cookies["csrftoken"].value
    wrong = client.post(
        anonymous["Location"],
        {"username": user.email, "password": "wrong", "csrfmiddlewaretoken": token},
    )
    assert wrong.status_code == 200 and b'role="alert"' in wrong.content
    signed_in = client.post(
        anonymous["Location"],
        {
            "username": user.email,
            "password": "pw-for-tests-1",
            "next": "/preferences/",
            "csrfmiddlewaretoken": token,
        },
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/preferences/"
    page = client.get("/preferences/")
    assert page.status_code == 200
    assert b"alice@example.test" in page.content and b"bob@example.test" not in page.content
    assert b"Sign out" in page.content


@pytest.mark.parametrize("via", ["session", "token"])
def test_switching_a_type_off_on_a_channel_skips_the_next_notification_there(
    user, pipeline_providers, via
):
    client = Client(enforce_csrf_checks=True)
    url = "/preferences/" if via == "session" else _path(preference_url(user.pk))
    if via == "session":
        client.force_login(user)
    client.get(url)  # sets the CSRF cookie, as a browser showing the form gets it
    data = {
        **_form(off={(TYPE, "email")}),
        "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
    }
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"] == f"{url}?saved=1"
    assert b'id="saved"' in client.get(response["Location"]).content
    pref = UserNotificationPreference.objects.get(user=user)  # exactly one row: the change
    assert (pref.invitation_type, pref.delivery_method, pref.is_enabled) == (TYPE, "email", False)

    email, in_app = _notify(user).deliveries
    assert email.status == "skipped"
    assert email.delivery_metadata["decision"]["rule"] == "opt_out"
    assert email.delivery_metadata["decision"]["preference_id"] == pref.pk
    assert in_app.status == "sent"  # the other channel goes out (in-app: written sent)
    assert f'id="on-email-{TYPE}" checked' not in client.get(url).content.decode()

    assert not UserNotificationPreference.objects.exclude(pk=pref.pk).exists()

    # and back on: the next one goes out again
    data["on"] = _form()["on"]
    assert client.post(url, data).status_code == 302
    pref.refresh_from_db()
    assert pref.is_enabled is True
    email, _in_app = _notify(user).deliveries
    assert email.status == "pending"


def test_post_without_csrf_token_is_refused_and_changes_nothing(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(_path(preference_url(user.pk)), _form(off={(TYPE, "email")}))
    assert response.status_code == 403
    assert not UserNotificationPreference.objects.filter(user=user).exists()


def test_quiet_hours_with_timezone_defer_the_next_notification(user, pipeline_providers):
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time()
    client = Client()
    client.force_login(user)
    data = _form(
        email__quiet_hours_start=start.strftime("%H:%M"),
        email__quiet_hours_end=end.strftime("%H:%M"),
        email__timezone="UTC",
    )
    assert client.post("/preferences/", data).status_code == 302
    star = UserNotificationPreference.objects.get(user=user, invitation_type="*")
    assert star.delivery_method == "email" and star.timezone == "UTC"
    assert star.quiet_hours_start.strftime("%H:%M") == start.strftime("%H:%M")
    page = client.get("/preferences/").content.decode()
    assert f'value="{start.strftime("%H:%M")}"' in page and 'value="UTC"' in page

    email, in_app = _notify(user).deliveries
    assert email.delivery_metadata["decision"]["rule"] == "quiet_hours"
    assert email.scheduled_at > now + timedelta(minutes=30)
    assert "decision" not in (in_app.delivery_metadata or {})


def test_frequency_cap_applies_to_the_next_notification(user, pipeline_providers):
    client = Client()
    client.force_login(user)
    data = _form(email__frequency_limit="0", email__frequency_period="weekly")
    assert client.post("/preferences/", data).status_code == 302
    star = UserNotificationPreference.objects.get(user=user)
    assert (star.frequency_limit, star.frequency_period) == (0, "weekly")
    email, _in_app = _notify(user).deliveries
    assert email.status == "skipped"
    assert email.delivery_metadata["decision"]["rule"] == "frequency_cap"


def test_a_types_own_settings_made_through_the_api_are_kept(user):
    own = UserNotificationPreference.objects.create(
        user=user, invitation_type=TYPE, delivery_method="email", frequency_limit=3
    )
    client = Client()
    client.force_login(user)
    page = client.get("/preferences/").content.decode()
    assert "has its own settings" in page
    data = _form(off={(TYPE, "email")}, email__timezone="Europe/Paris")
    assert client.post("/preferences/", data).status_code == 302
    own.refresh_from_db()
    assert own.is_enabled is False and own.frequency_limit == 3 and own.timezone is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email__timezone": "Mars/Olympus"}, "unknown time zone &#x27;Mars/Olympus&#x27;"),
        ({"sms__quiet_hours_start": "25:99", "sms__quiet_hours_end": "07:00"}, "valid time"),
        ({"push__quiet_hours_start": "22:00"}, "quiet hours need both a start and an end"),
        ({"email__frequency_limit": "-1"}, "greater than or equal to 0"),
        ({"email__frequency_limit": "many"}, "Enter a whole number"),
        ({"in_app__frequency_period": "yearly"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_400_page_naming_the_problem_and_writes_nothing(user, fields, message):
    client = Client()
    client.force_login(user)
    response = client.post("/preferences/", _form(off={(TYPE, "email")}, **fields))
    assert response.status_code == 400
    body = response.content.decode()
    assert 'role="alert"' in body and message in body
    assert 'aria-invalid="true"' in body or "frequency_period" in next(iter(fields))
    # what was submitted is shown again, not lost
    assert f'id="on-email-{TYPE}" checked' not in body
    assert not UserNotificationPreference.objects.filter(user=user).exists()


def test_forged_or_expired_links_get_a_clear_4xx_page(user, settings, monkeypatch):
    token = _path(preference_url(user.pk)).split("/")[2]
    for bad in ("nonsense", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        response = Client().get(f"/p/{bad}/")
        assert response.status_code == 404
        assert b"This link is not valid" in response.content
    assert Client().post(f"/p/{token[:-1]}/", _form()).status_code == 404

    settings.NP_PREFERENCE_LINK_MAX_AGE_DAYS = 30
    long_ago = time.time() - 31 * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: long_ago)
    old = _path(preference_url(user.pk))
    monkeypatch.undo()
    response = Client().get(old)
    assert response.status_code == 410
    assert b"This link has expired" in response.content
    assert not UserNotificationPreference.objects.filter(user=user).exists()


def test_a_link_for_a_deactivated_user_is_not_valid(user):
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert Client().get(_path(preference_url(user.pk))).status_code == 404


def test_removing_a_device_and_never_another_users(user, other_user):
    mine = Device.objects.create(user=user, kind="fcm", address="tok-a", label="Old phone")
    theirs = Device.objects.create(user=other_user, kind="fcm", address="tok-b")
    client = Client()
    url = _path(preference_url(user.pk))
    page = client.get(url).content.decode()
    assert "Remove device Old phone" in page
    response = client.post(url, {"action": "remove-device", "device": theirs.pk})
    assert response.status_code == 404
    assert Device.objects.filter(pk=theirs.pk).exists()
    response = client.post(url, {"action": "remove-device", "device": mine.pk})
    assert response.status_code == 302 and response["Location"] == f"{url}?removed=1"
    assert not Device.objects.filter(pk=mine.pk).exists()
    assert b"Old phone" not in client.get(url).content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"quiet_hours_start": "22:00"}, "quiet_hours_end"),
        ({"delivery_preferences": {"over_cap": "later"}}, "delivery_preferences"),
    ],
)
def test_the_api_answers_the_same_rules_with_a_400_naming_the_field(user, api_client, body, field):
    api_client.force_authenticate(user)
    response = api_client.post(
        "/api/v1/preferences/",
        {"invitation_type": TYPE, "delivery_method": "email", **body},
        format="json",
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not UserNotificationPreference.objects.filter(user=user).exists()
