"""Tracked links inside bodies (issue 17): at send time, the notification's own URLs in email
HTML/text, SMS and push become signed tracked links naming which own URL (never a URL);
links to anything else stay as written; following one records the click and redirects to
that URL only; a template (or the global setting) can turn it off.

Real SMTP (aiosmtpd), SMS to the sandbox, Web Push to a loopback push service (decrypted
with the subscription's key), real PostgreSQL."""

from __future__ import annotations

import json
import re

import http_ece
import pytest
from django.core import signing

from deliveries.links import SALT, click_token
from deliveries.models import Notification, NotificationDelivery
from deliveries.services import delivery_send, notify
from deliveries.types import Recipient
from providers.models import Provider
from providers.tests.conftest import (  # noqa: F401  # fixtures
    Reply,
    _sandbox_server,
    http_server,
    sandbox,
)
from providers.tests.test_push import make_subscription, vapid  # noqa: F401  # fixture
from templates.models import NotificationTemplate
from users.models import Device

pytestmark = pytest.mark.usefixtures("catalogue")

ACTION = "https://shop.example/orders/7?tab=tracking&x=1"
BUTTON = "https://help.example/chat"
OTHER = "https://other.example/terms"
RICH = {"buttons": [{"label": "Get help", "url": BUTTON}]}
BASE = "https://notify.example"


@pytest.fixture(autouse=True)
def public_base(settings):
    settings.NP_PUBLIC_BASE_URL = BASE


@pytest.fixture
def linked_template(db):
    """The outbid email template, its HTML and text linking the action, a button's URL and
    another host."""
    template = NotificationTemplate.objects.get(template_key="outbid.email.en")
    template.content_template = (
        "Bid {{ amount }}. Open {{ action_url }}. Help: " + BUTTON + " Terms: " + OTHER + "\n"
        "Tracked: {{ tracked_action_url }}"
    )
    template.html_template = (
        '<html><body><p><a href="{{ action_url }}">Open</a> <a href=\'' + BUTTON + "'>Help</a>"
        ' <a href="' + OTHER + '">Terms</a> <img src="' + BUTTON + '"></p></body></html>'
    )
    template.save()
    return template


def _parts(message) -> dict[str, str]:
    return {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }


def _send_email(user, sink, **kwargs) -> tuple[NotificationDelivery, dict[str, str]]:
    result = notify(
        user,
        template_key="outbid",
        context={"amount": "5"},
        channels=["email"],
        action_url=ACTION,
        rich_content=RICH,
        **kwargs,
    )
    [email] = result.deliveries
    assert delivery_send(email.pk).outcome == "sent"
    return email, _parts(sink.messages[-1])


def _links(text: str) -> list[str]:
    return re.findall(re.escape(BASE) + r"/c/[^\s\"'<>]+/", text)


def test_own_links_in_email_html_and_text_are_tracked_and_others_left_alone(
    client, user, pipeline_providers, smtp_server, linked_template
):
    sink, _port = smtp_server
    email, parts = _send_email(user, sink)
    html, text = parts["text/html"], parts["text/plain"]

    assert ACTION not in text and "&amp;x=1" not in html  # the action URL is tracked ...
    assert f'href="{OTHER}"' in html and f"Terms: {OTHER}" in text  # ... other hosts are not
    assert f'<img src="{BUTTON}">' in html  # an image source is never rewritten
    # action (twice in text, once as {{ tracked_action_url }}), the help link (body, button)
    assert len(_links(text)) == 4 and len(_links(html)) == 3
    assert "Open " + _links(text)[0] + "." in text  # trailing punctuation stays outside

    for link, target in ((_links(text)[0], ACTION), (_links(html)[1], BUTTON)):
        response = client.get(link[len(BASE) :])
        assert response.status_code == 302 and response["Location"] == target
    email.refresh_from_db()
    notification = Notification.objects.get(pk=email.notification_id)
    assert notification.status == "clicked" and email.delivery_metadata["clicks"] == 2


def test_forged_or_altered_tokens_never_redirect(
    client, user, pipeline_providers, smtp_server, linked_template
):
    sink, _port = smtp_server
    email, parts = _send_email(user, sink)
    notification_id = str(email.notification_id)
    token = _links(parts["text/html"])[1][len(BASE) + 3 : -1]
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # tampered signature
        signing.Signer(salt="another").sign_object({"n": notification_id, "u": "b0"}),
        # a well-signed token naming a button the notification does not have
        click_token(notification_id, email.pk, "b7"),
        # even a token of ours naming a URL instead of a key reaches nothing
        signing.Signer(salt=SALT).sign_object({"n": notification_id, "u": OTHER}),
        signing.Signer(salt=SALT).sign_object({"n": notification_id, "u": 0}),
    ]
    for bad in forged:
        response = client.get(f"/c/{bad}/")
        assert response.status_code == 404 and "Location" not in response
    assert Notification.objects.get(pk=notification_id).clicked_at is None


