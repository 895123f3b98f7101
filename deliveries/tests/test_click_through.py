"""Click-through analytics from real rows: deliveries clicked through the click service,
grouped per template, channel and provider, in one query each; the staff API endpoints and
the dashboard's section show the same numbers."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deliveries.analytics import click_through, ctr_window
from deliveries.models import Notification, NotificationDelivery
from deliveries.services.clicks import notification_click
from templates.models import NotificationTemplate

pytestmark = pytest.mark.usefixtures("catalogue")

MAIL, IN_APP = "auction_ended.email.en", "auction_ended.in_app.en"


def _sent(user, template_key, *, channel, provider, status="delivered", clicks=0, hours_ago=0):
    template = NotificationTemplate.objects.get(template_key=template_key)
    note = Notification.objects.create(
        user=user,
        notification_type=channel,
        category="auction",
        priority="normal",
        title="t",
        message="m",
        delivery_channels=[channel],
        template=template,
        action_url="https://shop.example.test/lot/1",
    )
    delivery = NotificationDelivery.objects.create(
        notification=note,
        delivery_type=channel,
        provider_type=channel,
        provider_name=provider,
        provider_priority=10,
        recipient=user.email,
        recipient_type="email" if channel == "email" else "user",
        status=status,
        delivery_metadata={"template_id": template.pk, "event_type": "auction_ended"},
        sent_at=None if status == "pending" else timezone.now(),
    )
    for _ in range(clicks):
        notification_click(note, delivery_id=delivery.pk)
    if hours_ago:
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            created_at=timezone.now() - timedelta(hours=hours_ago)
        )
    return delivery


@pytest.fixture
def traffic(user):
    # email by p-mail: 3 delivered (one clicked twice, one once), 1 failed (not counted)
    _sent(user, MAIL, channel="email", provider="p-mail", clicks=2)
    _sent(user, MAIL, channel="email", provider="p-mail", status="sent", clicks=1)
    _sent(user, MAIL, channel="email", provider="p-mail")
    _sent(user, MAIL, channel="email", provider="p-mail", status="failed")
    # in-app by p-inapp: 2 delivered, 1 clicked; a pending one is not delivered
    _sent(user, IN_APP, channel="in_app", provider="p-inapp", clicks=1)
    _sent(user, IN_APP, channel="in_app", provider="p-inapp")
    _sent(user, IN_APP, channel="in_app", provider="p-inapp", status="pending")
    # outside the last 24 hours: delivered and clicked, counted only in a wider window
    _sent(user, IN_APP, channel="in_app", provider="p-inapp", clicks=1, hours_ago=30)


def _table(rows):
    return {r.key: (r.delivered, r.clicked, r.clicks, r.click_through_rate) for r in rows}


def test_ctr_per_template_channel_and_provider_one_query_each(traffic):
    since, until = ctr_window(24)
    with CaptureQueriesContext(connection) as queries:
        by_template = click_through("template", since=since, until=until)
        by_channel = click_through("channel", since=since, until=until)
        by_provider = click_through("provider", since=since, until=until)
    assert len(queries) == 4  # one per grouping, and one naming the templates
    assert _table(by_template) == {
        MAIL: (3, 2, 3, Decimal("66.67")),
        IN_APP: (2, 1, 1, Decimal("50.00")),
    }
    assert _table(by_channel) == {
        "email": (3, 2, 3, Decimal("66.67")),
        "in_app": (2, 1, 1, Decimal("50.00")),
    }
    assert _table(by_provider) == {
        "p-mail": (3, 2, 3, Decimal("66.67")),
        "p-inapp": (2, 1, 1, Decimal("50.00")),
    }
    since48, until48 = ctr_window(48)
    wider = _table(click_through("channel", since=since48, until=until48))
    assert wider["in_app"] == (3, 2, 2, Decimal("66.67"))


def test_ctr_window_is_bounded():
    for hours in (0, 24 * 31 + 1):
        with pytest.raises(ValueError):
            ctr_window(hours)


def test_click_through_api_is_staff_only_and_answers_the_rates(
    traffic, api_client, user, staff_user
):
    url = "/api/v1/analytics/click-through/"
    assert api_client.get(url).status_code in (401, 403)
    api_client.force_authenticate(user)
    assert api_client.get(url).status_code == 403

    api_client.force_authenticate(staff_user)
    response = api_client.get(url, {"by": "channel"})
    assert response.status_code == 200
    body = response.json()
    assert body["by"] == "channel"
    assert body["rows"] == [
        {
            "key": "email",
            "delivered": 3,
            "clicked": 2,
            "clicks": 3,
            "click_through_rate": "66.67",
        },
        {
            "key": "in_app",
            "delivered": 2,
            "clicked": 1,
            "clicks": 1,
            "click_through_rate": "50.00",
        },
    ]
    templates = api_client.get(url).json()  # by template by default
    assert [(r["key"], r["click_through_rate"]) for r in templates["rows"]] == [
        (MAIL, "66.67"),
        (IN_APP, "50.00"),
    ]
    wider = api_client.get(url, {"by": "provider", "hours": 48}).json()
    assert {r["key"]: r["delivered"] for r in wider["rows"]} == {"p-mail": 3, "p-inapp": 3}


@pytest.mark.parametrize(
    ("query", "field"),
    [({"hours": 0}, "hours"), ({"hours": 745}, "hours"), ({"by": "colour"}, "by")],
)
def test_click_through_api_rejects_bad_windows_and_groupings(staff_user, api_client, query, field):
    api_client.force_authenticate(staff_user)
    response = api_client.get("/api/v1/analytics/click-through/", query)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_provider_performance_api_carries_each_providers_ctr(traffic, api_client, staff_user):
    url = "/api/v1/analytics/provider-performance/"
    api_client.force_authenticate(staff_user)
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(url)
    assert response.status_code == 200
    # the page, its count and one grouped CTR query, however many providers
    assert len(queries) <= 3
    rows = {r["provider_name"]: r for r in response.json()["results"]}
    ctr = rows["p-mail"]["click_through"]
    assert {k: ctr[k] for k in ("delivered", "clicked", "clicks", "click_through_rate")} == {
        "delivered": 3,
        "clicked": 2,
        "clicks": 3,
        "click_through_rate": "66.67",
    }
    assert rows["p-mail"]["total_deliveries"] == 4  # the view's own (all-time) figures
    assert rows["p-inapp"]["click_through"]["click_through_rate"] == "50.00"

    wider = api_client.get(url, {"hours": 48, "provider_name": "p-inapp"}).json()["results"]
    assert [r["click_through"]["delivered"] for r in wider] == [3]
    detail = api_client.get(f"{url}p-mail:email/").json()
    assert detail["click_through"]["click_through_rate"] == "66.67"
    bad = api_client.get(url, {"hours": 0})
    assert bad.status_code == 400 and "hours" in bad.json()["error"]["fields"]


def test_provider_performance_api_is_staff_only(api_client, user):
    api_client.force_authenticate(user)
    assert api_client.get("/api/v1/analytics/provider-performance/?hours=0").status_code == 403


def test_dashboard_shows_ctr_per_template_channel_and_provider(traffic, admin_client):
    html = admin_client.get(reverse("admin_dashboard")).content.decode()
    table = re.search(r'<table class="np-table" id="table-ctr-template">.*?</table>', html, re.S)
    assert table is not None
    assert (
        f'<tr data-key="{MAIL}"><td>{MAIL}</td><td>3</td><td>2</td><td>3</td>'
        "<td>66.67 %</td></tr>" in table.group(0)
    )
    for by, key, rate in (("channel", "in_app", "50.00"), ("provider", "p-mail", "66.67")):
        section = re.search(rf'id="table-ctr-{by}">.*?</table>', html, re.S)
        assert section is not None
        assert re.search(rf'data-key="{key}">.*?<td>{rate} %</td>', section.group(0))
    chart = re.search(r'<svg class="np-chart" id="chart-click-through".*?</svg>', html, re.S)
    assert chart is not None
    assert 'data-label="email" data-value="66.67"' in chart.group(0)
