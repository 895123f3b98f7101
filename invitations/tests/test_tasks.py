"""Reminders and expiry on beat (``invitations.tasks``): before, they ran only when someone
started a reminder or cleanup batch job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from deliveries.models import NotificationDelivery
from invitations.models import StoryInvitation, UserInvitationHistory
from invitations.services import invitation_create
from invitations.tasks import expire_invitations, remind_invitations
from invitations.tests.conftest import wait_for
from notifyplatform.celery import app

pytestmark = pytest.mark.django_db


def make_invitations(inviter, story, count: int) -> list[StoryInvitation]:
    return [
        invitation_create(inviter=inviter, invitation_type="story_collaboration",
                          invitee_email=f"guest{n}@example.test", story=story)
        for n in range(count)
    ]


def history(action: str) -> list[int]:
    return sorted(
        UserInvitationHistory.objects.filter(action=action).values_list("invitation_id", flat=True)
    )


def test_beat_schedules_both_tasks_on_the_control_queue():
    entries = {e["task"]: e for e in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("invitations.remind_invitations", "invitations.expire_invitations"):
        assert name in app.tasks, name
        assert entries[name]["schedule"] > 0
        assert app.amqp.router.route({}, name)["queue"].name == settings.NP_QUEUE_CONTROL


def test_remind_task_reminds_due_invitations_once_at_most_a_batch_per_run(
    inviter, story, settings
):
    # given three invitations due for their one reminder, and runs of at most two
    settings.NP_INVITATION_REMINDER_AFTER = timedelta(0)
    settings.NP_INVITATION_MAX_REMINDERS = 1
    settings.NP_INVITATION_BEAT_BATCH_SIZE = 2
    invitations = make_invitations(inviter, story, 3)
    ids = [i.pk for i in invitations]
    # when beat runs the task, then two are reminded, the oldest first
    assert remind_invitations() == 2
    assert history("reminded") == ids[:2]
    # then the third, then nobody (each had its one reminder)
    assert remind_invitations() == 1
    assert remind_invitations() == 0
    assert history("reminded") == ids
    assert list(StoryInvitation.objects.order_by("pk").values_list("reminder_count", flat=True)) == [
        1, 1, 1,
    ]
    for invitation in invitations:  # the invitation, then its reminder
        assert NotificationDelivery.objects.filter(invitation=invitation).count() == 2


def test_remind_task_skips_viewed_answered_and_not_yet_due_invitations(inviter, story, settings):
    settings.NP_INVITATION_REMINDER_AFTER = timedelta(days=3)
    make_invitations(inviter, story, 2)
    assert remind_invitations() == 0
    assert history("reminded") == []


def test_expire_task_expires_open_invitations_past_expiry_at_most_a_batch_per_run(
    inviter, story, settings
):
    # given three open invitations past their expiry and one still valid
    settings.NP_INVITATION_BEAT_BATCH_SIZE = 2
    overdue = make_invitations(inviter, story, 3)
    StoryInvitation.objects.filter(pk__in=[i.pk for i in overdue]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    valid = make_invitations(inviter, story, 1)[0]
    # when beat runs the task: two, then one, then none
    assert expire_invitations() == 2
    assert expire_invitations() == 1
    assert expire_invitations() == 0
    # then each overdue one is expired once, with its history row; the valid one is open
    assert set(StoryInvitation.objects.filter(status="expired").values_list("pk", flat=True)) == {
        i.pk for i in overdue
    }
    assert history("expired") == sorted(i.pk for i in overdue)
    valid.refresh_from_db()
    assert valid.status == "sent"


@pytest.mark.e2e
def test_a_real_worker_runs_both_tasks(inviter, story, celery_worker_process):
    # given one invitation due for a reminder (sent longer ago than the worker's default
    # NP_INVITATION_REMINDER_AFTER) and one past its expiry
    due, overdue = make_invitations(inviter, story, 2)
    StoryInvitation.objects.filter(pk=due.pk).update(
        created_at=timezone.now() - settings.NP_INVITATION_REMINDER_AFTER - timedelta(hours=1)
    )
    StoryInvitation.objects.filter(pk=overdue.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    # when the tasks are queued as beat queues them (by name, routed to control)
    app.send_task("invitations.expire_invitations")
    app.send_task("invitations.remind_invitations")
    # then the worker expires the one and reminds the other
    assert wait_for(lambda: history("expired") == [overdue.pk]), celery_worker_process
    assert wait_for(lambda: history("reminded") == [due.pk]), celery_worker_process