def test_a_template_with_tracking_off_leaves_links_raw(
    user, pipeline_providers, smtp_server, linked_template
):
    sink, _port = smtp_server
    linked_template.track_links = False
    linked_template.save()

    email, parts = _send_email(user, sink)

    assert _links(parts["text/plain"]) == _links(parts["text/html"]) == []
    assert f"Tracked: {ACTION}" in parts["text/plain"]
    assert f'href="{BUTTON}"' in parts["text/html"] or f"href='{BUTTON}'" in parts["text/html"]
    assert email.delivery_metadata["track_links"] is False


def test_the_global_setting_turns_tracking_off(
    user, pipeline_providers, smtp_server, linked_template, settings
):
    settings.NP_TRACK_LINKS = False
    sink, _port = smtp_server
    _email, parts = _send_email(user, sink)
    assert _links(parts["text/plain"]) == [] and ACTION in parts["text/plain"]


def test_an_address_only_email_keeps_raw_links(pipeline_providers, smtp_server, linked_template):
    sink, _port = smtp_server
    result = notify(
        Recipient(email="guest@example.test"),
        template_key="outbid",
        context={"amount": "5"},
        channels=["email"],
        action_url=ACTION,
    )
    assert delivery_send(result.deliveries[0].pk).outcome == "sent"
    assert _links(_parts(sink.messages[-1])["text/plain"]) == []  # no notification to name


def test_sms_links_are_tracked_and_lead_to_the_action(client, user, sandbox):  # noqa: F811
    user.phone = "+14155550100"
    user.save()
    Provider.objects.create(
        provider_name="twilio-main",
        provider_type="sms",
        provider_class="twilio",
        configuration={
            "api_base_url": sandbox.url,
            "from_number": "+15005550006",
            "receipt_url": False,
        },
    )
    result = notify(
        user,
        title="Shipped",
        message="Track it: {{ tracked_action_url }} (or " + OTHER + ")",
        channels=["sms"],
        action_url=ACTION,
        rich_content=RICH,
    )
    assert delivery_send(result.deliveries[0].pk).outcome == "sent"

    [record] = sandbox.messages("twilio")
    action_link, help_link = _links(record["body"])
    assert record["body"] == (f"Track it: {action_link} (or {OTHER})\n\nGet help: {help_link}")
    response = client.get(help_link[len(BASE) :])
    assert response.status_code == 302 and response["Location"] == BUTTON
    response = client.get(action_link[len(BASE) :])
    assert response.status_code == 302 and response["Location"] == ACTION


def test_web_push_opens_the_tracked_link_and_carries_image_and_actions(
    user,
    http_server,  # noqa: F811
    vapid,  # noqa: F811
    settings,
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    Provider.objects.create(
        provider_name="webpush-main",
        provider_type="push",
        provider_class="webpush",
        credentials_required=["WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_SUBJECT"],
    )
    subscription, receiver, auth = make_subscription(f"{http_server.url}/push/abc")
    http_server.reply("/push/abc", Reply(status=201, body=b"", headers={"Location": "/m/1"}))
    Device.objects.create(
        user=user, kind="webpush", address=subscription["endpoint"], subscription=subscription
    )
    result = notify(
        user,
        title="Shipped",
        message="On its way",
        channels=["push"],
        action_url=ACTION,
        rich_content={**RICH, "image": "https://cdn.example/v.png", "text": "dropped"},
    )
    [push] = result.deliveries

    assert delivery_send(push.pk).outcome == "sent"

    [request] = http_server.requests
    shown = json.loads(
        http_ece.decrypt(request.body, private_key=receiver, auth_secret=auth, version="aes128gcm")
    )
    assert shown["url"].startswith(f"{BASE}/c/") and shown["image"] == "https://cdn.example/v.png"
    assert shown["actions"] == [{"action": "b0", "title": "Get help"}]
    assert shown["action_urls"]["b0"].startswith(f"{BASE}/c/")
    assert "dropped" not in json.dumps(shown)
    assert [d["part"] for d in push.delivery_metadata["rich_content_dropped"]] == ["text"]
