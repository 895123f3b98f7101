"""Triggering a workflow for a saved audience (``POST /workflows/{key}/trigger/`` with
``audience``) and broadcasting a workflow (``workflow_key``): one run per recipient through
the chunk machinery, each recipient once even when a chunk runs again."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from campaigns.handlers import broadcast_chunk
from campaigns.models import BatchChunk, Broadcast, NotificationBatchJob, WorkflowRun
from campaigns.services import audience_save, batch_run_inline
from campaigns.services.workflows import workflow_save
from campaigns.tests.test_batch_helpers import bulk_users
from deliveries.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

HELLO = [{"type": "channel", "channel": "in_app", "title": "Hi", "message": "{{ what }}"}]


@pytest.fixture
def staff(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    return api_client


@pytest.mark.parametrize("by", ["name", "id"])
def test_trigger_an_audience_by_name_or_id(staff, by):
    workflow_save(key="hello", steps=HELLO)
    eu = bulk_users(4, region="eu")
    bulk_users(3, region="us")
    audience = audience_save(name="eu users", kind="region", value="eu")
    ref = audience.name if by == "name" else str(audience.pk)
    response = staff.post(
        "/api/v1/workflows/hello/trigger/",
        {"audience": ref, "data": {"what": "news"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert sorted(r["user"] for r in response.json()["runs"]) == sorted(str(u.pk) for u in eu)
    assert Counter(Notification.objects.values_list("user_id", flat=True)) == Counter(
        {u.pk: 1 for u in eu}
    )
    assert set(Notification.objects.values_list("message", flat=True)) == {"news"}


def test_trigger_an_unknown_or_empty_audience_is_a_400_naming_it(staff):
    workflow_save(key="hello", steps=HELLO)
    response = staff.post("/api/v1/workflows/hello/trigger/", {"audience": "nobody"}, format="json")
    assert response.status_code == 400
    assert "audience" in response.json()["error"]["fields"]
    audience_save(name="empty", kind="region", value="mars")
    response = staff.post("/api/v1/workflows/hello/trigger/", {"audience": "empty"}, format="json")
    assert response.status_code == 400
    assert "no users" in response.json()["error"]["fields"]["audience"][0]
    assert not WorkflowRun.objects.exists()


def test_trigger_takes_recipients_or_an_audience_not_both(staff, user):
    workflow_save(key="hello", steps=HELLO)
    audience_save(name="all", kind="all")
    response = staff.post(
        "/api/v1/workflows/hello/trigger/",
        {"audience": "all", "recipients": [str(user.pk)]},
        format="json",
    )
    assert response.status_code == 400
    assert "recipients" in response.json()["error"]["fields"]


def test_a_broadcast_starts_a_workflow_per_recipient_once(staff, settings):
    settings.NP_BROADCAST_CHUNK_SIZE = 10
    workflow_save(key="hello", steps=HELLO)
    users = bulk_users(25, region="eu")
    audience = audience_save(name="eu", kind="region", value="eu")
    response = staff.post(
        "/api/v1/broadcasts/",
        {"audience": audience.pk, "workflow_key": "hello", "context": {"what": "sale"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["workflow_key"], body["template_key"]) == ("hello", "")
    broadcast = Broadcast.objects.get(pk=body["id"])
    batch_run_inline(broadcast.job_id)

    progress = staff.get(f"/api/v1/broadcasts/{broadcast.pk}/").json()["progress"]
    assert (progress["status"], progress["processed"], progress["successful"]) == (
        "completed", 25, 25
    )
    runs = WorkflowRun.objects.filter(idempotency_key__startswith=f"batch:{broadcast.job_id}:")
    assert Counter(runs.values_list("user_id", flat=True)) == Counter({u.pk: 1 for u in users})
    assert Notification.objects.filter(message="sale").count() == 25
    # a chunk run again (a worker died after its commit, say) starts nobody twice
    job = broadcast.job
    chunk = BatchChunk.objects.filter(job=job).order_by("pk").first()
    again = broadcast_chunk(job, chunk)
    assert again.successful == len(chunk.item_ids)
    assert runs.count() == 25 and Notification.objects.filter(message="sale").count() == 25


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workflow_key": "nope"}, "workflow"),
        ({"workflow_key": "hello", "template_key": "auction_started"}, "template_key"),
        ({}, "template_key"),
        ({"workflow_key": "hello", "channels": ["email"]}, "channels"),
    ],
)
def test_broadcast_workflow_input_errors_name_the_field(staff, body, field):
    workflow_save(key="hello", steps=HELLO)
    bulk_users(2)
    audience = audience_save(name="all", kind="all")
    response = staff.post("/api/v1/broadcasts/", {"audience": audience.pk, **body}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not Broadcast.objects.exists()


def test_run_batch_starts_a_workflow_for_an_audience():
    workflow_save(key="hello", steps=HELLO)
    users = bulk_users(12, region="eu")
    bulk_users(3, region="us")
    audience_save(name="europe", kind="region", value="eu")
    call_command(
        "run_batch", "--workflow", "hello", "--audience", "audience:europe",
        "--context", '{"what": "clocks"}', "--chunk-size", "5", "--inline", "--no-wait",
        stdout=io.StringIO(),
    )
    job = NotificationBatchJob.objects.get()
    assert (job.job_type, job.status, job.total_notifications) == ("broadcast", "completed", 12)
    assert job.job_config["workflow_key"] == "hello"
    runs = WorkflowRun.objects.filter(idempotency_key__startswith=f"batch:{job.pk}:")
    assert Counter(runs.values_list("user_id", flat=True)) == Counter({u.pk: 1 for u in users})
    assert Notification.objects.filter(message="clocks").count() == 12


def test_run_batch_refuses_an_unknown_workflow():
    bulk_users(2)
    with pytest.raises(CommandError) as caught:
        call_command(
            "run_batch", "--workflow", "nope", "--audience", "all", stdout=io.StringIO()
        )
    assert "unknown workflow" in str(caught.value)
    assert not NotificationBatchJob.objects.exists()
