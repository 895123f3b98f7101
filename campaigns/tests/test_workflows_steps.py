"""Step semantics without workers: digest windows (fixed, sliding, send-first), delays in the
user's timezone, escalation levels, the dispatcher's lease, the shipped catalogue, admin."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.models import Workflow, WorkflowDigest, WorkflowRun, WorkflowRunStep
from campaigns.services.workflows import (
    step_execute,
    steps_validate,
    workflow_save,
    workflow_steps_dispatch_due,
    workflow_trigger,
)
from campaigns.services.workflows.steps import next_clock_time, user_zone
from campaigns.workflow_catalogue import CATALOGUE_WORKFLOWS
from deliveries.models import Notification
from deliveries.services import inbox_mark_read
from realtime.models import RealTimeEvent
from realtime.services import event_acknowledge

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

SEND = {
    "type": "channel",
    "channel": "in_app",
    "title": "{{ digest_count }} bids",
    "message": "{{ digest_items }}",
}
PLAIN = {"type": "channel", "channel": "in_app", "title": "Hello", "message": "there"}


def _digest(**options):
    return {
        "type": "digest",
        "window": "10s",
        "key": "auction_id",
        "item": "{{ amount }}",
        **options,
    }


def _leader(run: WorkflowRun) -> WorkflowRunStep:
    return WorkflowRunStep.objects.get(run=run, index=0)


def test_fixed_digest_continues_once_with_the_items(user):
    workflow_save(key="d", steps=[_digest(max_items=3), SEND])
    runs = [
        workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1, "amount": f"${n}"}).runs[
            0
        ]
        for n in range(5)
    ]
    leader = _leader(runs[0])
    assert (leader.state, leader.decision) == ("waiting", "collecting")
    assert [WorkflowRun.objects.get(pk=r.pk).decision for r in runs[1:]] == ["digested"] * 4
    assert not Notification.objects.exists()
    # not before the window closes ...
    assert step_execute(leader.pk) == "busy"
    # ... then once, with the capped items and the full count
    assert step_execute(leader.pk, now=timezone.now() + timedelta(seconds=11)) == "ran"
    [notification] = Notification.objects.all()
    assert notification.title == "5 bids"
    assert notification.message == "$0\n$1\n$2"
    run = WorkflowRun.objects.get(pk=runs[0].pk)
    flat = {"digest_count": 5, "digest_items": "$0\n$1\n$2", "digest_more": 2}
    nested = {"count": 5, "items": "$0\n$1\n$2", "more": 2}
    assert run.variables == {**flat, "digest": nested}
    assert not WorkflowDigest.objects.filter(is_open=True).exists()
    # a trigger after the close opens a new window
    workflow_trigger("d", recipients=[user.pk], data={"auction_id": 1, "amount": "$9"})
    assert WorkflowDigest.objects.filter(is_open=True).count() == 1


def test_sliding_digest_moves_its_close_but_not_past_max_wait(user):
    workflow_save(key="s", steps=[_digest(mode="sliding", max_wait="15s"), SEND])
    first = workflow_trigger("s", recipients=[user.pk], data={"auction_id": 1, "amount": "a"})
    digest = WorkflowDigest.objects.get()
    opened, due = digest.opened_at, digest.due_at
    assert due - opened == timedelta(seconds=10)
    workflow_trigger("s", recipients=[user.pk], data={"auction_id": 1, "amount": "b"})
    digest.refresh_from_db()
    assert digest.due_at > due and digest.due_at <= opened + timedelta(seconds=15)
    # at the first close time the leader finds the window moved and waits on
    leader = _leader(first.runs[0])
    assert step_execute(leader.pk, now=due + timedelta(milliseconds=1)) == "ran"
    leader.refresh_from_db()
    assert (leader.state, leader.due_at) == ("waiting", digest.due_at)
    assert not Notification.objects.exists()


def test_send_first_sends_at_once_and_digests_the_rest(user):
    workflow_save(key="f", steps=[_digest(send_first=True), SEND])
    for amount in ("a", "b", "c"):
        workflow_trigger("f", recipients=[user.pk], data={"auction_id": 1, "amount": amount})
    assert list(Notification.objects.values_list("title", flat=True)) == ["1 bids"]
    decisions = list(
        WorkflowRunStep.objects.filter(index=0)
        .order_by("run_id")
        .values_list("decision", flat=True)
    )
    assert decisions == ["sent_first", "collecting", "digested"]
    leader = WorkflowRunStep.objects.get(decision="collecting")
    step_execute(leader.pk, now=timezone.now() + timedelta(seconds=11))
    assert Notification.objects.order_by("created_at").last().message == "b\nc"


def test_digests_are_per_user_and_per_key(user, other_user):
    workflow_save(key="k", steps=[_digest(), SEND])
    for who, auction in ((user, 1), (user, 2), (other_user, 1), (user, 1)):
        workflow_trigger("k", recipients=[who.pk], data={"auction_id": auction, "amount": "x"})
    counts = sorted(WorkflowDigest.objects.values_list("digest_key", "count"))
    assert counts == [("auction_id=1", 1), ("auction_id=1", 2), ("auction_id=2", 1)]


def test_delay_until_a_time_in_the_users_timezone(user):
    user.timezone = "Europe/Berlin"
    user.save(update_fields=["timezone"])
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)  # 14:00 in Berlin (CEST)
    assert next_clock_time(now, 9, 0, user_zone(user)) == datetime(2030, 6, 2, 7, 0, tzinfo=UTC)
    assert next_clock_time(now, 15, 30, user_zone(user)) == datetime(2030, 6, 1, 13, 30, tzinfo=UTC)
    workflow_save(key="m", steps=[{"type": "delay", "until": "09:00"}, PLAIN])
    run = workflow_trigger("m", recipients=[user.pk]).runs[0]
    due = _leader(run).due_at.astimezone(user_zone(user))
    assert (due.hour, due.minute) == (9, 0)


def test_escalation_levels_email_then_sms_unless_engaged(user):
    user.phone = "+14155550100"
    user.save(update_fields=["phone"])
    content = {"title": "Ends", "message": "soon"}
    workflow_save(
        key="e",
        steps=[
            {
                "type": "escalate",
                "in_app": content,
                "email_after": "1m",
                "email": content,
                "sms_after": "1m",
                "sms": content,
            }
        ],
    )
    run = workflow_trigger("e", recipients=[user.pk]).runs[0]
    step = _leader(run)
    assert step.decision == "in_app_sent"
    event = RealTimeEvent.objects.get(event_type="workflow.escalation")
    assert (event.ack_required, event.correlation_id) == (True, step.notification_ids[0])
    later = timezone.now() + timedelta(minutes=2)
    step_execute(step.pk, now=later)
    step.refresh_from_db()
    assert (step.state, step.decision) == ("waiting", "escalated_email")
    # the user clicks the email: the SMS level is not sent
    Notification.objects.filter(pk=step.notification_ids[1]).update(clicked_at=timezone.now())
    step_execute(step.pk, now=later + timedelta(minutes=2))
    step.refresh_from_db()
    assert (step.state, step.decision, step.detail["engaged"]) == ("done", "engaged", "clicked")
    assert sorted(Notification.objects.values_list("notification_type", flat=True)) == [
        "email",
        "in_app",
    ]


def test_dispatcher_leases_due_steps_once_until_the_lease_lapses(user, settings):
    workflow_save(key="w", steps=[{"type": "delay", "duration": "1s"}, PLAIN])
    workflow_trigger("w", recipients=[user.pk])
    later = timezone.now() + timedelta(seconds=5)
    assert workflow_steps_dispatch_due(now=later)["due"] == 1
    assert workflow_steps_dispatch_due(now=later)["due"] == 0  # leased
    relapsed = later + timedelta(seconds=settings.NP_WORKFLOW_LEASE_SECONDS + 1)
    assert workflow_steps_dispatch_due(now=relapsed)["due"] == 1


def test_a_failing_step_is_recorded_and_fails_its_run(user):
    workflow_save(key="bad", steps=[{"type": "channel", "channel": "in_app", "template": "nope"}])
    run = workflow_trigger("bad", recipients=[user.pk]).runs[0]
    run.refresh_from_db()
    step = _leader(run)
    assert (run.state, step.state, step.decision) == ("failed", "failed", "error")
    assert step.detail["error"]["code"] == "TEMPLATE_NOT_FOUND"


def test_catalogue_workflows_are_valid_and_installed_by_the_migration():
    for entry in CATALOGUE_WORKFLOWS.values():
        steps_validate(entry["steps"])
    # (transactional tests truncate data migrations' rows; this one is not transactional)
    assert set(Workflow.objects.values_list("key", flat=True)) >= {"outbid", "auction_ending"}


def test_admin_edits_steps_as_validated_json(client, make_user):
    admin_user = make_user(email="root@example.test", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    bad = client.post(
        "/admin/campaigns/workflow/add/",
        {
            "key": "adm",
            "name": "A",
            "is_active": "on",
            "steps": json.dumps([{"type": "x"}]),
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert bad.status_code == 200 and b"steps[0].type" in bad.content
    good = client.post(
        "/admin/campaigns/workflow/add/",
        {
            "key": "adm",
            "name": "A",
            "is_active": "on",
            "steps": json.dumps([PLAIN]),
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert good.status_code == 302, good.content[:2000]
    assert Workflow.objects.get(key="adm").versions.get().steps == [PLAIN]
    change = client.get(f"/admin/campaigns/workflow/{Workflow.objects.get(key='adm').pk}/change/")
    assert change.status_code == 200 and b"Hello" in change.content
    run = workflow_trigger("adm", recipients=[admin_user.pk]).runs[0]
    page = client.get(f"/admin/campaigns/workflowrun/{run.pk}/change/")
    assert page.status_code == 200 and b"digest_count" not in page.content
    assert client.get("/admin/campaigns/workflowrun/").status_code == 200


def test_a_large_trigger_leaves_its_runs_to_the_workers(user, other_user, make_user, settings):
    settings.NP_WORKFLOW_INLINE_MAX = 2
    third = make_user(email="carol@example.test")
    workflow_save(key="many", steps=[PLAIN])
    result = workflow_trigger("many", recipients=[user.pk, other_user.pk, third.pk])
    assert [run.state for run in result.runs] == ["waiting"] * 3
    assert not Notification.objects.exists()
    # what the dispatcher (or the after-commit enqueue) hands a worker
    for step in WorkflowRunStep.objects.all():
        assert step_execute(step.pk) == "ran"
    assert Notification.objects.count() == 3
    assert set(WorkflowRun.objects.values_list("state", flat=True)) == {"completed"}


def test_a_read_or_an_ack_makes_the_waiting_escalation_due_at_once(user):
    content = {"title": "Ends", "message": "soon"}
    workflow_save(
        key="wake",
        steps=[{"type": "escalate", "in_app": content, "email_after": "1h", "email": content}],
    )
    read_run, ack_run = (workflow_trigger("wake", recipients=[user.pk]).runs[0] for _ in "ab")
    read_step, ack_step = _leader(read_run), _leader(ack_run)
    assert read_step.due_at > timezone.now() + timedelta(minutes=59)
    # when the user reads the first in the inbox ...
    Notification.objects.update(in_inbox=True)
    inbox_mark_read(user=user, notification_id=read_step.notification_ids[0])
    read_step.refresh_from_db()
    ack_step.refresh_from_db()
    assert read_step.due_at <= timezone.now()
    assert ack_step.due_at > timezone.now() + timedelta(minutes=59)  # the other waits on
    # ... and acknowledges the second's real-time event on some device
    event = RealTimeEvent.objects.get(correlation_id=ack_step.notification_ids[0])
    event_acknowledge(event_id=event.pk, user_id=user.pk)
    ack_step.refresh_from_db()
    assert ack_step.due_at <= timezone.now()
    # then both end at their next run, neither sends the email
    for step, how in ((read_step, "read"), (ack_step, "acked")):
        assert step_execute(step.pk) == "ran"
        step.refresh_from_db()
        assert (step.state, step.decision, step.detail["engaged"]) == ("done", "engaged", how)
    assert not Notification.objects.filter(notification_type="email").exists()
