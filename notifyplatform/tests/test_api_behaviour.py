"""Cross-cutting API behaviour: one error shape for 405/413/429, throttles per user and per
token, staff delivery operations, templates preview, /me and tokens, schema and docs,
/readyz and /metrics."""

from __future__ import annotations

import pytest

from . import api_factories as f

pytestmark = pytest.mark.django_db


def test_method_not_allowed_is_405_in_the_error_shape(user, client):
    response = client.delete("/api/v1/me/", **f.auth(f.token_for(user)))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    # a plain Django view under /api/ answers in the same shape
    receipts = client.get("/api/v1/providers/smtp/events/")
    assert receipts.status_code == 405
    assert receipts.json()["error"] == {
        "code": "METHOD_NOT_ALLOWED",
        "message": "Method Not Allowed",
        "fields": {},
    }
    assert receipts["Allow"] == "POST"


def test_oversized_body_is_413_in_the_error_shape_and_nothing_is_written(user, client, settings):
    from users.models import ApiToken

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    headers = f.auth(f.token_for(user))
    response = client.post(
        "/api/v1/me/tokens/", {"name": "x" * 2000}, content_type="application/json", **headers
    )
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "REQUEST_TOO_LARGE",
        "message": "Request body larger than 1000 bytes.",
        "fields": {},
    }
    assert ApiToken.objects.filter(user=user).count() == 1


def test_token_throttle_is_429_with_retry_after(user, client, settings):
    settings.NP_THROTTLE_RATES = {"user": "100/min", "token": "2/min", "anon": "100/min"}
    first, second = f.auth(f.token_for(user)), f.auth(f.token_for(user))
    assert [client.get("/api/v1/me/", **first).status_code for _ in range(2)] == [200, 200]
    # When the same token asks a third time within the minute
    throttled = client.get("/api/v1/me/", **first)
    # Then it is throttled, in the error shape, with a Retry-After
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "THROTTLED"
    assert int(throttled["Retry-After"]) > 0
    # while another token of the same user still has its own budget
    assert client.get("/api/v1/me/", **second).status_code == 200


def test_user_throttle_covers_all_of_a_users_tokens(user, other_user, client, settings):
    settings.NP_THROTTLE_RATES = {"user": "3/min", "token": "100/min", "anon": "100/min"}
    tokens = [f.auth(f.token_for(user)) for _ in range(4)]
    statuses = [client.get("/api/v1/me/", **headers).status_code for headers in tokens]
    assert statuses == [200, 200, 200, 429]
    assert client.get("/api/v1/me/", **f.auth(f.token_for(other_user))).status_code == 200


def test_filters_reject_values_they_would_silently_ignore(staff_user, client):
    headers = f.auth(f.token_for(staff_user))
    cases = {
        "/api/v1/deliveries/?notification=": "notification",
        "/api/v1/inbox/?unread=maybe": "unread",
        "/api/v1/deliveries/?created_after=2026-01-01T00:00:00%2B21:00": "created_after",
        "/api/v1/realtime/events/?since_sequence=1.5": "since_sequence",
        "/api/v1/deliveries/?page_size=0": "page_size",
    }
    for url, field in cases.items():
        response = client.get(url, **headers)
        assert (url, response.status_code) == (url, 400)
        assert field in response.json()["error"]["fields"]


