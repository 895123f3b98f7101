"""Workflow API and engine without workers: validation (clear 400s), versions, triggers,
throttles, branches, cancellation, idempotency, who sees which run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Workflow, WorkflowRun, WorkflowRunStep
from campaigns.services.workflows import (
    step_execute,
    workflow_save,
    workflow_steps_dispatch_due,
    workflow_trigger,
)
from deliveries.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

EMAIL = {"type": "channel", "channel": "in_app", "title": "Hi", "message": "Amount {{ amount }}"}


@pytest.fixture
def staff_client(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    return api_client


@pytest.mark.parametrize(
    ("steps", "field", "reason"),
    [
        ([], "steps", "non-empty"),
        ([{"type": "teleport"}], "steps[0].type", "must be one of"),
        ([{"type": "delay"}], "steps[0]", "exactly one of duration or until"),
        ([{"type": "delay", "duration": "5 parsecs"}], "steps[0].duration", "duration such as"),
        ([{"type": "delay", "duration": -3}], "steps[0].duration", "more than 0"),
        ([{"type": "digest", "window": "2s", "max_wait": "1s"}], "steps[0].max_wait", "at least"),
        ([{"type": "throttle", "window": "1m"}], "steps[0].limit", "whole number"),
        ([EMAIL, {"type": "branch", "when": "sunny"}], "steps[1].when", "one of"),
        ([{"type": "branch", "when": "unread", "step": 0}], "steps[0].step", "earlier step"),
        (
            [{"type": "channel", "channel": "pigeon", "title": "a", "message": "b"}],
            "steps[0].channel",
            "unknown channel",
        ),
        (
            [{"type": "channel", "channel": "email", "title": "{% if %}", "message": "b"}],
            "steps[0].title",
            "line 1",
        ),
        ([{"type": "channel", "channel": "email", "title": "a"}], "steps[0].message", "required"),
        (
            [{"type": "escalate", "in_app": {"template": "outbid"}, "email": {"template": "x"}}],
            "steps[0].email_after",
            "duration",
        ),
        ([{"type": "delay", "duration": 5, "colour": "red"}], "steps[0].colour", "unknown field"),
    ],
)
def test_invalid_steps_are_a_400_naming_the_field(staff_client, steps, field, reason):
    response = staff_client.post(
        "/api/v1/workflows/", {"key": "bad", "name": "Bad", "steps": steps}, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "INVALID_WORKFLOW"
    assert list(error["fields"]) == [field]
    assert reason in error["fields"][field][0]
    assert not Workflow.objects.filter(key="bad").exists()


def test_edit_adds_a_version_and_a_running_instance_keeps_its_own(staff_client, user):
    first = [{"type": "delay", "duration": "1h"}, EMAIL]
    created = staff_client.post(
        "/api/v1/workflows/", {"key": "welcome", "name": "W", "steps": first}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1
    result = workflow_trigger("welcome", recipients=[user.pk], data={"amount": 3})
    second = [{"type": "delay", "duration": "2h"}, EMAIL]
    updated = staff_client.patch("/api/v1/workflows/welcome/", {"steps": second}, format="json")
    assert updated.json()["version"] == 2
    assert updated.json()["steps"] == second
    # the same steps again: no new version
    staff_client.patch("/api/v1/workflows/welcome/", {"steps": second}, format="json")
    assert staff_client.get("/api/v1/workflows/welcome/").json()["version"] == 2
    run = WorkflowRun.objects.get(pk=result.runs[0].pk)
    assert run.version.version == 1
    step = run.steps.get()
    # the delay of version 1 (1 h), not version 2's
    assert abs((step.due_at - run.created_at) - timedelta(hours=1)) < timedelta(seconds=5)


def test_workflow_admin_api_is_staff_only(api_client, user):
    api_client.force_authenticate(user)
    assert api_client.get("/api/v1/workflows/").status_code == 403
    response = api_client.post("/api/v1/workflows/", {"key": "x", "steps": [EMAIL]}, format="json")
    assert response.status_code == 403


def _make(key: str, steps: list) -> Workflow:
    return workflow_save(key=key, name=key, steps=steps)


def test_throttle_3_per_minute_sends_3_and_throttles_the_rest(staff_client, user):
    _make("ping", [{"type": "throttle", "limit": 3, "window": "1m", "key": "room"}, EMAIL])
    for n in range(7):
        response = staff_client.post(
            "/api/v1/workflows/ping/trigger/",
            {"user_id": str(user.pk), "data": {"amount": n, "room": "a"}},
            format="json",
        )
        assert response.status_code == 201, response.content
    decisions = list(
        WorkflowRunStep.objects.filter(index=0)
        .order_by("run_id")
        .values_list("decision", flat=True)
    )
    assert decisions == ["passed"] * 3 + ["throttled"] * 4
    assert Notification.objects.filter(user=user).count() == 3
    # another key has its own budget
    workflow_trigger("ping", recipients=[user.pk], data={"amount": 9, "room": "b"})
    assert Notification.objects.filter(user=user).count() == 4
    runs = WorkflowRun.objects.filter(decision="throttled")
    assert runs.count() == 4 and {r.state for r in runs} == {"completed"}


def test_branch_on_data_and_on_unread(user):
    _make(
        "big",
        [
            {"type": "branch", "when": "data", "field": "amount", "op": "gte", "value": 100},
            EMAIL,
            {"type": "branch", "when": "unread"},
            {**EMAIL, "title": "Reminder"},
        ],
    )
    small = workflow_trigger("big", recipients=[user.pk], data={"amount": 5}).runs[0]
    small.refresh_from_db()
    assert (small.state, small.decision) == ("completed", "branch_not_taken")
    assert not Notification.objects.exists()
    big = workflow_trigger("big", recipients=[user.pk], data={"amount": 500}).runs[0]
    big.refresh_from_db()
    # unread → the reminder went out too
    assert big.decision == "completed"
    assert list(Notification.objects.order_by("created_at").values_list("title", flat=True)) == [
        "Hi",
        "Reminder",
    ]


def test_unread_branch_stops_once_read(user):
    _make(
        "nudge",
        [
            EMAIL,
            {"type": "delay", "duration": "1m"},
            {"type": "branch", "when": "unread"},
            {**EMAIL, "title": "Again"},
        ],
    )
    run = workflow_trigger("nudge", recipients=[user.pk], data={"amount": 1}).runs[0]
    Notification.objects.filter(user=user).update(is_read=True, read_at=timezone.now())
    step = WorkflowRunStep.objects.get(run=run, index=1)
    assert step_execute(step.pk, now=timezone.now() + timedelta(minutes=2)) == "ran"
    run.refresh_from_db()
    assert run.decision == "branch_not_taken"
    assert WorkflowRunStep.objects.get(run=run, index=2).detail["engaged"] == "read"
    assert Notification.objects.filter(user=user).count() == 1


def test_cancel_by_key_stops_future_steps(staff_client, user, other_user):
    _make("later", [{"type": "delay", "duration": "1m"}, EMAIL])
    staff_client.post(
        "/api/v1/workflows/later/trigger/",
        {
            "recipients": [str(user.pk), str(other_user.pk)],
            "data": {"amount": 1},
            "cancellation_key": "order-7",
        },
        format="json",
    )
    response = staff_client.post(
        "/api/v1/workflows/cancel/", {"cancellation_key": "order-7"}, format="json"
    )
    assert response.json() == {"cancelled": 2}
    assert set(WorkflowRun.objects.values_list("state", flat=True)) == {"cancelled"}
    assert set(WorkflowRunStep.objects.values_list("state", flat=True)) == {"cancelled"}
    # the dispatcher finds nothing due even once the delay has passed
    later = timezone.now() + timedelta(minutes=5)
    assert workflow_steps_dispatch_due(now=later)["due"] == 0
    assert not Notification.objects.exists()


def test_idempotency_key_per_caller(staff_client, user):
    _make("once", [EMAIL])
    body = {"user_id": str(user.pk), "data": {"amount": 1}}
    first = staff_client.post(
        "/api/v1/workflows/once/trigger/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    again = staff_client.post(
        "/api/v1/workflows/once/trigger/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["runs"][0]["id"] == again.json()["runs"][0]["id"]
    assert WorkflowRun.objects.count() == 1 and Notification.objects.count() == 1
    other = staff_client.post(
        "/api/v1/workflows/once/trigger/",
        {**body, "data": {"amount": 2}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"data": {}}, 400, "recipients"),
        ({"user_id": "00000000-0000-0000-0000-000000000001"}, 400, "recipients"),
        ({"user_id": None, "send_at": "tomorrow-ish"}, 400, "send_at"),
        ({"user_id": None, "send_at": "2026-12-03T09:00"}, 400, "send_at"),
    ],
)
def test_bad_triggers_are_clear_400s(staff_client, user, body, status, field):
    _make("t", [EMAIL])
    if "user_id" in body and body["user_id"] is None:
        body = {**body, "user_id": str(user.pk)}
    response = staff_client.post("/api/v1/workflows/t/trigger/", body, format="json")
    assert response.status_code == status, response.content
    assert field in response.json()["error"]["fields"]
    assert not WorkflowRun.objects.exists()


def test_unknown_workflow_is_404_and_users_cannot_trigger(api_client, staff_client, user):
    response = staff_client.post(
        "/api/v1/workflows/nope/trigger/", {"user_id": str(user.pk)}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "WORKFLOW_NOT_FOUND"
    _make("t", [EMAIL])
    api_client.force_authenticate(user)
    response = api_client.post(
        "/api/v1/workflows/t/trigger/", {"user_id": str(user.pk)}, format="json"
    )
    assert response.status_code == 403


def test_runs_are_visible_to_their_user_and_staff_only(api_client, staff_user, user, other_user):
    _make("seen", [EMAIL, {"type": "delay", "duration": "1h"}, EMAIL])
    run = workflow_trigger("seen", recipients=[user.pk], data={"amount": 4}).runs[0]
    api_client.force_authenticate(user)
    body = api_client.get(f"/api/v1/workflow-runs/{run.pk}/").json()
    assert (body["workflow"], body["state"], body["version"]) == ("seen", "waiting", 1)
    assert [(s["index"], s["step_type"], s["state"], s["decision"]) for s in body["steps"]] == [
        (0, "channel", "done", "sent"),
        (1, "delay", "waiting", "waiting"),
    ]
    assert body["steps"][0]["notification_ids"] == [str(Notification.objects.get(user=user).pk)]
    assert body["steps"][0]["finished_at"] and body["steps"][1]["due_at"]
    api_client.force_authenticate(other_user)
    assert api_client.get(f"/api/v1/workflow-runs/{run.pk}/").status_code == 404
    assert api_client.get("/api/v1/workflow-runs/").json()["count"] == 0
    api_client.force_authenticate(staff_user)
    assert api_client.get(f"/api/v1/workflow-runs/{run.pk}/").status_code == 200


def test_send_at_local_time_is_each_recipients_own(staff_client, user, other_user):
    user.timezone, other_user.timezone = "Asia/Tokyo", "America/New_York"
    user.save(update_fields=["timezone"])
    other_user.save(update_fields=["timezone"])
    _make("morning", [EMAIL])
    staff_client.post(
        "/api/v1/workflows/morning/trigger/",
        {
            "recipients": [str(user.pk), str(other_user.pk)],
            "data": {"amount": 1},
            "send_at": "2030-01-15T09:00 local",
        },
        format="json",
    )
    due = {
        s.run.user_id: s.due_at
        for s in WorkflowRunStep.objects.select_related("run").filter(index=0)
    }
    assert due[user.pk].isoformat() == "2030-01-15T00:00:00+00:00"  # 09:00 JST
    assert due[other_user.pk].isoformat() == "2030-01-15T14:00:00+00:00"  # 09:00 EST
    assert not Notification.objects.exists()


def test_an_inactive_workflow_refuses_triggers_with_409(staff_client, user):
    _make("off", [EMAIL])
    staff_client.patch("/api/v1/workflows/off/", {"is_active": False}, format="json")
    response = staff_client.post(
        "/api/v1/workflows/off/trigger/", {"user_id": str(user.pk)}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "WORKFLOW_INACTIVE"
    assert not WorkflowRun.objects.exists()
