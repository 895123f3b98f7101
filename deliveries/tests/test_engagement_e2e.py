"""Engagement end to end (issue 17, "Done when"): real Celery worker subprocesses, real SMTP to
the in-process aiosmtpd sink, the provider sandbox over real HTTP (FCM, Twilio, Mailgun), a
real HTTP server (pytest-django's ``live_server``) for clicks, one-click unsubscribes,
receipts and the device API, and headless Chromium (Playwright, /usr/bin/chromium) following
a tracked link out of a received email.

The Playwright sync API runs an event loop in the test's thread while it is open, so all ORM
work happens before or after the browser session."""

from __future__ import annotations

import json
import re
import secrets
import time
from email.message import Message
from html import unescape

import httpx
import pytest
from playwright.sync_api import sync_playwright

from deliveries.models import Notification, NotificationDelivery, Suppression
from deliveries.services import notify
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from providers.models import Provider
from providers.tests.conftest import (  # noqa: F401  # fixtures
    Reply,
    _sandbox_server,
    http_server,
    sandbox,
)
from realtime.models import RealTimeEvent
from sandbox import DEFAULT_CREDENTIALS
from sandbox.signing import mailgun_signature
from users.models import Device

from .conftest import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("engagement_e2e"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("purge_queue"),
]

IMAGE = "https://cdn.example/vase.png"
BUTTONS = [
    {"label": "View order", "url": "https://shop.example/orders/7"},
    {"label": "Get help", "url": "https://help.example/chat"},
]
RICH = {"image": {"url": IMAGE, "alt": "Blue vase"}, "buttons": BUTTONS, "text": "Ships soon."}
ACTION = "https://shop.example/track/7"
TIMEOUT_MS = 30_000


def _put_back_catalogue() -> None:
    from templates.catalog import catalogue_rows
    from templates.models import NotificationTemplate

    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )


@pytest.fixture(autouse=True)
def restore_catalogue(transactional_db):
    """Transactional tests truncate every table, the catalogue's rows too: there before the
    test (rows must be committed for the worker to see them), and put back afterwards."""
    _put_back_catalogue()
    yield
    _put_back_catalogue()


@pytest.fixture
def base_url(live_server, settings) -> str:
    """Links in what is sent point at the live server, in this process and in the worker."""
    settings.NP_PUBLIC_BASE_URL = live_server.url
    return str(live_server.url)


@pytest.fixture
def worker(start_worker, base_url, sandbox):  # noqa: F811  # after the sandbox's credentials
    return start_worker(NP_PUBLIC_BASE_URL=base_url)


@pytest.fixture
def smtp_provider(smtp_server) -> Provider:
    _sink, port = smtp_server
    return Provider.objects.create(
        provider_name="test-smtp",
        provider_type="email",
        provider_class="smtp",
        priority=10,
        configuration={"host": "127.0.0.1", "port": port, "timeout": 5},
    )


@pytest.fixture
def in_app_provider() -> Provider:
    return Provider.objects.create(
        provider_name="test-in-app", provider_type="in_app", provider_class="in_app"
    )


@pytest.fixture
def fcm(sandbox) -> Provider:  # noqa: F811
    return Provider.objects.create(
        provider_name="fcm-main",
        provider_type="push",
        provider_class="fcm",
        configuration={"api_base_url": sandbox.url, "project_id": "np-demo"},
    )


@pytest.fixture
def twilio(sandbox) -> Provider:  # noqa: F811
    return Provider.objects.create(
        provider_name="twilio-main",
        provider_type="sms",
        provider_class="twilio",
        configuration={
            "api_base_url": sandbox.url,
            "from_number": "+15005550006",
            "receipt_url": False,
        },
    )


def _statuses(ids) -> dict[int, str]:
    return dict(NotificationDelivery.objects.filter(pk__in=ids).values_list("id", "status"))


def _wait_sent(ids, worker) -> None:
    """Wait (bounded) until every delivery in ``ids`` is sent; fail with their rows and the
    worker's log otherwise."""
    try:
        wait_for(lambda: list(_statuses(ids).values()) == ["sent"] * len(ids), timeout=90)
    except AssertionError:
        rows = NotificationDelivery.objects.filter(pk__in=ids).values(
            "id", "status", "error_code", "error_message"
        )
        raise AssertionError(f"not all sent: {list(rows)}\n{worker.output()}") from None


def _parts(message: Message) -> dict[str, str]:
    return {
        p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
        for p in message.walk()
        if not p.is_multipart()
    }


def _tracked(base: str, text: str) -> list[str]:
    return re.findall(re.escape(base) + r"/c/[^\s\"'<>]+/", text)


