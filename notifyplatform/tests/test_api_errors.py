"""Every API error has one shape: {"error": {"code", "message", "fields"}}."""

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.json()["error"]["fields"] == {}


def test_unauthenticated_api_call_is_a_json_401_or_403(api_client):
    response = api_client.get("/api/v1/inbox/")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "NOT_AUTHENTICATED"


def test_bad_token_names_the_reason(api_client):
    response = api_client.get("/api/v1/inbox/", HTTP_AUTHORIZATION="Bearer np_not-a-real-token")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "AUTHENTICATION_FAILED",
        "message": "Invalid, expired or revoked API token.",
        "fields": {},
    }


def test_health_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["redis"]["ok"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_a_boolean_field_takes_json_true_or_false_only(api_client, user, value):
    # (0 and 1 compare equal to False and True: found by schemathesis' coverage phase)
    api_client.force_authenticate(user)
    response = api_client.post(
        "/api/v1/preferences/",
        {"invitation_type": "news_feed", "delivery_method": "email", "is_enabled": value},
        format="json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("VALIDATION_ERROR", ["is_enabled"])
    ok = api_client.post(
        "/api/v1/preferences/",
        {"invitation_type": "news_feed", "delivery_method": "email", "is_enabled": False},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["is_enabled"] is False
