"""Tracked links in the in-app ``message`` (issue 17): the notification's own URLs written in
its message (action URL, buttons) are shown as its tracked links — in the real-time event the
in-app sender publishes (one by one and in bulk) and in the inbox API alike; other URLs stay
as written; a template's ``track_links`` false or ``NP_TRACK_LINKS`` off leaves them raw; a
message without an own URL costs no extra query. Real PostgreSQL and Redis."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.models import Notification
from deliveries.payloads import inbox_payload, inbox_payloads
from deliveries.services import notify
from realtime.models import RealTimeEvent
from templates.models import NotificationTemplate

pytestmark = pytest.mark.usefixtures("catalogue")

BASE = "https://notify.example"
ACTION = "https://shop.example/orders/7?tab=tracking"
BUTTON = "https://help.example/chat"
OTHER = "https://other.example/terms"
MESSAGE = f"Open {ACTION}. Help: {BUTTON} Terms: {OTHER}"


@pytest.fixture(autouse=True)
def public_base(settings):
    settings.NP_PUBLIC_BASE_URL = BASE


def _links(text: str) -> list[str]:
    return re.findall(re.escape(BASE) + r"/c/[^\s\"'<>]+/", text)


def _notify(user, message: str = MESSAGE, **kwargs):
    return notify(
        user,
        title="Shipped",
        message=message,
        channels=["in_app"],
        action_url=ACTION,
        rich_content={"buttons": [{"label": "Get help", "url": BUTTON}]},
        **kwargs,
    )


def test_the_published_in_app_message_has_tracked_own_links_that_lead_to_them(
    client, user, pipeline_providers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # published after commit
        result = _notify(user)
    assert result.deliveries[0].status == "sent"  # a due in-app row is written sent

    event = RealTimeEvent.objects.get(event_type="notification.created", user_id=str(user.pk))
    shown = event.event_data["message"]
    action_link, help_link = _links(shown)
    assert shown == f"Open {action_link}. Help: {help_link} Terms: {OTHER}"
    assert action_link == event.event_data["tracked_action_url"]
    # the stored message is unchanged: tracking is how it is shown
    assert Notification.objects.get(pk=result.notification.pk).message == MESSAGE

    for link, target in ((action_link, ACTION), (help_link, BUTTON)):
        response = client.get(link[len(BASE) :])
        assert response.status_code == 302 and response["Location"] == target
    assert Notification.objects.get(pk=result.notification.pk).status == "clicked"


@pytest.fixture
def linking_template(db) -> NotificationTemplate:
    template = NotificationTemplate.objects.get(template_key="outbid.in_app.en")
    template.content_template = "Outbid at {{ amount }}: {{ action_url }}"
    template.save()
    return template


def _outbid(user):
    return notify(
        user,
        template_key="outbid",
        context={"amount": "5"},
        channels=["in_app"],
        action_url=ACTION,
    )


def test_the_inbox_api_and_the_bulk_payloads_show_the_same_tracked_message(
    api_client, user, pipeline_providers, linking_template
):
    linked, plain, templated = (
        _notify(user),
        _notify(user, message="Nothing to open here"),
        _outbid(user),
    )
    for result in (linked, plain, templated):
        assert result.deliveries[0].status == "sent"  # written sent: in the inbox
    ids = [r.notification.pk for r in (linked, plain, templated)]
    api_client.force_authenticate(user)

    inbox = {n["id"]: n["message"] for n in api_client.get("/api/v1/inbox/").json()["results"]}
    bulk = {k: p["message"] for k, p in inbox_payloads(ids).items()}

    assert len(_links(bulk[ids[0]])) == 2 and len(_links(bulk[ids[2]])) == 1
    assert bulk[ids[1]] == "Nothing to open here"
    assert inbox == {str(k): v for k, v in bulk.items()}
    assert all(bulk[k] == inbox_payload(Notification.objects.get(pk=k))["message"] for k in ids)


def test_a_message_without_own_urls_costs_one_query_in_bulk(user, linking_template):
    ids = [_notify(user, message=f"See {OTHER} #{i}").notification.pk for i in range(5)]
    linked = [_outbid(user).notification.pk for _ in range(3)]

    with CaptureQueriesContext(connection) as plain_queries:
        plain = inbox_payloads(ids)
    with CaptureQueriesContext(connection) as mixed_queries:
        mixed = inbox_payloads([*ids, *linked])

    assert len(plain_queries) == 1 and all(OTHER in p["message"] for p in plain.values())
    # rows linking an own URL add one query (their templates' flags), not one per row
    assert len(mixed_queries) == 2
    assert all(len(_links(mixed[k]["message"])) == 1 for k in linked)


def test_a_template_with_tracking_off_leaves_the_in_app_message_raw(user, linking_template):
    notification = _outbid(user).notification
    assert notification.template_id == linking_template.pk
    [link] = _links(inbox_payload(notification)["message"])
    assert inbox_payload(notification)["message"] == f"Outbid at 5: {link}"

    linking_template.track_links = False
    linking_template.save()

    assert inbox_payload(notification)["message"] == f"Outbid at 5: {ACTION}"
    assert inbox_payloads([notification.pk])[notification.pk]["message"] == f"Outbid at 5: {ACTION}"


def test_the_global_setting_turns_in_app_message_tracking_off(user, settings):
    settings.NP_TRACK_LINKS = False
    notification = _notify(user).notification

    assert inbox_payload(notification)["message"] == MESSAGE
    assert inbox_payloads([notification.pk])[notification.pk]["message"] == MESSAGE