def test_rich_notification_reaches_email_push_in_app_and_sms(
    user,
    smtp_server,
    smtp_provider,
    in_app_provider,
    fcm,
    twilio,
    sandbox,  # noqa: F811
    worker,
    base_url,
    api_client,
):
    sink, _port = smtp_server
    base = base_url
    user.phone = "+14155550100"
    user.save()
    Device.objects.create(user=user, kind="fcm", address="tok-phone")

    result = notify(
        user,
        title="Shipped",
        message="On its way: {{ action_url }}",
        channels=["email", "push", "in_app", "sms"],
        action_url=ACTION,
        rich_content=RICH,
    )
    ids = [d.pk for d in result.deliveries]
    _wait_sent(ids, worker)

    # email: the image, and each button as an anchor to a tracked link, never the raw URL
    [mail] = sink.messages
    html, text = _parts(mail)["text/html"], _parts(mail)["text/plain"]
    assert f'<img src="{IMAGE}" alt="Blue vase"' in html
    hrefs = re.findall(r'href="([^"]+)"', html)
    for button in BUTTONS:
        assert button["url"] not in hrefs and button["url"] not in text
        assert re.search(
            r'href="' + re.escape(base) + r'/c/[^"]+/"[^>]*>\s*' + button["label"], html
        )
    assert "Ships soon." in html and "Ships soon." in text
    assert ACTION not in text and len(_tracked(base, text)) == 3

    # push (FCM through the sandbox): image and the buttons as actions with tracked links
    [push] = sandbox.messages("fcm")
    assert push["recipient"] == "tok-phone" and push["outcome"] == "accepted"
    carried = json.loads(push["data"]["data"]["rich_content"])
    assert carried["image"]["url"] == IMAGE
    assert [b["label"] for b in carried["buttons"]] == ["View order", "Get help"]
    assert all(b["tracked_url"].startswith(f"{base}/c/") for b in carried["buttons"])

    # SMS (Twilio through the sandbox): the text fallback, buttons as labelled tracked lines
    [sms] = sandbox.messages("twilio")
    action_link, order_link, help_link = _tracked(base, sms["body"])
    assert sms["body"] == (
        f"On its way: {action_link}\n\nView order: {order_link}\nGet help: {help_link}"
    )
    assert IMAGE not in sms["body"] and "Ships soon." not in sms["body"]

    # in-app: the event the worker published (what the websocket carries) and the inbox API
    # show everything: the action URL in the message and the buttons as tracked links
    api_client.force_authenticate(user)
    [shown] = api_client.get("/api/v1/inbox/").json()["results"]
    event = RealTimeEvent.objects.get(event_type="notification.created", user_id=str(user.pk))
    assert shown["id"] == event.event_data["id"] == str(result.notification.pk)
    for key in ("message", "rich_content", "action_url", "tracked_action_url"):
        assert event.event_data[key] == shown[key]  # (status moves on as the rest are sent)
    assert shown["message"] == f"On its way: {shown['tracked_action_url']}"
    assert shown["rich_content"]["image"]["url"] == IMAGE
    assert shown["rich_content"]["text"] == "Ships soon."
    assert [b["url"] for b in shown["rich_content"]["buttons"]] == [b["url"] for b in BUTTONS]
    assert all(b["tracked_url"].startswith(f"{base}/c/") for b in shown["rich_content"]["buttons"])
    assert shown["tracked_action_url"].startswith(f"{base}/c/")


def test_chromium_follows_the_tracked_link_in_a_received_email_to_the_action(
    user,
    smtp_server,
    smtp_provider,
    worker,
    base_url,
    http_server,  # noqa: F811
):
    sink, _port = smtp_server
    action = f"{http_server.url}/orders/7?tab=tracking"
    http_server.reply("/orders/7", Reply(status=200, body=b"Order 7 is on its way"))
    result = notify(
        user,
        title="Shipped",
        message="Track it: {{ action_url }}",
        channels=["email"],
        action_url=action,
        rich_content={"buttons": [{"label": "Track", "url": action}]},
    )
    [email] = result.deliveries
    _wait_sent([email.pk], worker)
    [mail] = sink.messages
    parts = _parts(mail)
    # the button the reader clicks, and the URL in the text, are the same tracked link
    hrefs = [unescape(h) for h in re.findall(r'href="([^"]+)"', parts["text/html"])]
    [href] = [h for h in hrefs if h.startswith(f"{base_url}/c/")]
    assert _tracked(base_url, parts["text/plain"]) == [href, href]
    assert action not in parts["text/plain"] and action not in hrefs

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(href, timeout=TIMEOUT_MS)
            final_url, shown = page.url, page.inner_text("body")
        finally:
            browser.close()

    assert final_url == action and shown.strip() == "Order 7 is on its way"
    assert [r.path for r in http_server.requests if r.path.startswith("/orders/")] == [
        "/orders/7?tab=tracking"
    ]
    notification = Notification.objects.get(pk=result.notification.pk)
    assert notification.status == "clicked" and notification.clicked_at is not None
    email.refresh_from_db()
    assert email.delivery_metadata["clicks"] == 1


