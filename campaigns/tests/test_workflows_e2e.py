"""Workflows end to end: real Celery workers (with beat's dispatcher), the real SMTP sink,
real PostgreSQL and Redis, real daphne websockets where acks are involved."""

from __future__ import annotations

import time
import zoneinfo
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import WorkflowDigest, WorkflowRun, WorkflowRunStep
from campaigns.services.workflows import workflow_save, workflow_trigger
from deliveries.models import Notification, NotificationDelivery
from deliveries.tests.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("catalogue", "purge_queue")]

ESCALATE = {
    "type": "escalate",
    "in_app": {"title": "Ending soon", "message": "{{ auction }} ends soon"},
    "email_after": "2s",
    "email": {"title": "Still ending soon", "message": "{{ auction }} ends soon (email)"},
}


@pytest.fixture
def e2e_db(transactional_db):
    """Rows must be committed for the workers (other processes) to see them."""


def _text(message) -> str:
    """The plain body without the preference-page footer every email to a user ends with."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode().replace("\r\n", "\n")
            body, footer = text.split("\n-- \n")
            assert footer.startswith("Manage your notification preferences: "), footer
            return body.rstrip("\n")
    raise AssertionError("no text part")


def test_20_outbid_triggers_in_a_2s_window_send_one_email_listing_20_bids(
    e2e_db, user, pipeline_providers, smtp_server, start_worker
):
    sink, _port = smtp_server
    workflow_save(
        key="outbid-e2e",
        steps=[
            {
                "type": "digest",
                "window": "2s",
                "key": "auction_id",
                "item": "{{ bidder }} bid {{ amount }}",
            },
            {
                "type": "channel",
                "channel": "email",
                "title": "Outbid {{ digest_count }} times",
                "message": "Bids:\n{{ digest_items }}",
            },
        ],
    )
    # when 20 triggers for auction 7 arrive within the window, and one for auction 8 (the
    # worker starts after them: a loaded machine firing them slower than 2 s must not split
    # the digest — an open window takes every trigger until the dispatcher closes it)
    for n in range(20):
        workflow_trigger(
            "outbid-e2e",
            recipients=[user.pk],
            data={"auction_id": 7, "bidder": f"bidder{n}", "amount": f"${100 + n}"},
        )
    workflow_trigger(
        "outbid-e2e", recipients=[user.pk], data={"auction_id": 8, "bidder": "x", "amount": "$1"}
    )
    start_worker(beat=True)
    wait_for(lambda: len(sink.messages) >= 2, timeout=60)
    time.sleep(3)  # a window's worth more: nothing else comes

    # then exactly one email per auction; auction 7's lists the 20 bids
    assert len(sink.messages) == 2
    by_subject = {m["Subject"]: _text(m) for m in sink.messages}
    assert set(by_subject) == {"Outbid 20 times", "Outbid 1 times"}
    lines = by_subject["Outbid 20 times"].strip().splitlines()
    assert lines == ["Bids:"] + [f"bidder{n} bid ${100 + n}" for n in range(20)]
    decisions = Counter(WorkflowRun.objects.values_list("decision", flat=True))
    assert decisions == {"digested": 19, "completed": 2}
    # and not before the window closed
    digest = WorkflowDigest.objects.get(digest_key="auction_id=7")
    sent = NotificationDelivery.objects.get(notification__title="Outbid 20 times").sent_at
    assert sent >= digest.opened_at + timedelta(seconds=2)


def test_escalation_read_in_app_within_the_window_sends_no_email(
    e2e_db, user, pipeline_providers, smtp_server, start_worker, api_client
):
    sink, _port = smtp_server
    # a window long enough for the worker to deliver the in-app message on a loaded machine
    workflow_save(key="esc", steps=[{**ESCALATE, "email_after": "8s"}])
    start_worker(beat=True)
    run = workflow_trigger("esc", recipients=[user.pk], data={"auction": "Clocks"}).runs[0]
    step = WorkflowRunStep.objects.get(run=run)
    [in_app_id] = step.notification_ids
    assert Notification.objects.get(pk=in_app_id).title == "Ending soon"
    # when the user reads it in the inbox (once the worker delivered it) within the 8 s
    wait_for(lambda: Notification.objects.filter(pk=in_app_id, in_inbox=True).exists(), timeout=30)
    assert WorkflowRunStep.objects.get(pk=step.pk).state == "waiting"
    api_client.force_authenticate(user)
    assert api_client.post(f"/api/v1/inbox/{in_app_id}/read/").status_code == 200

    # then the escalation ends there: no email, now or later
    wait_for(lambda: WorkflowRunStep.objects.get(pk=step.pk).decision == "engaged", timeout=30)
    time.sleep(2)
    assert sink.messages == []
    step.refresh_from_db()
    assert step.detail["engaged"] == "read"
    assert Notification.objects.filter(user=user).count() == 1


def test_escalation_not_read_sends_exactly_one_email_after_the_delay(
    e2e_db, user, pipeline_providers, smtp_server, start_worker
):
    sink, _port = smtp_server
    workflow_save(key="esc", steps=[ESCALATE])
    start_worker(beat=True)
    started = timezone.now()
    run = workflow_trigger("esc", recipients=[user.pk], data={"auction": "Clocks"}).runs[0]
    wait_for(lambda: len(sink.messages) >= 1, timeout=60)
    time.sleep(3)
    [mail] = sink.messages
    assert mail["Subject"] == "Still ending soon"
    assert _text(mail).strip() == "Clocks ends soon (email)"
    email = NotificationDelivery.objects.get(delivery_type="email")
    assert email.sent_at >= started + timedelta(seconds=2)
    step = WorkflowRunStep.objects.get(run=run)
    assert (step.state, step.decision) == ("done", "escalated_email")
    assert len(step.notification_ids) == 2


def test_throttle_3_per_minute_sends_3_emails_and_throttles_the_rest(
    e2e_db, user, pipeline_providers, smtp_server, start_worker
):
    sink, _port = smtp_server
    workflow_save(
        key="ping-e2e",
        steps=[
            {"type": "throttle", "limit": 3, "window": "1m", "key": "room"},
            {"type": "channel", "channel": "email", "title": "Ping {{ n }}", "message": "hi"},
        ],
    )
    start_worker(beat=True)
    # when seven triggers for one room arrive within the minute
    for n in range(7):
        workflow_trigger("ping-e2e", recipients=[user.pk], data={"room": "a", "n": n})
    wait_for(lambda: len(sink.messages) >= 3, timeout=60)
    wait_for(lambda: not WorkflowRun.objects.exclude(state="completed").exists(), timeout=30)
    time.sleep(2)  # the worker and beat keep running: nothing else goes out

    # then the first three were mailed, once each, and the other four were throttled
    assert sorted(m["Subject"] for m in sink.messages) == ["Ping 0", "Ping 1", "Ping 2"]
    decisions = Counter(WorkflowRun.objects.values_list("decision", flat=True))
    assert decisions == {"completed": 3, "throttled": 4}
    assert NotificationDelivery.objects.filter(delivery_type="email", status="sent").count() == 3


def test_send_at_in_the_recipients_timezone(
    e2e_db, user, pipeline_providers, smtp_server, start_worker
):
    sink, _port = smtp_server
    user.timezone = "Asia/Kolkata"
    user.save(update_fields=["timezone"])
    workflow_save(
        key="timed",
        steps=[{"type": "channel", "channel": "email", "title": "Timed", "message": "hi"}],
    )
    target = (timezone.now() + timedelta(seconds=4)).replace(microsecond=0)
    local = target.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%dT%H:%M:%S")
    start_worker(beat=True)
    run = workflow_trigger("timed", recipients=[user.pk], send_at=f"{local} local").runs[0]
    step = WorkflowRunStep.objects.get(run=run)
    assert step.due_at == target  # 4 s from now, read in Kolkata's wall clock
    assert sink.messages == []
    wait_for(lambda: len(sink.messages) == 1, timeout=60)
    email = NotificationDelivery.objects.get(delivery_type="email")
    assert email.created_at >= target


def test_cancellation_by_key_stops_the_waiting_runs(
    e2e_db,
    user,
    other_user,
    pipeline_providers,
    smtp_server,
    start_worker,
    staff_user,
    api_client,
):
    sink, _port = smtp_server
    workflow_save(
        key="later",
        steps=[
            {"type": "delay", "duration": "4s"},
            {"type": "channel", "channel": "email", "title": "Later", "message": "{{ n }}"},
        ],
    )
    start_worker(beat=True)
    workflow_trigger("later", recipients=[user.pk], data={"n": 1}, cancellation_key="cart-1")
    workflow_trigger("later", recipients=[other_user.pk], data={"n": 2}, cancellation_key="cart-2")
    api_client.force_authenticate(staff_user)
    response = api_client.post(
        "/api/v1/workflows/cancel/", {"cancellation_key": "cart-1"}, format="json"
    )
    assert response.json() == {"cancelled": 1}
    # the other key's run goes out (the worker is working) ...
    wait_for(lambda: len(sink.messages) == 1, timeout=60)
    time.sleep(2)
    # ... and the cancelled one never does
    assert [m["To"] for m in sink.messages] == [other_user.email]
    states = dict(WorkflowRun.objects.values_list("cancellation_key", "state"))
    assert states == {"cart-1": "cancelled", "cart-2": "completed"}


def test_worker_sigkill_mid_run_resumes_without_repeating_a_step(
    e2e_db, user, pipeline_providers, start_worker
):
    workflow_save(
        key="two-step",
        steps=[
            {"type": "delay", "duration": "1s"},
            {"type": "channel", "channel": "in_app", "title": "first", "message": "{{ n }}"},
            {"type": "delay", "duration": "1s"},
            {"type": "channel", "channel": "in_app", "title": "second", "message": "{{ n }}"},
        ],
    )
    runs = [
        workflow_trigger("two-step", recipients=[user.pk], data={"n": n}).runs[0].pk
        for n in range(150)
    ]
    worker = start_worker(beat=True, NP_WORKFLOW_LEASE_SECONDS="3")
    # when the worker is SIGKILLed part-way through
    wait_for(lambda: Notification.objects.count() >= 20, timeout=90, interval=0.02)
    worker.kill()
    done_at_kill = Notification.objects.count()
    start_worker(beat=True, NP_WORKFLOW_LEASE_SECONDS="3")
    wait_for(
        lambda: WorkflowRun.objects.filter(pk__in=runs, state="completed").count() == 150,
        timeout=180,
        interval=0.5,
    )
    # then every run sent each of its two steps exactly once
    assert done_at_kill < 300
    per_run = Counter(
        (n.metadata["workflow_run"], n.title) for n in Notification.objects.filter(user=user)
    )
    assert len(per_run) == 300 and set(per_run.values()) == {1}
    steps = WorkflowRunStep.objects.filter(run_id__in=runs, step_type="channel")
    assert steps.count() == 300
    assert all(len(s.notification_ids) == 1 for s in steps)
