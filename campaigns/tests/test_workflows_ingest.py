"""Bulk ingestion (services/workflows/ingest.py): a list trigger whose workflow starts with a
digest joins every run to its window in a fixed number of statements, with the outcome the
step-by-step path records (the digest semantics of test_workflows_steps.py hold)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import WorkflowDigest, WorkflowRun, WorkflowRunStep
from campaigns.services.workflows import step_execute, workflow_save, workflow_trigger
from campaigns.tests.test_batch_helpers import bulk_users
from deliveries.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

SEND = {
    "type": "channel",
    "channel": "in_app",
    "title": "{{ digest.count }} bids",
    "message": "{{ digest_items }}",
}


def _workflow(key="d", **options):
    digest = {"type": "digest", "window": "10s", "key": "auction_id", "item": "{{ amount }}"}
    workflow_save(key=key, steps=[{**digest, **options}, SEND])


def test_a_list_trigger_opens_one_window_per_user_then_joins_them():
    _workflow(max_items=2)
    users = bulk_users(30)
    ids = [u.pk for u in users]
    first = workflow_trigger("d", recipients=ids, data={"auction_id": 1, "amount": "$1"})
    assert {r.decision for r in first.runs} == {""}  # leaders: the run goes on waiting
    leaders = WorkflowRunStep.objects.filter(run__in=first.runs)
    assert {(s.state, s.decision, s.group_key) for s in leaders} == {
        ("waiting", "collecting", "auction_id=1")
    }
    assert all(s.detail["digest"] for s in leaders)
    for amount in ("$2", "$3"):
        workflow_trigger("d", recipients=ids, data={"auction_id": 1, "amount": amount})
    digests = WorkflowDigest.objects.all()
    assert digests.count() == 30
    assert {(d.count, len(d.items)) for d in digests} == {(3, 2)}  # max_items caps the list
    later = WorkflowRun.objects.exclude(pk__in=[r.pk for r in first.runs])
    assert {(r.state, r.decision) for r in later} == {("completed", "digested")}
    skipped = WorkflowRunStep.objects.filter(run__in=later)
    assert {(s.state, s.decision) for s in skipped} == {("skipped", "digested")}
    # each leader, when its window closes, sends once with the full count
    when = timezone.now() + timedelta(seconds=11)
    for step in leaders:
        assert step_execute(step.pk, now=when) == "ran"
    assert Notification.objects.count() == 30
    assert set(Notification.objects.values_list("title", "message")) == {("3 bids", "$1\n$2")}


def test_statements_do_not_grow_with_recipients():
    _workflow()
    small, large = bulk_users(2), bulk_users(200)
    with CaptureQueriesContext(connection) as few:
        workflow_trigger("d", recipients=[u.pk for u in small], data={"auction_id": 1})
    with CaptureQueriesContext(connection) as many:
        workflow_trigger("d", recipients=[u.pk for u in large], data={"auction_id": 1})
    assert len(many) == len(few) <= 12
    # and again, now joining the open windows (one more: the digested runs end)
    with CaptureQueriesContext(connection) as join:
        workflow_trigger("d", recipients=[u.pk for u in large], data={"auction_id": 1})
    assert len(join) == len(few) + 1


def test_sliding_windows_move_on_in_bulk_but_not_past_max_wait(user):
    _workflow(mode="sliding", max_wait="15s")
    workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1})
    digest = WorkflowDigest.objects.get()
    opened, due = digest.opened_at, digest.due_at
    workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1})
    digest.refresh_from_db()
    assert due < digest.due_at <= opened + timedelta(seconds=15)


def test_a_closed_window_is_not_joined(user):
    _workflow()
    first = workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1, "amount": "a"})
    leader = WorkflowRunStep.objects.get(run=first.runs[0])
    step_execute(leader.pk, now=timezone.now() + timedelta(seconds=11))
    workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1, "amount": "b"})
    assert list(WorkflowDigest.objects.order_by("pk").values_list("is_open", "count")) == [
        (False, 1),
        (True, 1),
    ]


def test_idempotent_repeat_of_a_list_trigger_joins_nobody_twice():
    _workflow()
    ids = [u.pk for u in bulk_users(5)]
    workflow_trigger("d", recipients=ids, data={"auction_id": 1}, idempotency_key="ev:1")
    again = workflow_trigger("d", recipients=ids, data={"auction_id": 1}, idempotency_key="ev:1")
    assert not again.created
    assert set(WorkflowDigest.objects.values_list("count", flat=True)) == {1}


def test_send_first_keeps_the_step_by_step_path(user):
    _workflow(send_first=True)
    for amount in ("a", "b"):
        workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1, "amount": amount})
    assert list(Notification.objects.values_list("title", flat=True)) == ["1 bids"]
    decisions = WorkflowRunStep.objects.filter(index=0).order_by("run_id")
    assert list(decisions.values_list("decision", flat=True)) == ["sent_first", "collecting"]