def test_one_click_unsubscribe_from_the_received_header_stops_the_next_email(
    user, smtp_server, smtp_provider, in_app_provider, worker, base_url
):
    sink, _port = smtp_server
    context = {"auction_title": "Clocks", "winner": "Bob"}

    def send():
        return notify(
            user,
            template_key="auction_ended",
            context=context,
            channels=["email", "in_app"],
            category="marketing",
        ).deliveries

    first = send()
    _wait_sent([d.pk for d in first], worker)
    [mail] = sink.messages
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [url] = re.findall(r"<(https?://[^>]+)>", mail["List-Unsubscribe"])
    assert url.startswith(f"{base_url}/u/")

    # as a mailbox provider does it: a form POST, no cookies, no CSRF token
    response = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=30)
    assert response.status_code == 200, response.text

    email, in_app = send()
    assert email.status == "skipped"
    assert email.delivery_metadata["decision"]["rule"] == "unsubscribed"
    _wait_sent([in_app.pk], worker)  # the worker ran the next one: in-app only
    assert len(sink.messages) == 1
    assert _statuses([email.pk]) == {email.pk: "skipped"}


@pytest.fixture
def mailgun(sandbox) -> Provider:  # noqa: F811
    return Provider.objects.create(
        provider_name="mailgun",
        provider_type="email",
        provider_class="mailgun",
        configuration={"api_base_url": sandbox.url, "from_email": "noreply@notify.test"},
    )


def _mailgun_bounce(base_url: str, message_id: str, recipient: str) -> httpx.Response:
    """The permanent-failure callback Mailgun posts, signed with the webhook signing key."""
    key = DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"]
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(key, timestamp, token),
        },
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "recipient": recipient,
            "timestamp": time.time(),
            "delivery-status": {"code": 550, "message": "550 5.1.1 mailbox does not exist"},
            "message": {"headers": {"message-id": f"<{message_id}>"}},
        },
    }
    return httpx.post(f"{base_url}/api/v1/providers/mailgun/events/", json=body, timeout=30)


def test_a_hard_bounce_receipt_suppresses_the_address_for_the_next_send(
    user,
    mailgun,
    in_app_provider,
    sandbox,  # noqa: F811
    worker,
    base_url,
):
    [email] = notify(user, title="Shipped", message="On its way", channels=["email"]).deliveries
    _wait_sent([email.pk], worker)
    email.refresh_from_db()
    [sent] = sandbox.messages("mailgun")
    assert email.provider_name == "mailgun" and email.provider_message_id

    response = _mailgun_bounce(base_url, email.provider_message_id, user.email)

    assert response.status_code == 200 and response.json()["updated"] == 1, response.text
    email.refresh_from_db()
    assert email.status == "bounced"
    row = Suppression.objects.get(address=user.email)
    assert (row.channel, row.reason) == ("email", "hard_bounce")
    following, in_app = notify(
        user, title="Next", message="Another one", channels=["email", "in_app"]
    ).deliveries
    assert following.status == "skipped"
    assert following.delivery_metadata["decision"]["rule"] == "suppressed"
    _wait_sent([in_app.pk], worker)
    assert len(sandbox.messages("mailgun")) == 1 and sent["outcome"] == "accepted"


def test_two_devices_registered_through_the_api_each_get_the_push(
    user,
    fcm,
    sandbox,  # noqa: F811
    worker,
    live_server,
):
    from users.services import token_create

    _token, raw = token_create(user=user, name="phone-app")
    headers = {"Authorization": f"Bearer {raw}"}
    for token, platform in (("tok-phone", "android"), ("tok-tablet", "ios")):
        response = httpx.post(
            f"{live_server.url}/api/v1/devices/",
            json={"kind": "fcm", "token": token, "platform": platform},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 201, response.text

    result = notify(user, title="Outbid", message="Someone bid more", channels=["push"])

    pushes = [d for d in result.deliveries if d.delivery_type == "push"]
    assert sorted(d.recipient for d in pushes) == ["tok-phone", "tok-tablet"]
    _wait_sent([d.pk for d in pushes], worker)
    received = sorted(m["recipient"] for m in sandbox.messages("fcm") if m["outcome"] == "accepted")
    assert received == ["tok-phone", "tok-tablet"]
