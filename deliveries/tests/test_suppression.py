"""The suppression list: a hard bounce or a complaint, posted as a real signed Mailgun
callback to the receipt endpoint, suppresses the address; the next notify() to it is
skipped with decision ``suppressed``; a soft bounce does not; lifting lets the next one
through; notify_many() honours it with one lookup; the API is staff-only.

Rows are real (PostgreSQL)."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.models import NotificationDelivery, Suppression
from deliveries.selectors import suppressed_among
from deliveries.services import notify, notify_many
from deliveries.services.suppression import suppression_add, suppression_lift
from providers.models import Provider
from sandbox import DEFAULT_CREDENTIALS
from sandbox.signing import mailgun_signature
from users.models import User

pytestmark = pytest.mark.django_db

SIGNING_KEY = DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"]
URL = "/api/v1/suppressions/"


@pytest.fixture
def mailgun(monkeypatch):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    return Provider.objects.create(
        provider_name="mailgun", provider_type="email", provider_class="mailgun"
    )


def _sent_email(user) -> NotificationDelivery:
    """An email to ``user`` that went out through Mailgun (message id ``<pk>@mg``)."""
    result = notify(user, title="Your order shipped", message="On its way", channels=["email"])
    email = result.deliveries[0]
    assert email.status == "pending"
    NotificationDelivery.objects.filter(pk=email.pk).update(
        status="sent", provider_name="mailgun", provider_message_id=f"{email.pk}@mg"
    )
    return email


def _post_receipt(client, message_id: str, event: str, severity: str = "permanent"):
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(SIGNING_KEY, timestamp, token),
        },
        "event-data": {
            "event": event,
            "severity": severity,
            "recipient": "someone@example.test",
            "delivery-status": {"message": "550 5.1.1 mailbox does not exist"},
            "message": {"headers": {"message-id": f"<{message_id}>"}},
        },
    }
    response = client.post(
        "/api/v1/providers/mailgun/events/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _next_email(user) -> NotificationDelivery:
    return notify(user, title="Next", message="Another one", channels=["email"]).deliveries[0]


@pytest.mark.parametrize(
    ("event", "reason"), [("failed", "hard_bounce"), ("complained", "complaint")]
)
def test_a_hard_bounce_or_complaint_suppresses_the_address(
    event, reason, client, make_user, mailgun
):
    user = make_user(email="Carol.Bounce@Example.test")
    email = _sent_email(user)

    assert _post_receipt(client, f"{email.pk}@mg", event)["updated"] == 1

    row = Suppression.objects.get()
    assert (row.channel, row.address, row.reason) == ("email", "carol.bounce@example.test", reason)
    assert row.delivery_id == email.pk and row.lifted_at is None
    assert row.receipt["provider"] == "mailgun" and row.receipt["event"] == event

    # the next notification to that address is skipped, with the rule recorded
    following = _next_email(user)
    assert following.status == "skipped"
    assert following.recipient == user.email
    assert following.delivery_metadata["decision"]["rule"] == "suppressed"

    # a repeat of the receipt (provider retry) adds nothing
    _post_receipt(client, f"{email.pk}@mg", event)
    assert Suppression.objects.count() == 1


def test_a_soft_bounce_does_not_suppress(client, user, mailgun):
    email = _sent_email(user)

    _post_receipt(client, f"{email.pk}@mg", "failed", severity="temporary")

    assert not Suppression.objects.exists()
    assert _next_email(user).status == "pending"


def test_a_bounce_the_provider_calls_soft_does_not_suppress(user):
    """Postmark's SoftBounce is a failed receipt; a bounced one whose details say soft or
    temporary (e.g. SendGrid's ``type: blocked``) is not hard either."""
    from deliveries.services.suppression import suppression_reason_for
    from providers.types import Receipt

    def bounced(**fields):
        return Receipt(provider_message_id="m", status="bounced", event="bounce", **fields)

    assert suppression_reason_for(bounced(raw={"type": "blocked"})) is None
    assert suppression_reason_for(bounced(error_code="POSTMARK_SOFTBOUNCE")) is None
    assert suppression_reason_for(bounced(raw={"severity": "temporary"})) is None
    assert suppression_reason_for(bounced(raw={"type": "bounce"})) == "hard_bounce"
    assert suppression_reason_for(bounced(error_code="MAILGUN_BOUNCE")) == "hard_bounce"
    assert (
        suppression_reason_for(
            Receipt(provider_message_id="m", status="failed", event="SoftBounce")
        )
        is None
    )


def test_lifting_lets_the_next_one_through(client, user, staff_user, mailgun):
    email = _sent_email(user)
    _post_receipt(client, f"{email.pk}@mg", "failed")
    assert _next_email(user).status == "skipped"

    row = Suppression.objects.get()
    assert suppression_lift(row, by=staff_user) is True
    assert suppression_lift(row, by=staff_user) is False  # already lifted

    assert _next_email(user).status == "pending"
    row.refresh_from_db()
    assert row.lifted_at is not None and row.lifted_by == staff_user
    # it can be suppressed again: one active row per channel × address, history kept
    _post_receipt(client, f"{email.pk}@mg", "failed")  # already bounced: no row moves
    suppression_add(channel="email", address=user.email, reason="manual")
    assert Suppression.objects.count() == 2
    assert Suppression.objects.filter(lifted_at__isnull=True).count() == 1


def test_other_channels_and_addresses_are_not_affected(make_user):
    bounced = make_user(email="gone@example.test", phone="+14155550123")
    fine = make_user(email="here@example.test")
    suppression_add(channel="email", address="GONE@example.test")

    result = notify(bounced, title="T", message="M", channels=["email", "sms", "in_app"])
    statuses = {d.delivery_type: d.status for d in result.deliveries}
    assert statuses == {"email": "skipped", "sms": "pending", "in_app": "pending"}
    assert _next_email(fine).status == "pending"


def test_a_suppressed_phone_matches_in_e164(make_user):
    user = make_user(phone="+1 415-555-0123")
    suppression_add(channel="sms", address="+14155550123")
    delivery = notify(user, title="T", message="M", channels=["sms"]).deliveries[0]
    assert delivery.status == "skipped"
    assert delivery.delivery_metadata["decision"]["rule"] == "suppressed"


def test_notify_many_honours_it_with_one_lookup(make_user):
    users = [User(email=f"many{n}@example.test") for n in range(50)]
    User.objects.bulk_create(users)
    suppression_add(channel="email", address="many7@example.test")
    suppression_add(channel="email", address="MANY31@example.test")

    with CaptureQueriesContext(connection) as queries:
        results = notify_many(users, title="T", message="M", channels=["email", "in_app"])

    lookups = [q for q in queries.captured_queries if '"suppressions"' in q["sql"]]
    assert len(lookups) == 1
    skipped = {
        r.deliveries[0].recipient
        for r in results
        for d in r.deliveries
        if d.status == "skipped" and d.delivery_type == "email"
    }
    assert skipped == {"many7@example.test", "many31@example.test"}
    for r in results:
        for d in r.deliveries:
            if d.status == "skipped":
                assert d.delivery_metadata["decision"]["rule"] == "suppressed"
    assert sum(d.status == "pending" for r in results for d in r.deliveries) == 98


def test_the_lookup_is_one_query_and_ignores_lifted_rows(django_assert_num_queries):
    row, _ = suppression_add(channel="email", address="a@example.test")
    suppression_add(channel="push", address="tok-1")
    with django_assert_num_queries(1):
        found = suppressed_among(
            [("email", "A@example.test"), ("push", "tok-1"), ("email", "b@example.test")]
        )
    assert found == {("email", "A@example.test"), ("push", "tok-1")}
    suppression_lift(row)
    assert suppressed_among([("email", "a@example.test")]) == set()


# -- the staff API -----------------------------------------------------------------------


def test_the_api_is_staff_only(api_client, user):
    assert api_client.get(URL).status_code in (401, 403)
    api_client.force_authenticate(user)
    assert api_client.get(URL).status_code == 403
    assert (
        api_client.post(URL, {"channel": "email", "address": "x@example.test"}).status_code == 403
    )
    row, _ = suppression_add(channel="email", address="x@example.test")
    assert api_client.post(f"{URL}{row.pk}/lift/").status_code == 403
    row.refresh_from_db()
    assert row.lifted_at is None


def test_staff_add_list_and_lift(api_client, staff_user, user):
    api_client.force_authenticate(staff_user)

    created = api_client.post(
        URL, {"channel": "email", "address": " Alice@Example.test "}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["address"], body["reason"], body["active"]) == (
        "alice@example.test",
        "manual",
        True,
    )
    assert body["created_by"] == "staff@example.test"
    again = api_client.post(
        URL, {"channel": "email", "address": "alice@example.test"}, format="json"
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert _next_email(user).status == "skipped"

    listed = api_client.get(URL, {"address": "ALICE@example.test", "active": "true"}).json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]

    # DELETE is not how to lift: the row stays as history, so the API does not offer it
    assert api_client.delete(f"{URL}{body['id']}/").status_code == 405
    assert api_client.get(f"{URL}{body['id']}/").json()["active"] is True

    lifted = api_client.post(f"{URL}{body['id']}/lift/")
    assert lifted.status_code == 200
    assert lifted.json()["active"] is False and lifted.json()["lifted_by"] == "staff@example.test"
    # still readable after lifting, as the history it is
    after = api_client.get(f"{URL}{body['id']}/")
    assert after.status_code == 200 and after.json()["lifted_at"] is not None
    assert api_client.post(f"{URL}{body['id']}/lift/").json()["lifted_at"] == after.json()[
        "lifted_at"
    ]  # lifting again changes nothing
    assert api_client.get(URL, {"active": "true"}).json()["results"] == []
    assert api_client.get(URL, {"active": "false"}).json()["results"][0]["id"] == body["id"]
    assert _next_email(user).status == "pending"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"channel": "fax", "address": "a@example.test"}, "channel"),
        ({"channel": "in_app", "address": "1"}, "channel"),
        ({"channel": "email", "address": "not-an-email"}, "address"),
        ({"channel": "sms", "address": "12"}, "address"),
        ({"channel": "email"}, "address"),
        ({"channel": "email", "address": "a@example.test", "reason": "bored"}, "reason"),
        ({"channel": "webhook", "address": "ftp://x"}, "address"),
    ],
)
def test_bad_input_is_400_with_the_field(api_client, staff_user, payload, field):
    api_client.force_authenticate(staff_user)
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Suppression.objects.exists()


