"""Who may see what: a user's own objects only (another user's is 404), staff-only
resources are 403 to a normal user, a service token may send notifications."""

from __future__ import annotations

from typing import Any

import pytest

from . import api_factories as f

pytestmark = pytest.mark.django_db


# Each entry: resource name → (make an object owned by `owner`, its detail URL).
def _notification(owner: Any, other: Any) -> str:
    return f"/api/v1/notifications/{f.notification(owner).pk}/"


def _inbox(owner: Any, other: Any) -> str:
    return f"/api/v1/inbox/{f.notification(owner).pk}/"


def _preference(owner: Any, other: Any) -> str:
    return f"/api/v1/preferences/{f.preference(owner).pk}/"


def _invitation(owner: Any, other: Any) -> str:
    return f"/api/v1/invitations/{f.invitation(owner).pk}/"


def _history(owner: Any, other: Any) -> str:
    return f"/api/v1/invitation-history/{f.history(owner, f.invitation(owner)).pk}/"


def _token(owner: Any, other: Any) -> str:
    from users.models import ApiToken

    f.token_for(owner)
    return f"/api/v1/me/tokens/{ApiToken.objects.filter(user=owner).latest('id').pk}/"


OWNED = {
    "notifications": _notification,
    "inbox": _inbox,
    "preferences": _preference,
    "invitations": _invitation,
    "invitation-history": _history,
    "me/tokens": _token,
}


@pytest.mark.parametrize("resource", sorted(OWNED))
def test_another_users_object_is_404_and_the_owner_sees_it(resource, user, other_user, client):
    # Given an object that belongs to other_user
    url = OWNED[resource](other_user, user)
    # When user asks for it
    mine = f.auth(f.token_for(user))
    response = client.get(url, **mine)
    # Then it does not exist for them, in the one error shape
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    # ... and it is not in their list either
    listing = client.get(url.rsplit("/", 2)[0] + "/", **mine)
    assert listing.status_code == 200
    object_id = url.rstrip("/").rsplit("/", 1)[1]
    assert object_id not in [str(row["id"]) for row in listing.json()["results"]]
    # while its owner sees it
    assert client.get(url, **f.auth(f.token_for(other_user))).status_code == 200


def test_another_users_objects_cannot_be_changed(user, other_user, client):
    # Given other_user's preference, token and inbox notification
    pref = f.preference(other_user, is_enabled=True)
    f.token_for(other_user)
    from users.models import ApiToken

    token = ApiToken.objects.filter(user=other_user).latest("id")
    note = f.notification(other_user)
    mine = f.auth(f.token_for(user))
    # When user tries to change or delete them
    calls = [
        ("patch", f"/api/v1/preferences/{pref.pk}/", {"is_enabled": False}),
        ("delete", f"/api/v1/preferences/{pref.pk}/", None),
        ("post", f"/api/v1/me/tokens/{token.pk}/revoke/", None),
        ("post", f"/api/v1/inbox/{note.pk}/read/", None),
        ("post", f"/api/v1/inbox/{note.pk}/archive/", None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(url, data=body, content_type="application/json", **mine)
        # Then each is 404 and nothing changed
        assert (url, response.status_code) == (url, 404)
    pref.refresh_from_db()
    token.refresh_from_db()
    note.refresh_from_db()
    assert pref.is_enabled is True
    assert token.revoked_at is None
    assert (note.is_read, note.is_archived) == (False, False)


STAFF_ONLY = [
    "/api/v1/templates/",
    "/api/v1/providers/",
    "/api/v1/provider-health/",
    "/api/v1/deliveries/",
    "/api/v1/realtime/events/",
    "/api/v1/realtime/connections/",
    "/api/v1/analytics/user-invitation-summary/",
    "/api/v1/analytics/provider-performance/",
    "/api/v1/analytics/invitation-funnel/",
]


@pytest.mark.parametrize("url", STAFF_ONLY)
def test_staff_only_lists_are_403_to_a_normal_user_and_200_to_staff(url, user, staff_user, client):
    response = client.get(url, **f.auth(f.token_for(user)))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert client.get(url, **f.auth(f.token_for(staff_user))).status_code == 200


def test_staff_only_object_endpoints_are_403_to_a_normal_user(user, client):
    # Given objects of every staff-only kind
    template = f.template()
    note = f.notification(user, in_app_sent=False)
    pending = note.deliveries.get()
    event = f.realtime_event()
    conn = f.connection(user)
    mine = f.auth(f.token_for(user))
    # Then a normal user can neither read nor act on them
    calls = [
        ("get", f"/api/v1/templates/{template.pk}/"),
        ("patch", f"/api/v1/templates/{template.pk}/"),
        ("delete", f"/api/v1/templates/{template.pk}/"),
        ("post", f"/api/v1/templates/{template.pk}/preview/"),
        ("get", f"/api/v1/deliveries/{pending.pk}/"),
        ("post", f"/api/v1/deliveries/{pending.pk}/retry/"),
        ("post", f"/api/v1/deliveries/{pending.pk}/cancel/"),
        ("post", f"/api/v1/notifications/{note.pk}/cancel/"),
        ("get", f"/api/v1/realtime/events/{event.pk}/"),
        ("get", f"/api/v1/realtime/connections/{conn.pk}/"),
        ("patch", "/api/v1/providers/smtp/"),
    ]
    for method, url in calls:
        response = getattr(client, method)(url, data={}, content_type="application/json", **mine)
        assert (method, url, response.status_code) == (method, url, 403)
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_sending_needs_a_service_token_or_staff(user, client):
    body = {"user_id": str(user.pk), "title": "Hi", "message": "There", "channels": ["in_app"]}
    # A plain token acting as its user may not send to anyone
    plain = client.post(
        "/api/v1/notifications/",
        body,
        content_type="application/json",
        **f.auth(f.token_for(user)),
    )
    assert plain.status_code == 403
    assert plain.json()["error"]["code"] == "PERMISSION_DENIED"
    # A service token may
    service = client.post(
        "/api/v1/notifications/",
        body,
        content_type="application/json",
        **f.auth(f.token_for(user, is_service=True)),
        HTTP_IDEMPOTENCY_KEY="perm-test-1",
    )
    assert service.status_code == 201, service.json()
    assert service.json()["notification"]["user_id"] == str(user.pk)
    assert service.json()["created"] is True


def test_unauthenticated_is_401_in_the_error_shape(client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "NOT_AUTHENTICATED"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
