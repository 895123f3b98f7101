"""List endpoints run a fixed number of queries, however many rows the page holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from . import api_factories as f

pytestmark = pytest.mark.django_db

# resource → (URL, who asks: "owner" or "staff", make one row for `owner`)
LISTS: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "notifications": ("/api/v1/notifications/", "owner", lambda u: f.notification(u)),
    "inbox": ("/api/v1/inbox/", "owner", lambda u: f.notification(u)),
    "preferences": ("/api/v1/preferences/", "owner", lambda u: f.preference(u)),
    "invitations": ("/api/v1/invitations/", "owner", lambda u: f.invitation(u)),
    "invitation-history": (
        "/api/v1/invitation-history/",
        "owner",
        lambda u: f.history(u, f.invitation(u)),
    ),
    "me/tokens": ("/api/v1/me/tokens/", "owner", lambda u: f.token_for(u)),
    "templates": ("/api/v1/templates/", "staff", lambda u: f.template()),
    "deliveries": ("/api/v1/deliveries/", "staff", lambda u: f.delivery()),
    "realtime/events": ("/api/v1/realtime/events/", "staff", lambda u: f.realtime_event(u)),
    "realtime/connections": ("/api/v1/realtime/connections/", "staff", lambda u: f.connection(u)),
    "provider-health": ("/api/v1/provider-health/", "staff", lambda u: f.provider_health()),
}


def _count_queries(client: Any, url: str, headers: dict[str, str]) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"page_size": 100}, **headers)
    assert response.status_code == 200, response.content
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize("resource", sorted(LISTS))
def test_list_query_count_does_not_grow_with_the_page(resource, user, staff_user, client):
    url, who, make = LISTS[resource]
    headers = f.auth(f.token_for(staff_user if who == "staff" else user))
    # Given 5 rows
    for _ in range(5):
        make(user)
    client.get(url, **headers)  # warm: token last_used_at, caches
    small, small_rows = _count_queries(client, url, headers)
    # When there are 50
    for _ in range(45):
        make(user)
    large, large_rows = _count_queries(client, url, headers)
    # Then the page is ten times larger and the queries are the same
    # (templates also hold the catalogue rows, so that page may fill up at 100)
    assert small_rows >= 5
    assert large_rows == min(small_rows + 45, 100)
    assert large == small
    assert small <= 6