def test_a_bad_filter_is_400(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    response = api_client.get(URL, {"active": "maybe"})
    assert response.status_code == 400
    assert "active" in response.json()["error"]["fields"]


def test_the_openapi_schema_covers_the_endpoints(client):
    document = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = document["paths"]
    assert set(paths["/api/v1/suppressions/"]) >= {"get", "post"}
    assert set(paths["/api/v1/suppressions/{id}/"]) == {"get"}
    assert set(paths["/api/v1/suppressions/{id}/lift/"]) == {"post"}
    post = paths["/api/v1/suppressions/"]["post"]
    assert {"200", "201", "400", "403"} <= set(post["responses"])
    assert "SuppressionCreateRequest" in document["components"]["schemas"]


@pytest.mark.parametrize("path", ["one", "batch"])
def test_a_delivery_planned_before_the_suppression_is_skipped_at_send_time(path, make_user):
    from deliveries.services import delivery_send
    from deliveries.services.sending.pipeline import deliveries_send_batch

    user = make_user(email="late@example.test")
    result = notify(user, title="T", message="M", channels=["email", "in_app"])
    email = next(d for d in result.deliveries if d.delivery_type == "email")
    assert email.status == "pending"
    suppression_add(channel="email", address="LATE@example.test")

    if path == "one":
        outcomes = [delivery_send(email.pk)]
    else:
        outcomes = [o for o in deliveries_send_batch([email.pk]) if o.delivery_id == email.pk]

    assert [o.outcome for o in outcomes] == ["suppressed"]
    email.refresh_from_db()
    assert email.status == "skipped"
    assert email.delivery_metadata["decision"]["rule"] == "suppressed"
    assert "lease" not in email.delivery_metadata


def test_a_batch_expires_skips_and_sends_each_row_by_its_own_state(make_user, smtp_server):
    """The batch's one pre-claim query finds both the expired and the suppressed rows; an
    expired row to a suppressed address is expired (as the single path decides)."""
    from datetime import timedelta

    from django.utils import timezone

    from deliveries.services.sending.pipeline import deliveries_send_batch

    sink, port = smtp_server
    Provider.objects.create(
        provider_name="batch-smtp",
        provider_type="email",
        provider_class="smtp",
        configuration={"host": "127.0.0.1", "port": port, "timeout": 5},
    )
    names = ("expired", "suppressed", "both", "plain")
    users = {name: make_user(email=f"{name}@example.test") for name in names}
    email = {
        name: next(
            d
            for d in notify(user, title="T", message="M", channels=["email"]).deliveries
            if d.delivery_type == "email"
        )
        for name, user in users.items()
    }
    NotificationDelivery.objects.filter(pk__in=[email["expired"].pk, email["both"].pk]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    for name in ("suppressed", "both"):
        suppression_add(channel="email", address=f"{name}@example.test")

    outcomes = {
        o.delivery_id: o.outcome for o in deliveries_send_batch([d.pk for d in email.values()])
    }

    assert {name: outcomes[d.pk] for name, d in email.items()} == {
        "expired": "expired",
        "suppressed": "suppressed",
        "both": "expired",
        "plain": "sent",
    }
    statuses = dict(
        NotificationDelivery.objects.filter(pk__in=outcomes).values_list("pk", "status")
    )
    assert [statuses[email[name].pk] for name in names] == ["expired", "skipped", "expired", "sent"]
    assert [m["To"] for m in sink.messages] == ["plain@example.test"]
