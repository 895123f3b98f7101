"""Rule-breaking input to the pipeline's API is a 400 naming the field, with nothing written:
expiry in the past, a schedule past the expiry, a preference for a type that does not exist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Notification, UserNotificationPreference
from templates.models import NotificationTemplate
from users.services import token_create

pytestmark = pytest.mark.usefixtures("catalogue")


@pytest.fixture
def service_client(api_client, make_user):
    owner = make_user(email="backend@example.test")
    _token, raw = token_create(user=owner, name="backend", is_service=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_client


def _send(client, user, **fields):
    body = {"user_id": str(user.pk), "title": "Sale", "message": "Ends soon", **fields}
    return client.post("/api/v1/notifications/", body, format="json")


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"expires_at": -60}, "expires_at", "must be in the future"),
        ({"expires_at": 0}, "expires_at", "must be in the future"),
        (
            {"scheduled_at": 7200, "expires_at": 3600},
            "scheduled_at",
            "must be before expires_at (it would expire unsent)",
        ),
        (
            {"scheduled_at": 3600, "expires_at": 3600},
            "scheduled_at",
            "must be before expires_at (it would expire unsent)",
        ),
    ],
)
def test_expiry_rules_are_400_with_the_field(service_client, user, fields, field, reason):
    now = timezone.now()
    body = {name: (now + timedelta(seconds=offset)).isoformat() for name, offset in fields.items()}

    response = _send(service_client, user, **body)

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["fields"] == {field: [reason]}
    assert Notification.objects.count() == 0


def test_a_schedule_before_a_future_expiry_is_accepted(service_client, user):
    now = timezone.now()
    response = _send(
        service_client,
        user,
        scheduled_at=(now + timedelta(hours=1)).isoformat(),
        expires_at=(now + timedelta(hours=2)).isoformat(),
    )
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize("method", ["post", "patch", "put"])
def test_a_preference_for_an_unknown_type_is_400_with_the_field(api_client, user, method):
    api_client.force_authenticate(user)
    body = {"invitation_type": "outbidd", "delivery_method": "email", "is_enabled": False}
    if method == "post":
        response = api_client.post("/api/v1/preferences/", body, format="json")
    else:
        mine = UserNotificationPreference.objects.create(
            user=user, invitation_type="outbid", delivery_method="email"
        )
        response = getattr(api_client, method)(
            f"/api/v1/preferences/{mine.pk}/", body, format="json"
        )

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["fields"] == {
        "invitation_type": ["unknown notification type 'outbidd': use '*' or a template's type"]
    }
    assert not UserNotificationPreference.objects.filter(invitation_type="outbidd").exists()


@pytest.mark.parametrize("type_name", ["*", "outbid", "news_feed", "staff_defined"])
def test_a_preference_for_a_known_type_is_created(api_client, user, type_name):
    NotificationTemplate.objects.create(
        template_key="staff_defined.email.en",
        template_name="Staff defined",
        invitation_type="staff_defined",
        delivery_type="email",
        language="en",
        subject_template="Hi",
        content_template="Hello",
    )
    api_client.force_authenticate(user)

    response = api_client.post(
        "/api/v1/preferences/",
        {"invitation_type": type_name, "delivery_method": "email", "is_enabled": False},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["invitation_type"] == type_name


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/preferences/",
            {"delivery_method": "email", "blocked_providers": [0]},
            "blocked_providers",
        ),
        (
            "/api/v1/preferences/",
            {"delivery_method": "email", "preferred_providers": [7]},
            "preferred_providers",
        ),
        ("/api/v1/devices/", {"kind": "fcm", "token": 12345}, "token"),
        ("/api/v1/devices/", {"kind": "fcm", "token": "t-1", "platform": 3}, "platform"),
    ],
)
def test_a_number_where_a_string_belongs_is_400_not_coerced(api_client, user, path, body, field):
    """DRF's CharField stores ``0`` as ``"0"``: a provider named "0" that blocks nothing."""
    api_client.force_authenticate(user)
    body = {"invitation_type": "outbid", **body} if "preferences" in path else body

    response = api_client.post(path, body, format="json")

    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert [name for name in fields if name.split(".")[0] == field], fields
    assert not UserNotificationPreference.objects.filter(user=user).exists()


def test_a_number_as_the_notification_title_is_400(service_client, user):
    response = _send(service_client, user, title=42)

    assert response.status_code == 400, response.json()
    assert "title" in response.json()["error"]["fields"]
    assert not Notification.objects.exists()
