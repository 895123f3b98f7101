"""Hostile JSON bodies never give a 5xx.

Every write endpoint of the schema (the test fails when one is added without a row here) gets:
- bodies no parser should accept — 10,000-deep arrays and objects, nesting just past
  ``NP_JSON_MAX_DEPTH``, ``1e400``, ``NaN``, invalid UTF-8, duplicate keys, truncated JSON —
  which must be exactly 400 ``MALFORMED_REQUEST``;
- a valid body with each top-level field replaced in turn by a hostile value (huge and
  negative integers, deep-but-allowed nesting, long strings, wrong types), which must be
  answered below 500.
Real PostgreSQL behind the API, so an out-of-range integer reaching a column would show.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from . import api_factories as f

pytestmark = pytest.mark.django_db

UNPARSABLE: dict[str, bytes] = {
    "deep_array": b"[" * 10_000 + b"]" * 10_000,
    "deep_object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "deep_in_a_field": b'{"context": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}",
    "just_past_the_limit": b'{"a":' * 33 + b"1" + b"}" * 33,
    "huge_float": b'{"title": "t", "x": 1e400}',
    "huge_negative_float": b'{"context": {"amount": -1e400}}',
    "nan": b'{"title": NaN}',
    "infinity": b'{"title": Infinity}',
    "invalid_utf8": b'{"title": "\xff\xfe\xfa"}',
    "duplicate_key": b'{"title": "a", "title": "b"}',
    "truncated": b'{"title": ',
    "huge_int_literal": b'{"priority": ' + b"9" * 5_000 + b"}",
}

HOSTILE_VALUES: list[Any] = [
    10**30,
    -(10**30),
    2**63,
    -1,
    1.5e308,
    "",
    "x" * 100_000,
    None,
    True,
    [],
    {},
    [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]],
    {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}},
    "\u0000",
    "9999-12-31T23:59:59Z",
]


# a delay first: a trigger schedules a run, nothing is sent while the test fuzzes
WORKFLOW_STEPS: list[dict[str, Any]] = [
    {"type": "delay", "duration": "1h"},
    {"type": "channel", "channel": "in_app", "title": "Hi", "message": "Amount {{ amount }}"},
]


@pytest.fixture
def world(make_user, settings):
    settings.NP_THROTTLE_RATES = {"user": "100000/min", "token": "100000/min", "anon": "100000/min"}
    from auctions.services import auction_create, auction_start
    from invitations.models import NewsArticle, RoleplayTemplate
    from providers.models import Provider

    staff = make_user(email="fuzz-staff@example.test", is_staff=True)
    seller = make_user(email="fuzz-seller@example.test")
    now = timezone.now()
    auction = auction_create(
        seller=seller,
        auction_type="english",
        title="Fuzzed",
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        starting_price=Decimal("100.00"),
        min_increment=Decimal("10.00"),
        items=[{"title": "Item"}],
    )
    auction_start(auction_id=auction.pk)
    draft = auction_create(
        seller=staff, auction_type="dutch", title="Draft", draft=True,
        starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2),
        starting_price=Decimal("100.00"),
    )
    for kind, channel in [
        ("mailgun", "email"),
        ("sendgrid", "email"),
        ("postmark", "email"),
        ("twilio", "sms"),
        ("vonage", "sms"),
    ]:
        Provider.objects.create(provider_name=kind, provider_type=channel, provider_class=kind)
    template = f.template()
    preference = f.preference(staff)
    from campaigns.services import audience_save
    from campaigns.services.workflows import workflow_save

    audience = audience_save(name="fuzzed", kind="list", user_ids=[staff.pk], created_by=staff)
    workflow_save(key="fuzzed", name="Fuzzed", steps=WORKFLOW_STEPS)
    return {
        "headers": f.auth(f.token_for(staff, is_service=True)),
        "user": staff,
        "auction": auction,
        "draft": draft,
        "template": template,
        "preference": preference,
        "invitation": f.invitation(seller, staff),
        "article": NewsArticle.objects.create(title="Fuzz news", summary="S", content_hash="f" * 64),
        "roleplay": RoleplayTemplate.objects.create(
            template_name="Fuzz play", total_characters=100, created_by=staff
        ),
        "audience": audience,
    }


def _endpoints(w: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(method, schema path) → (URL, a valid body)."""
    from invitations.tokens import token_sign

    template, preference, audience = w["template"], w["preference"], w["audience"]
    link = token_sign(w["invitation"].token)
    template_body = {
        "template_name": "T",
        "invitation_type": "fuzz_type",
        "delivery_type": "email",
        "language": "en",
        "subject_template": "Hi",
        "content_template": "Hello {{ name }}",
        "template_variables": {"name": {"required": True}},
    }
    preference_body = {
        "invitation_type": "*",
        "delivery_method": "email",
        "is_enabled": True,
        "frequency_limit": 3,
        "frequency_period": "daily",
    }
    return {
        ("POST", "/api/v1/notifications/"): (
            "/api/v1/notifications/",
            {
                "user_id": str(w["user"].pk),
                "title": "Hi",
                "message": "There",
                "channels": ["in_app"],
                "context": {"a": 1},
                "metadata": {"b": 2},
                "priority": "normal",
                "scheduled_at": (timezone.now() + timedelta(hours=1)).isoformat(),
            },
        ),
        ("POST", "/api/v1/preferences/"): ("/api/v1/preferences/", preference_body),
        ("PUT", "/api/v1/preferences/{id}/"): (
            f"/api/v1/preferences/{preference.pk}/",
            preference_body,
        ),
        ("PATCH", "/api/v1/preferences/{id}/"): (
            f"/api/v1/preferences/{preference.pk}/",
            {"frequency_limit": 5},
        ),
        ("POST", "/api/v1/me/tokens/"): ("/api/v1/me/tokens/", {"name": "fuzz"}),
        ("POST", "/api/v1/devices/"): (
            "/api/v1/devices/",
            {
                "kind": "webpush",
                "subscription": {
                    "endpoint": "https://push.example.test/wp/fuzz",
                    "keys": {"p256dh": "BExamplePublicKey", "auth": "c2VjcmV0"},
                },
                "platform": "web",
                "label": "fuzz",
            },
        ),
        ("POST", "/api/v1/invitations/"): (
            "/api/v1/invitations/",
            {
                "invitation_type": "story",
                "invitee_email": "someone@example.test",
                "message": "Join",
            },
        ),
        ("POST", "/api/v1/invitations/by-token/{token}/accept/"): (
            f"/api/v1/invitations/by-token/{link}/accept/",
            {"message": "yes"},
        ),
        ("POST", "/api/v1/invitations/by-token/{token}/decline/"): (
            f"/api/v1/invitations/by-token/{link}/decline/",
            {"reason": "no"},
        ),
        ("POST", "/api/v1/auctions/{id}/bids/"): (
            f"/api/v1/auctions/{w['auction'].pk}/bids/",
            {"amount": "110.00"},
        ),
        ("POST", "/api/v1/auctions/"): (
            "/api/v1/auctions/",
            {
                "title": "Fuzz clock", "auction_type": "dutch",
                "starts_at": "2031-01-01T10:00:00Z", "ends_at": "2031-01-01T12:00:00Z",
                "starting_price": "100.00", "reserve_price": "80.00", "currency": "EUR",
                "config": {"decrement": "5.00"}, "items": [{"title": "Clock"}],
                "extension_seconds": 10,
            },
        ),
        ("PATCH", "/api/v1/auctions/{id}/"): (
            f"/api/v1/auctions/{w['draft'].pk}/",
            {"title": "Draft 2", "reserve_price": "90.00", "config": {"tick_seconds": 5}},
        ),
        ("POST", "/api/v1/auctions/{id}/items/"): (
            f"/api/v1/auctions/{w['draft'].pk}/items/",
            {"title": "Another", "quantity": 2},
        ),
        ("POST", "/api/v1/auctions/{id}/cancel/"): (
            f"/api/v1/auctions/{w['draft'].pk}/cancel/",
            {"reason": "fuzz"},
        ),
        ("PATCH", "/api/v1/providers/{provider_name}/"): (
            "/api/v1/providers/mailgun/",
            {"priority": 3, "is_enabled": True},
        ),
        ("POST", "/api/v1/templates/"): ("/api/v1/templates/", template_body),
        ("PUT", "/api/v1/templates/{id}/"): (f"/api/v1/templates/{template.pk}/", template_body),
        ("PATCH", "/api/v1/templates/{id}/"): (
            f"/api/v1/templates/{template.pk}/",
            {"template_name": "Renamed"},
        ),
        ("POST", "/api/v1/templates/{id}/preview/"): (
            f"/api/v1/templates/{template.pk}/preview/",
            {"context": {"name": "Ada", "amount": "1"}},
        ),
        ("POST", "/api/v1/suppressions/"): (
            "/api/v1/suppressions/",
            {"channel": "email", "address": "fuzz@example.test", "reason": "manual"},
        ),
        ("POST", "/api/v1/news-articles/"): (
            "/api/v1/news-articles/",
            {"title": "Fuzzed article", "summary": "Short.", "tags": ["a"]},
        ),
        ("POST", "/api/v1/news-narrations/"): (
            "/api/v1/news-narrations/",
            {"article": w["article"].pk, "narrator_profile": "anchor"},
        ),
        ("POST", "/api/v1/roleplay-templates/"): (
            "/api/v1/roleplay-templates/",
            {"template_name": "Fuzz", "total_characters": 2, "roles": [{"role_name": "A"}]},
        ),
        ("POST", "/api/v1/roleplay-templates/{id}/roles/"): (
            f"/api/v1/roleplay-templates/{w['roleplay'].pk}/roles/",
            {"role_name": "Fuzz role"},
        ),
        ("POST", "/api/v1/audiences/"): (
            "/api/v1/audiences/",
            {"name": "fuzz-new", "kind": "list", "user_ids": [str(w["user"].pk)]},
        ),
        ("PUT", "/api/v1/audiences/{id}/"): (
            f"/api/v1/audiences/{audience.pk}/",
            {"name": "fuzzed", "kind": "region", "value": "eu", "description": "d"},
        ),
        ("PATCH", "/api/v1/audiences/{id}/"): (
            f"/api/v1/audiences/{audience.pk}/",
            {"description": "changed"},
        ),
        ("POST", "/api/v1/broadcasts/"): (
            "/api/v1/broadcasts/",
            {
                "audience": audience.pk,
                "template_key": template.template_key,
                "channels": ["email"],
                "context": {"name": "Ada", "amount": "1"},
                "name": "Fuzzed broadcast",
                "send_at": (timezone.now() + timedelta(days=1)).isoformat(),
                "cancellation_key": "fuzz-broadcast",
            },
        ),
        ("POST", "/api/v1/broadcasts/cancel/"): (
            "/api/v1/broadcasts/cancel/",
            {"cancellation_key": "fuzz-broadcast"},
        ),
        ("POST", "/api/v1/workflows/"): (
            "/api/v1/workflows/",
            {"key": "fuzz-new", "name": "New", "is_active": True, "steps": WORKFLOW_STEPS},
        ),
        ("PUT", "/api/v1/workflows/{key}/"): (
            "/api/v1/workflows/fuzzed/",
            {"key": "fuzzed", "name": "Fuzzed", "description": "d", "steps": WORKFLOW_STEPS},
        ),
        ("PATCH", "/api/v1/workflows/{key}/"): (
            "/api/v1/workflows/fuzzed/",
            {"steps": WORKFLOW_STEPS[::-1]},
        ),
        ("POST", "/api/v1/workflows/{key}/trigger/"): (
            "/api/v1/workflows/fuzzed/trigger/",
            {
                "user_id": str(w["user"].pk),
                "data": {"amount": 1},
                "cancellation_key": "fuzz-run",
            },
        ),
        ("POST", "/api/v1/workflows/cancel/"): (
            "/api/v1/workflows/cancel/",
            {"cancellation_key": "fuzz-run", "workflow": "fuzzed"},
        ),
        ("POST", "/api/v1/providers/{name}/events/"): (
            "/api/v1/providers/mailgun/events/",
            {"signature": {"timestamp": "1", "token": "t", "signature": "s"}},
        ),
    }


