"""Batch jobs in one process: validation, dry run, the bulk invitation path (links and ids
substituted per recipient), idempotent chunks, reminders, cleanup, admin and staff API.
The multi-worker behaviour (throughput, SIGKILL + resume, cancel) is in
``test_batch_workers.py``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from campaigns.errors import BatchError
from campaigns.models import BatchChunk, NotificationBatchJob
from campaigns.services import (
    batch_cancel,
    batch_chunk_run,
    batch_create,
    batch_resume,
    batch_validate,
)
from campaigns.tests.test_batch_helpers import bulk_users, database_url, make_article, manage
from deliveries.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    UserNotificationPreference,
)
from invitations.models import StoryInvitation, UserInvitationHistory
from invitations.tokens import token_sign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _catalogue(catalogue) -> None:
    """The template catalogue (a data migration a transactional test may have flushed)."""


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("run_batch", *args, stdout=out)
    return out.getvalue()


def test_invitation_batch_inline_writes_one_invitation_and_notification_per_user():
    # given 30 active users, one inactive, and an article
    users = bulk_users(30)
    inactive = bulk_users(1)[0]
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    article = make_article()

    # when a news_feed batch runs in this process, in chunks of 8
    output = run("invitation_batch", "--invitation-type", "news_feed", "--article",
                 str(article.pk), "--audience", "all", "--channels", "in_app,email",
                 "--chunk-size", "8", "--inline", "--name", "library launch")

    # then the job completed with true counters and its 4 chunks done
    job = NotificationBatchJob.objects.get()
    assert "completed" in output
    assert (job.status, job.job_name) == ("completed", "library launch")
    assert (job.total_notifications, job.processed_notifications) == (30, 30)
    assert (job.successful_notifications, job.failed_notifications) == (30, 0)
    assert job.job_config["audience"] == "all"
    assert job.job_config["article_id"] == article.pk
    assert job.job_config["channels"] == ["in_app", "email"]
    assert list(job.chunks.values_list("status", flat=True)) == ["done"] * 4
    # one invitation per user, none for the inactive one, each with its history rows
    invitations = list(StoryInvitation.objects.filter(batch_job=job))
    assert sorted(str(i.invitee_user_id) for i in invitations) == sorted(str(u.pk) for u in users)
    assert all(i.status == "sent" and i.content_id == article.pk for i in invitations)
    assert UserInvitationHistory.objects.filter(invitation__batch_job=job).count() == 60
    # each notification carries ITS invitation's link and id (placeholders substituted)
    for invitation in invitations:
        notification = Notification.objects.get(idempotency_key=f"batch:{job.pk}:"
                                                 f"{invitation.invitee_user_id}")
        link = f"/i/{token_sign(invitation.token)}/"
        assert link in notification.message
        assert notification.action_url.endswith(link)
        assert notification.metadata == {"invitation_id": invitation.pk, "reminder": False}
        deliveries = list(notification.deliveries.all())
        assert sorted(d.delivery_type for d in deliveries) == ["email", "in_app"]
        for delivery in deliveries:
            assert delivery.invitation_id == invitation.pk
            assert link in delivery.delivery_metadata["message"]["text"]
            assert delivery.delivery_metadata["data"]["invitation_id"] == invitation.pk
    assert not Notification.objects.filter(message__contains="NPBATCH").exists()


def test_rerunning_a_done_chunk_notifies_nobody_twice():
    # given a completed inline batch
    bulk_users(5)
    article = make_article()
    run("invitation_batch", "--invitation-type", "news_feed", "--article", str(article.pk),
        "--audience", "all", "--channels", "in_app", "--inline")
    job = NotificationBatchJob.objects.get()
    chunk = BatchChunk.objects.get(job=job)

    # when its chunk is delivered again (a redelivered Celery message) and the job resumed
    outcome = batch_chunk_run(chunk.pk)

    # then nothing more is written
    assert outcome == "already_done"
    assert Notification.objects.count() == 5
    assert StoryInvitation.objects.count() == 5
    with pytest.raises(BatchError) as excinfo:
        batch_resume(job.pk)
    assert excinfo.value.code == "INVALID_STATE"


def test_opted_out_users_count_as_failed_with_the_rule_as_code():
    # given 4 users, one of whom opted out of news_feed in-app notifications
    users = bulk_users(4)
    UserNotificationPreference.objects.create(
        user=users[0], invitation_type="news_feed", delivery_method="in_app", is_enabled=False
    )
    article = make_article()

    # when the batch runs
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("run_batch", "invitation_batch", "--invitation-type", "news_feed",
                     "--article", str(article.pk), "--audience", "all", "--channels", "in_app",
                     "--inline", stdout=out)

    # then 3 are successful, 1 failed, grouped by code in the error summary
    job = NotificationBatchJob.objects.get()
    # and the command says so: its summary line, then a non-zero exit with one line
    assert f"job {job.pk} completed: 4/4 processed, 3 ok, 1 failed" in out.getvalue()
    assert excinfo.value.returncode == 1
    assert str(excinfo.value) == (
        f"job {job.pk} completed with 1 of 4 failed; `manage.py batch_status {job.pk}` shows why"
    )
    assert (job.processed_notifications, job.successful_notifications,
            job.failed_notifications) == (4, 3, 1)
    summary = json.loads(job.error_summary)
    assert list(summary) == ["SKIPPED_OPT_OUT"]
    assert summary["SKIPPED_OPT_OUT"]["count"] == 1
    skipped = NotificationDelivery.objects.filter(status=DeliveryStatus.SKIPPED)
    assert [d.recipient for d in skipped] == [str(users[0].pk)]


def test_audiences_region_opted_in_and_csv(tmp_path):
    # given users in two regions, one opted in, and a CSV naming two of them
    north = bulk_users(3, region="north")
    south = bulk_users(2, region="south")
    UserNotificationPreference.objects.create(
        user=south[1], invitation_type="news_feed", delivery_method="email", is_enabled=True
    )
    csv_file = tmp_path / "audience.csv"
    csv_file.write_text(f"email,note\n{north[0].email},x\n{south[0].pk},y\nnobody@x.test,z\n")
    article = make_article()
    base = ("invitation_batch", "--invitation-type", "news_feed", "--article", str(article.pk),
            "--dry-run")

    # when each audience is dry-run; then the counts match and nothing is created
    assert "total: 3" in run(*base, "--audience", "region:north")
    assert "total: 1" in run(*base, "--audience", "opted-in")
    csv_out = run(*base, "--audience", f"csv:{csv_file}")
    assert "total: 2" in csv_out
    assert "csv_unmatched: 1" in csv_out
    assert "csv_invalid: 4" in csv_out  # "note", "x", "y", "z": neither email nor id
    assert NotificationBatchJob.objects.count() == 0
    assert StoryInvitation.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("nonsense_batch",), "UNKNOWN_JOB_TYPE"),
        (("invitation_batch", "--invitation-type", "carrier_pigeon", "--audience", "all"),
         "INVALID_INVITATION_TYPE"),
        (("invitation_batch", "--invitation-type", "news_feed", "--audience", "all"),
         "CONTENT_REQUIRED"),
        (("invitation_batch", "--invitation-type", "news_feed", "--article", "999999",
          "--audience", "all"), "CONTENT_NOT_FOUND"),
        (("invitation_batch", "--invitation-type", "news_feed", "--article", "{article}",
          "--audience", "region:atlantis"), "EMPTY_AUDIENCE"),
        (("invitation_batch", "--invitation-type", "news_feed", "--article", "{article}",
          "--audience", "everyone"), "INVALID_AUDIENCE"),
        (("invitation_batch", "--invitation-type", "news_feed", "--article", "{article}",
          "--audience", "all", "--channels", "fax"), "UNKNOWN_CHANNEL"),
    ],
)
def test_bad_arguments_raise_one_error_and_create_no_job(args, code):
    bulk_users(2)
    article = make_article()
    args = tuple(a.replace("{article}", str(article.pk)) for a in args)
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 2
    assert f"[{code}]" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert NotificationBatchJob.objects.count() == 0


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_channel_without_a_template_refuses_the_job_and_the_dry_run(dry_run):
    # given news_feed invitations whose sms template was switched off
    from templates.models import NotificationTemplate

    NotificationTemplate.objects.filter(invitation_type="news_feed", delivery_type="sms").update(
        is_active=False
    )
    bulk_users(2)
    article = make_article()
    args = ["invitation_batch", "--invitation-type", "news_feed", "--article", str(article.pk),
            "--audience", "all", "--channels", "in_app,sms"] + (["--dry-run"] if dry_run else [])
    # when a batch asks for sms too; then one error line, and no job to fail every chunk
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 2
    assert str(excinfo.value) == (
        "channels: template 'news_feed' has no 'sms' version in 'en' or 'en' [TEMPLATE_NOT_FOUND]"
    )
    assert NotificationBatchJob.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_bad_arguments_in_a_real_subprocess_exit_non_zero_with_one_line():
    # given an article and users committed where the subprocess sees them
    bulk_users(2)
    article = make_article()
    cases = [
        (("run_batch", "carrier_batch"), "UNKNOWN_JOB_TYPE"),
        (("run_batch", "invitation_batch", "--invitation-type", "news_feed", "--audience",
          "all"), "CONTENT_REQUIRED"),
        (("run_batch", "invitation_batch", "--invitation-type", "news_feed", "--article",
          str(article.pk), "--audience", "region:atlantis"), "EMPTY_AUDIENCE"),
    ]
    for args, code in cases:
        # when run_batch runs with bad arguments
        result = manage(*args)
        # then: non-zero exit, ONE line on stderr naming the problem, no job row
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("CommandError: ") and f"[{code}]" in lines[0]
    assert NotificationBatchJob.objects.count() == 0


def test_reminder_batch_reminds_due_invitations_once():
    # given two invitations sent 4 days ago (due) and one sent now (not due)
    users = bulk_users(4)
    inviter = users[3]
    article = make_article()
    from invitations.services import invitation_create

    invitations = [
        invitation_create(inviter=inviter, invitation_type="news_feed", invitee_user=u,
                          article=article, delivery_preferences={"channels": ["in_app"]})
        for u in users[:3]
    ]
    StoryInvitation.objects.filter(pk__in=[i.pk for i in invitations[:2]]).update(
        created_at=timezone.now() - timedelta(days=4)
    )

    # when a reminder batch runs
    run("reminder_batch", "--inline")

    # then the two due invitations got one reminder each
    job = NotificationBatchJob.objects.get()
    assert (job.status, job.total_notifications, job.successful_notifications) == (
        "completed", 2, 2
    )
    reminded = StoryInvitation.objects.filter(reminder_count=1)
    assert sorted(reminded.values_list("pk", flat=True)) == sorted(i.pk for i in invitations[:2])
    from campaigns.selectors import batch_job_deliveries

    assert batch_job_deliveries(job).count() == 2


def test_cleanup_batch_expires_and_prunes():
    # given an expired pending delivery (its notification pending) and an expired invitation
    users = bulk_users(3)
    article = make_article()
    from invitations.services import invitation_create

    invitation = invitation_create(inviter=users[0], invitation_type="news_feed",
                                   invitee_user=users[1], article=article,
                                   delivery_preferences={"channels": ["in_app"]})
    past = timezone.now() - timedelta(hours=1)
    StoryInvitation.objects.filter(pk=invitation.pk).update(expires_at=past)
    NotificationDelivery.objects.filter(invitation=invitation).update(
        expires_at=past, status="pending"
    )
    Notification.objects.filter(deliveries__invitation=invitation).update(expires_at=past)

    # when a cleanup batch runs
    run("cleanup_batch", "--inline")

    # then the invitation, delivery and notification are expired and counted
    job = NotificationBatchJob.objects.get()
    assert job.status == "completed"
    invitation.refresh_from_db()
    assert invitation.status == "expired"
    assert NotificationDelivery.objects.get(invitation=invitation).status == "expired"
    assert Notification.objects.get(deliveries__invitation=invitation).status == "failed"
    assert job.processed_notifications == job.total_notifications == 3
    assert job.chunks.count() == 5


def test_cancel_then_resume_inline():
    # given a started job with three chunks, not yet run
    bulk_users(6)
    article = make_article()
    spec = batch_validate("invitation_batch", invitation_type="news_feed", article=article.pk,
                          audience="all", channels="in_app", chunk_size=2)
    job = batch_create(spec)
    chunks = list(job.chunks.order_by("index"))
    batch_chunk_run(chunks[0].pk)

    # when it is cancelled, a chunk arrives, then it is resumed
    assert batch_cancel(job.pk).status == "cancelled"
    assert batch_chunk_run(chunks[1].pk) == "job_cancelled"
    job.refresh_from_db()
    assert (job.status, job.processed_notifications, Notification.objects.count()) == (
        "cancelled", 2, 2
    )
    job, count = batch_resume(job.pk, enqueue=False)
    for chunk in chunks[1:]:
        batch_chunk_run(chunk.pk)

    # then it completes with every recipient notified once
    job.refresh_from_db()
    assert count == 2
    assert (job.status, job.processed_notifications, Notification.objects.count()) == (
        "completed", 6, 6
    )


def test_batch_status_and_api(staff_user, api_client, user):
    # given a completed and a cancelled job
    bulk_users(3)
    article = make_article()
    run("invitation_batch", "--invitation-type", "news_feed", "--article", str(article.pk),
        "--audience", "all", "--channels", "in_app", "--inline", "--name", "first")
    spec = batch_validate("invitation_batch", invitation_type="news_feed", article=article.pk,
                          audience="all", channels="in_app", name="second")
    second = batch_create(spec)
    batch_cancel(second.pk)
    first = NotificationBatchJob.objects.get(job_name="first")

    # batch_status: a table, and one job's details
    out = io.StringIO()
    call_command("batch_status", stdout=out)
    assert "first" in out.getvalue() and "cancelled" in out.getvalue()
    out = io.StringIO()
    call_command("batch_status", str(first.pk), stdout=out)
    assert "deliveries: pending" in out.getvalue() or "deliveries: sent" in out.getvalue()

    # the staff API: list with filters, retrieve, resume/cancel with their state rules
    api_client.force_authenticate(user)
    assert api_client.get("/api/v1/batch-jobs/").status_code == 403
    api_client.force_authenticate(staff_user)
    listed = api_client.get("/api/v1/batch-jobs/", {"status": "cancelled"}).json()
    assert [j["job_name"] for j in listed["results"]] == ["second"]
    detail = api_client.get(f"/api/v1/batch-jobs/{first.pk}/").json()
    assert (detail["status"], detail["processed_notifications"]) == ("completed", 5)
    conflict = api_client.post(f"/api/v1/batch-jobs/{first.pk}/cancel/")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "INVALID_STATE"
    resumed = api_client.post(f"/api/v1/batch-jobs/{second.pk}/resume/")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "running"
    cancelled = api_client.post(f"/api/v1/batch-jobs/{second.pk}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    bad = api_client.get("/api/v1/batch-jobs/", {"status": "sleeping"})
    assert bad.status_code == 400


def test_admin_start_form_progress_and_delivery_filter(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    bulk_users(3)
    article = make_article()
    url = "/admin/campaigns/notificationbatchjob/start/"

    # the form refuses a missing article with the shared validation's message
    page = client.post(url, {"job_type": "invitation_batch", "invitation_type": "news_feed",
                             "audience": "all"})
    assert page.status_code == 200
    assert "CONTENT_REQUIRED" in page.content.decode()
    assert NotificationBatchJob.objects.count() == 0

    # a dry run shows the count and creates nothing
    page = client.post(url, {"job_type": "invitation_batch", "invitation_type": "news_feed",
                             "article": article.pk, "audience": "all", "channels": ["in_app"],
                             "dry_run": "on"})
    assert "Preview — nothing created" in page.content.decode()
    assert '<strong class="np-recipient-count">3</strong>' in page.content.decode()
    assert NotificationBatchJob.objects.count() == 0

    # a valid form starts the job (the staff user is the inviter)
    page = client.post(url, {"job_type": "invitation_batch", "invitation_type": "news_feed",
                             "article": article.pk, "audience": "all", "channels": ["in_app"]})
    assert page.status_code == 302
    job = NotificationBatchJob.objects.get()
    assert job.status == "running"
    assert job.job_config["inviter_id"] == str(staff_user.pk)
    for chunk in job.chunks.all():
        batch_chunk_run(chunk.pk)

    # the changelist shows a progress bar and links; the JSON endpoint reports progress
    changelist = client.get("/admin/campaigns/notificationbatchjob/").content.decode()
    assert 'class="np-batch-progress"' in changelist and "Start a batch" in changelist
    assert f"?batch_job={job.pk}&amp;status__exact=failed" in changelist
    progress = client.get(f"/admin/campaigns/notificationbatchjob/{job.pk}/progress.json")
    assert progress.json()["status"] == "completed"
    assert progress.json()["processed"] == 3
    # the delivery changelist filtered by the job
    deliveries = client.get(f"/admin/deliveries/notificationdelivery/?batch_job={job.pk}")
    assert deliveries.status_code == 200
    assert "3 notification deliveries" in deliveries.content.decode() or (
        deliveries.content.decode().count('class="action-select"') == 3
    )
    # cancel/resume actions exist on the changelist
    assert "cancel_jobs" in changelist and "resume_jobs" in changelist


def manage_popen(*args: str) -> subprocess.Popen[str]:
    """``manage.py <args>`` started (not waited for) on the test database, unbuffered."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_ctrl_c_while_following_leaves_the_job_running_and_says_how_to_follow_it(purge_queue):
    # given a job followed from a terminal, with no worker to finish it
    bulk_users(3)
    article = make_article()
    proc = manage_popen("run_batch", "invitation_batch", "--invitation-type", "news_feed",
                        "--article", str(article.pk), "--audience", "all", "--wait")
    try:
        first = proc.stdout.readline()  # "job N running: ..." once the job exists
        job = NotificationBatchJob.objects.get()
        assert first.startswith(f"job {job.pk} running:"), first + proc.stderr.read()
        # when the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # then: no traceback, one line saying the job goes on and how to follow it, exit 130
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip() == (
        f"interrupted: job {job.pk} keeps running on the workers; follow it with "
        f"`manage.py batch_status {job.pk}` (`manage.py cancel_batch {job.pk}` stops it)"
    )
    job.refresh_from_db()
    assert job.status == "running"


@pytest.mark.django_db(transaction=True)
def test_batch_status_into_a_pipe_closed_early_ends_quietly():
    # given more jobs than a pipe buffers (about 300 KB of table)
    NotificationBatchJob.objects.bulk_create(
        NotificationBatchJob(job_name=f"campaign number {i:05d} for the pipe test",
                             job_type="cleanup_batch", status="completed")
        for i in range(3000)
    )
    # when its reader stops after the first line (`batch_status | head -1`)
    proc = manage_popen("batch_status", "--limit", "3000")
    header = proc.stdout.readline()
    proc.stdout.close()
    proc.wait(60)
    err = proc.stderr.read()
    # then: no traceback, the exit code of a process ended by SIGPIPE
    assert header.split() == ["id", "type", "status", "processed", "total", "ok", "failed", "name"]
    assert err == ""
    assert proc.returncode == 141