def test_deliveries_can_be_filtered_cancelled_and_retried_by_staff(user, staff_user, client):
    headers = f.auth(f.token_for(staff_user))
    note = f.notification(user, in_app_sent=False)
    pending = note.deliveries.get()
    failed = f.delivery(note, status="failed", error_code="TIMEOUT", retry_count=3)
    # filter by status
    listed = client.get("/api/v1/deliveries/", {"status": "failed"}, **headers).json()
    assert [row["id"] for row in listed["results"]] == [failed.pk]
    # cancel the pending one
    cancelled = client.post(f"/api/v1/deliveries/{pending.pk}/cancel/", **headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    # a cancelled one cannot be cancelled again: 409 in the error shape
    again = client.post(f"/api/v1/deliveries/{pending.pk}/cancel/", **headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "DELIVERY_NOT_CANCELLABLE"
    # retry the failed one: pending again, due now, error cleared, one more retry allowed
    retried = client.post(f"/api/v1/deliveries/{failed.pk}/retry/", **headers)
    assert retried.status_code == 200
    failed.refresh_from_db()
    assert (failed.status, failed.error_code, failed.max_retries) == ("pending", None, 4)
    assert failed.delivery_metadata["decision"]["rule"] == "manual_retry"
    # a pending one is not retryable
    assert client.post(f"/api/v1/deliveries/{failed.pk}/retry/", **headers).status_code == 409


def test_notification_cancel_cancels_its_pending_deliveries(user, staff_user, client):
    note = f.notification(user, in_app_sent=False)
    f.delivery(note, status="pending")
    response = client.post(
        f"/api/v1/notifications/{note.pk}/cancel/", **f.auth(f.token_for(staff_user))
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert sorted(note.deliveries.values_list("status", flat=True)) == ["cancelled", "cancelled"]


def test_template_crud_and_preview(staff_user, client):
    headers = f.auth(f.token_for(staff_user))
    body = {
        "template_name": "Payment due",
        "invitation_type": "payment_due_api",
        "delivery_type": "sms",
        "language": "en",
        "content_template": "Hi {{ name }}, {{ amount }} is due.",
        "template_variables": {
            "name": {"required": True, "example": "Ada"},
            "amount": {"required": True, "example": "$5"},
        },
    }
    created = client.post("/api/v1/templates/", body, content_type="application/json", **headers)
    assert created.status_code == 201, created.json()
    assert created.json()["template_key"] == "payment_due_api.sms.en"
    pk = created.json()["id"]
    # an undeclared variable is refused, naming the field
    bad = client.patch(
        f"/api/v1/templates/{pk}/",
        {"content_template": "Hi {{ nobody }}"},
        content_type="application/json",
        **headers,
    )
    assert bad.status_code == 400
    assert "content_template" in bad.json()["error"]["fields"]
    # preview with the declared examples, one value overridden
    preview = client.post(
        f"/api/v1/templates/{pk}/preview/",
        {"context": {"amount": "$7"}},
        content_type="application/json",
        **headers,
    )
    assert preview.status_code == 200
    variant = preview.json()["variants"][0]
    assert (variant["text"], variant["sms_segments"]) == ("Hi Ada, $7 is due.", 1)
    # a number where a template's text belongs is refused, not stored as "38205799349"
    numeric = client.patch(
        f"/api/v1/templates/{pk}/",
        {"subject_template": 38205799349},
        content_type="application/json",
        **headers,
    )
    assert numeric.status_code == 400
    assert numeric.json()["error"]["fields"] == {"subject_template": ["Not a valid string."]}
    assert client.delete(f"/api/v1/templates/{pk}/", **headers).status_code == 204


def test_me_and_token_lifecycle(user, client):
    headers = f.auth(f.token_for(user))
    assert client.get("/api/v1/me/", **headers).json()["email"] == user.email
    created = client.post(
        "/api/v1/me/tokens/", {"name": "ci"}, content_type="application/json", **headers
    )
    assert created.status_code == 201
    secret, token_id = created.json()["token"], created.json()["id"]
    assert client.get("/api/v1/me/", **f.auth(secret)).status_code == 200
    # revoking the token of the request itself is refused
    own = client.post(f"/api/v1/me/tokens/{token_id}/revoke/", **f.auth(secret))
    assert own.status_code == 409
    assert own.json()["error"]["code"] == "TOKEN_IN_USE"
    # revoked from another token, it stops working
    revoked = client.post(f"/api/v1/me/tokens/{token_id}/revoke/", **headers)
    assert revoked.status_code == 200
    assert revoked.json()["is_usable"] is False
    assert client.get("/api/v1/me/", **f.auth(secret)).status_code == 401


def test_provider_can_be_disabled_by_staff(staff_user, client):
    from providers.models import Provider

    provider = Provider.objects.create(
        provider_name="api-test-smtp", provider_type="email", provider_class="smtp"
    )
    response = client.patch(
        f"/api/v1/providers/{provider.provider_name}/",
        {"is_enabled": False},
        content_type="application/json",
        **f.auth(f.token_for(staff_user)),
    )
    assert response.status_code == 200
    assert response.json()["is_enabled"] is False
    provider.refresh_from_db()
    assert provider.is_enabled is False


def test_schema_and_docs_are_served_locally(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert "Error" in document["components"]["schemas"]
    retry = document["paths"]["/api/v1/deliveries/{id}/retry/"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "429"} <= set(retry)
    assert "/api/v1/providers/{name}/events/" in document["paths"]
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs.content
    assert (
        client.get(
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        ).status_code
        == 200
    )


def test_readyz_checks_the_channel_layer(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["channel_layer"]["ok"] is True


def test_metrics_report_deliveries_latency_and_connections(user, client, settings):
    from datetime import timedelta

    from deliveries.models import NotificationDelivery

    note = f.notification(user)
    sent = note.deliveries.get()
    NotificationDelivery.objects.filter(pk=sent.pk).update(
        provider_name="in_app", sent_at=sent.created_at + timedelta(seconds=2)
    )
    f.connection(user)
    settings.NP_METRICS_TOKEN = ""
    settings.NP_LOCAL_RUN = True
    body = client.get("/metrics").content.decode()  # the test client is 127.0.0.1
    assert 'np_deliveries{channel="in_app",provider="in_app",status="sent"} 1.0' in body
    assert 'np_delivery_send_latency_seconds_bucket{channel="in_app",le="1.0"} 0.0' in body
    assert 'np_delivery_send_latency_seconds_bucket{channel="in_app",le="2.5"} 1.0' in body
    assert 'np_websocket_connections{status="connected"} 1.0' in body
    assert 'np_celery_queue_depth{queue="send"}' in body
    # with a token configured, it is required
    settings.NP_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
