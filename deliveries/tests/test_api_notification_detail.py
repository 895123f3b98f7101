"""GET /notifications/{id}/ and the list show each notification's deliveries, as the README
promises, in a fixed number of queries however many deliveries there are."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifyplatform.tests import api_factories as f

pytestmark = pytest.mark.django_db


def _with_deliveries(user, channels: list[str]):
    notification = f.notification(user, delivery_channels=["in_app", *channels])
    for channel in channels:
        f.delivery(notification, delivery_type=channel, provider_type=channel, status="failed")
    return notification


def _get(client, url: str, headers: dict):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200, response.content
    return response.json(), len(queries)


def test_detail_includes_every_delivery_in_a_fixed_number_of_queries(client, user):
    headers = f.auth(f.token_for(user))
    one = _with_deliveries(user, [])
    many = _with_deliveries(user, ["email", "sms", "push", "webhook"])
    client.get("/api/v1/me/", **headers)  # warm: token last_used_at

    small, small_queries = _get(client, f"/api/v1/notifications/{one.pk}/", headers)
    large, large_queries = _get(client, f"/api/v1/notifications/{many.pk}/", headers)

    assert [(d["delivery_type"], d["status"]) for d in small["deliveries"]] == [("in_app", "sent")]
    assert [(d["delivery_type"], d["status"]) for d in large["deliveries"]] == [
        ("in_app", "sent"),
        ("email", "failed"),
        ("sms", "failed"),
        ("push", "failed"),
        ("webhook", "failed"),
    ]
    assert set(large["deliveries"][0]) >= {"id", "status", "provider_name", "error_code"}
    assert large_queries == small_queries


def test_list_includes_deliveries_without_a_query_per_notification(client, user):
    headers = f.auth(f.token_for(user))
    for _ in range(3):
        _with_deliveries(user, ["email"])
    client.get("/api/v1/me/", **headers)
    _body, few = _get(client, "/api/v1/notifications/", headers)
    for _ in range(20):
        _with_deliveries(user, ["email", "sms"])

    body, more = _get(client, "/api/v1/notifications/", headers)

    assert body["count"] == 23
    assert all(len(n["deliveries"]) in (2, 3) for n in body["results"])
    assert more == few


def test_another_users_notification_is_404(client, user, other_user):
    theirs = _with_deliveries(other_user, ["email"])
    response = client.get(f"/api/v1/notifications/{theirs.pk}/", **f.auth(f.token_for(user)))
    assert response.status_code == 404