def _schema_write_operations_with_a_body() -> set[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch") and "requestBody" in operation
    }


def _send(client, method: str, url: str, body: bytes, headers: dict[str, str]):
    return client.generic(method, url, body, content_type="application/json", **headers)


def test_every_write_endpoint_of_the_schema_is_fuzzed(world):
    assert set(_endpoints(world)) == _schema_write_operations_with_a_body()


@pytest.mark.parametrize("kind", sorted(UNPARSABLE))
def test_unparsable_bodies_are_400_malformed_request_everywhere(kind, world, client):
    body = UNPARSABLE[kind]
    answers = {}
    for (method, _path), (url, _valid) in _endpoints(world).items():
        response = _send(client, method, url, body, world["headers"])
        answers[f"{method} {url}"] = (response.status_code, response.json()["error"]["code"])
    assert set(answers.values()) == {(400, "MALFORMED_REQUEST")}, answers


@pytest.mark.parametrize("kind", ["deep_array", "deep_object", "huge_float", "duplicate_key"])
@pytest.mark.parametrize("provider", ["mailgun", "vonage", "sendgrid", "postmark", "twilio"])
def test_receipt_endpoints_never_fail_on_bad_bodies(kind, provider, world, client):
    response = _send(client, "POST", f"/api/v1/providers/{provider}/events/", UNPARSABLE[kind], {})
    # parsed before verification (Mailgun, Vonage JSON): 400; verified first: 403
    expected = (400, "MALFORMED_REQUEST") if provider in ("mailgun", "vonage") else (403,)
    assert (response.status_code, response.json()["error"]["code"])[: len(expected)] == expected


