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
