"""Broadcasts in one process (chunks run inline): the API (create, Idempotency-Key,
progress, cancel, cancel by key, validation, staff only), ``send_at`` and the dispatcher,
a local send time per recipient's timezone, and ``run_batch --template --audience``.
Real workers, 10,000 recipients and a SIGKILL are in ``test_broadcast_workers.py``."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from campaigns.models import BatchJobStatus, Broadcast, NotificationBatchJob
from campaigns.services import audience_save, batch_run_inline, broadcasts_start_due
from campaigns.tests.test_batch_helpers import bulk_users
from deliveries.models import Notification, NotificationDelivery

pytestmark = pytest.mark.django_db

BODY = {
    "template_key": "auction_started",
    "channels": ["in_app"],
    "context": {"auction_title": "Vintage Watch"},
}


@pytest.fixture(autouse=True)
def _catalogue(catalogue) -> None:
    """The template catalogue (a data migration a transactional test may have flushed)."""


@pytest.fixture
def staff(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    return api_client


def sent_to(broadcast: Broadcast) -> Counter:
    return Counter(
        Notification.objects.filter(
            idempotency_key__startswith=f"batch:{broadcast.job_id}:"
        ).values_list("user_id", flat=True)
    )


def test_api_broadcast_sends_each_member_once_with_progress(staff):
    users = bulk_users(25, region="eu")
    bulk_users(5, region="us")
    audience = audience_save(name="eu", kind="region", value="eu")

    response = staff.post("/api/v1/broadcasts/", {**BODY, "audience": audience.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "started" and body["progress"]["total"] == 25
    broadcast = Broadcast.objects.get(pk=body["id"])
    batch_run_inline(broadcast.job_id)

    progress = staff.get(f"/api/v1/broadcasts/{broadcast.pk}/").json()["progress"]
    assert (progress["status"], progress["processed"], progress["successful"]) == (
        "completed", 25, 25
    )
    assert sent_to(broadcast) == Counter({u.pk: 1 for u in users})
    rendered = NotificationDelivery.objects.filter(
        notification__idempotency_key__startswith=f"batch:{broadcast.job_id}:"
    ).first()
    assert rendered.delivery_type == "in_app"
    assert "Vintage Watch is now live" in str(rendered.delivery_metadata["message"])


def test_idempotency_key_returns_the_first_broadcast_and_refuses_another_body(staff):
    bulk_users(3)
    audience = audience_save(name="all", kind="all")
    body = {**BODY, "audience": audience.pk}

    first = staff.post("/api/v1/broadcasts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    repeat = staff.post("/api/v1/broadcasts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = staff.post(
        "/api/v1/broadcasts/", {**body, "name": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert Broadcast.objects.count() == NotificationBatchJob.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"template_key": "no_such_thing"}, "template"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"audience": 999999}, "audience"),
        ({"send_at_local": "tomorrow at nine"}, "send_at_local"),
        ({"send_at_local": "2030-01-01T09:00+02:00"}, "send_at_local"),
    ],
)
def test_bad_broadcasts_are_400_with_the_field(staff, change, field):
    bulk_users(2)
    audience = audience_save(name="all", kind="all")
    response = staff.post(
        "/api/v1/broadcasts/", {**BODY, "audience": audience.pk, **change}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not Broadcast.objects.exists()


def test_broadcasts_are_staff_only(api_client, user):
    api_client.force_authenticate(user)
    assert api_client.get("/api/v1/broadcasts/").status_code == 403
    assert api_client.post("/api/v1/broadcasts/", BODY, format="json").status_code == 403


@pytest.mark.parametrize("key", ["", "nul\u0000byte", "k" * 256, None, {"a": 1}])
def test_cancel_by_key_with_a_bad_key_is_a_400_naming_it(staff, key):
    response = staff.post("/api/v1/broadcasts/cancel/", {"cancellation_key": key}, format="json")
    assert response.status_code == 400, response.content
    assert "cancellation_key" in response.json()["error"]["fields"]


def test_send_at_waits_for_the_dispatcher_and_cancellation_key_stops_it_before_start(
    staff, staff_user
):
    users = bulk_users(4)
    audience = audience_save(name="all", kind="all")
    later = timezone.now() + timedelta(hours=2)
    body = {**BODY, "audience": audience.pk, "send_at": later.isoformat()}
    kept = staff.post("/api/v1/broadcasts/", body, format="json").json()
    dropped = staff.post(
        "/api/v1/broadcasts/", {**body, "cancellation_key": "promo-42"}, format="json"
    ).json()
    assert kept["status"] == dropped["status"] == "scheduled"
    assert kept["progress"] is None
    # not due yet: the dispatcher leaves both alone
    assert broadcasts_start_due() == 0

    # when the key cancels (before the start) …
    cancelled = staff.post(
        "/api/v1/broadcasts/cancel/", {"cancellation_key": "promo-42"}, format="json"
    )
    assert cancelled.json() == {"cancelled": [dropped["id"]]}

    # … then at send_at only the other one starts; the cancelled one never has a job
    assert broadcasts_start_due(now=later + timedelta(seconds=1)) == 1
    kept_row, dropped_row = Broadcast.objects.get(pk=kept["id"]), Broadcast.objects.get(
        pk=dropped["id"]
    )
    assert (kept_row.status, dropped_row.status) == ("started", "cancelled")
    assert dropped_row.job is None
    batch_run_inline(kept_row.job_id)
    assert sent_to(kept_row) == Counter({u.pk: 1 for u in [*users, staff_user]})
    # cancelling by the key again finds nothing left to cancel
    again = staff.post(
        "/api/v1/broadcasts/cancel/", {"cancellation_key": "promo-42"}, format="json"
    )
    assert again.json() == {"cancelled": []}


def test_cancel_a_started_broadcast_cancels_its_job(staff):
    bulk_users(6)
    audience = audience_save(name="all", kind="all")
    created = staff.post("/api/v1/broadcasts/", {**BODY, "audience": audience.pk}, format="json")
    pk = created.json()["id"]

    response = staff.post(f"/api/v1/broadcasts/{pk}/cancel/")
    assert response.status_code == 200
    broadcast = Broadcast.objects.get(pk=pk)
    assert broadcast.status == "cancelled"
    assert broadcast.job.status == BatchJobStatus.CANCELLED
    batch_run_inline(broadcast.job_id)  # its chunks find the job cancelled
    assert sum(sent_to(broadcast).values()) == 0


def test_local_send_time_gives_each_recipient_nine_in_their_own_timezone(staff, make_user):
    tokyo = make_user(timezone="Asia/Tokyo")
    york = make_user(timezone="America/New_York")
    utc = make_user(timezone="UTC")
    audience = audience_save(name="three", kind="list", user_ids=[tokyo.pk, york.pk, utc.pk])
    local = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT09:00")
    wall = datetime.fromisoformat(local)

    response = staff.post(
        "/api/v1/broadcasts/", {**BODY, "audience": audience.pk, "send_at_local": local},
        format="json",
    )
    assert response.status_code == 201, response.json()
    broadcast = Broadcast.objects.get(pk=response.json()["id"])
    # the job starts at the first 09:00 among the audience's timezones: Tokyo's
    assert broadcast.starts_at == wall.replace(tzinfo=ZoneInfo("Asia/Tokyo"))
    assert broadcast.status == "scheduled"
    assert broadcasts_start_due(now=broadcast.starts_at) == 1
    broadcast.refresh_from_db()
    batch_run_inline(broadcast.job_id)

    due = {
        d.notification.user_id: d.scheduled_at
        for d in NotificationDelivery.objects.filter(
            notification__idempotency_key__startswith=f"batch:{broadcast.job_id}:"
        ).select_related("notification")
    }
    assert due == {
        tokyo.pk: wall.replace(tzinfo=ZoneInfo("Asia/Tokyo")),
        york.pk: wall.replace(tzinfo=ZoneInfo("America/New_York")),
        utc.pk: wall.replace(tzinfo=ZoneInfo("UTC")),
    }


def test_a_broadcast_whose_audience_is_empty_at_start_fails_with_the_reason(staff):
    audience = audience_save(name="nobody", kind="region", value="mars")
    response = staff.post("/api/v1/broadcasts/", {**BODY, "audience": audience.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    assert "EMPTY_AUDIENCE" in response.json()["error"]


def test_run_batch_template_and_audience(make_user):
    users = bulk_users(12, region="eu")
    bulk_users(3, region="us")
    audience_save(name="europe", kind="region", value="eu")
    out = io.StringIO()

    call_command(
        "run_batch", "--template", "auction_started", "--audience", "audience:europe",
        "--channels", "in_app", "--context", '{"auction_title": "Clocks"}', "--chunk-size", "5",
        "--inline", "--no-wait", stdout=out,
    )

    job = NotificationBatchJob.objects.get()
    assert (job.job_type, job.status, job.total_notifications) == ("broadcast", "completed", 12)
    assert job.chunks.count() == 3
    per_user = Counter(
        Notification.objects.filter(idempotency_key__startswith=f"batch:{job.pk}:").values_list(
            "user_id", flat=True
        )
    )
    assert per_user == Counter({u.pk: 1 for u in users})


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--audience", "all"], "a template is required"),
        (["--template", "auction_started", "--audience", "audience:nope"], "no saved audience"),
        (["--template", "auction_started", "--audience", "all", "--context", "{"], "context"),
        (["--template", "nope", "--audience", "all"], "unknown template"),
    ],
)
def test_run_batch_template_refuses_bad_arguments(args, fragment):
    bulk_users(2)
    with pytest.raises(CommandError) as caught:
        call_command("run_batch", "broadcast", *args, stdout=io.StringIO())
    assert fragment in str(caught.value)
    assert not NotificationBatchJob.objects.exists()