def test_hostile_field_values_never_give_a_server_error(world, client):
    client.raise_request_exception = False  # collect every 500, not only the first
    failures = []
    for (method, _path), (url, valid) in _endpoints(world).items():
        for field in valid:
            for value in HOSTILE_VALUES:
                body = json.dumps({**valid, field: value}).encode()
                response = _send(client, method, url, body, world["headers"])
                if response.status_code >= 500:
                    failures.append((method, url, field, repr(value)[:40], response.status_code))
    assert failures == [], "\n".join(map(str, failures))


def test_unsupported_media_type_is_415_in_the_error_shape(world, client):
    answers = {}
    for (method, path), (url, _valid) in _endpoints(world).items():
        if path.endswith("/events/"):
            continue  # receipts: Twilio and Vonage post forms
        response = client.generic(
            method, url, "title=x&message=y", content_type="text/plain", **world["headers"]
        )
        answers[f"{method} {url}"] = (response.status_code, response.json()["error"]["code"])

    assert set(answers.values()) == {(415, "UNSUPPORTED_MEDIA_TYPE")}, answers


def test_a_uuid_for_a_missing_object_is_404_not_500(world, client):
    response = _send(
        client,
        "POST",
        f"/api/v1/auctions/{uuid.uuid4()}/bids/",
        b'{"amount": "1"}',
        world["headers"],
    )
    assert response.status_code == 404


def _schema_list_queries() -> dict[str, list[str]]:
    """Every GET path of the schema without path parameters, with its query parameters."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        path: [p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"]
        for path, operations in schema["paths"].items()
        if "get" in operations and "{" not in path
    }


def test_a_nul_byte_in_any_query_parameter_is_a_400_naming_it(world, client):
    """PostgreSQL refuses NUL in text: unchecked, a filter value with %00 was a 500
    (GET /api/v1/suppressions/?address=%00, found by schemathesis)."""
    client.raise_request_exception = False
    answers = {}
    for path, names in _schema_list_queries().items():
        for name in [*names, "q"]:
            response = client.get(path, {name: "a\x00b"}, **world["headers"])
            answers[f"{path}?{name}"] = (
                response.status_code,
                tuple(response.json()["error"]["fields"].get(name, ())),
            )

    expected = (400, ("must not contain a NUL character",))
    assert len(answers) > 40
    assert {k: v for k, v in answers.items() if v != expected} == {}


def test_a_nul_byte_in_a_page_query_is_a_plain_400(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/admin/deliveries/notificationdelivery/", {"q": "x\x00"})
    assert response.status_code == 400
    assert b"NUL" in response.content
