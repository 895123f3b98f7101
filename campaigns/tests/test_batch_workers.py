"""Batch jobs on real Celery worker subprocesses: a 10,000-recipient job (throughput printed),
SIGKILL of every worker halfway then resume (exactly one notification per recipient), and
cancel halfway (nothing new after it, counters true)."""

from __future__ import annotations

import io
import time
from collections import Counter

import pytest
from django.core.management import call_command

from campaigns.models import BatchChunk, NotificationBatchJob
from campaigns.selectors import batch_job_deliveries, batch_progress
from campaigns.services import batch_cancel
from campaigns.tests.test_batch_helpers import bulk_users, make_article
from deliveries.models import Notification
from deliveries.tests.conftest import wait_for
from invitations.models import StoryInvitation

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_app_provider(transactional_db, catalogue):
    from providers.models import Provider

    return Provider.objects.create(
        provider_name="batch-in-app", provider_type="in_app", provider_class="in_app"
    )


def start_job(article_id: int, *, chunk_size: int) -> NotificationBatchJob:
    out = io.StringIO()
    call_command(
        "run_batch", "invitation_batch", "--invitation-type", "news_feed", "--article",
        str(article_id), "--audience", "all", "--channels", "in_app", "--chunk-size",
        str(chunk_size), "--no-wait", stdout=out,
    )
    return NotificationBatchJob.objects.get()


def job_notifications(job: NotificationBatchJob):
    return Notification.objects.filter(idempotency_key__startswith=f"batch:{job.pk}:")


def finished(job: NotificationBatchJob) -> NotificationBatchJob | None:
    job.refresh_from_db()
    return job if job.status in ("completed", "failed", "cancelled") else None


def wait_finished(job: NotificationBatchJob, workers: list, *, timeout: float) -> None:
    """Wait for the job to finish; on timeout fail with its progress and the workers' logs."""
    try:
        wait_for(lambda: finished(job), timeout=timeout, interval=0.25)
    except AssertionError:
        chunks = list(BatchChunk.objects.filter(job=job).values_list(
            "index", "status", "attempts", "last_error"))
        logs = "\n".join(w.output() for w in workers)
        raise AssertionError(f"job {job.pk} not finished: {batch_progress(job)}\n"
                             f"chunks: {chunks}\nworkers:\n{logs}") from None


def test_10k_recipient_job_completes_with_counters_matching_the_rows(
    in_app_provider, start_worker, purge_queue
):
    # given 10,000 active users, an article and two worker processes
    users = bulk_users(10_000)
    article = make_article()
    workers = [start_worker(), start_worker()]

    # when a news_feed invitation batch runs over all of them
    started = time.monotonic()
    job = start_job(article.pk, chunk_size=500)
    wait_finished(job, workers, timeout=240)
    elapsed = time.monotonic() - started

    # then it completed and every counter matches the rows it wrote
    assert job.status == "completed", [w.output() for w in workers]
    assert (job.total_notifications, job.processed_notifications) == (10_000, 10_000)
    assert (job.successful_notifications, job.failed_notifications) == (10_000, 0)
    assert job_notifications(job).count() == job.successful_notifications
    assert batch_job_deliveries(job).count() == job.successful_notifications  # in_app only
    assert StoryInvitation.objects.filter(batch_job=job).count() == len(users)
    assert set(BatchChunk.objects.filter(job=job).values_list("status", flat=True)) == {"done"}
    job_seconds = (job.completed_at - job.started_at).total_seconds()
    print(
        f"\nbatch throughput: 10,000 recipients in {job_seconds:.1f} s of job time "
        f"({10_000 / job_seconds:,.0f} recipients/s; {elapsed:.1f} s wall incl. planning)"
    )


def test_sigkill_every_worker_halfway_then_resume_notifies_each_recipient_once(
    in_app_provider, start_worker, purge_queue
):
    # given a 3,000-recipient job running on two workers
    users = bulk_users(3_000)
    article = make_article()
    first = [start_worker(), start_worker()]
    job = start_job(article.pk, chunk_size=100)
    wait_for(lambda: NotificationBatchJob.objects.get(pk=job.pk).processed_notifications >= 600,
             timeout=120, interval=0.05)

    # when every worker process is SIGKILLed mid-job
    for worker in first:
        worker.kill()
    job.refresh_from_db()
    assert job.status == "running"
    assert job.processed_notifications < 3_000
    # what was counted is exactly what was written (chunks roll back entirely)
    assert job_notifications(job).count() == job.processed_notifications

    # and the job is resumed on fresh workers
    second = [start_worker(), start_worker()]
    out = io.StringIO()
    call_command("resume_batch", str(job.pk), "--no-wait", stdout=out)
    assert "re-enqueued" in out.getvalue()
    wait_finished(job, second, timeout=180)

    # then every recipient got exactly one notification and one invitation
    assert job.status == "completed", [w.output() for w in second]
    per_user = Counter(job_notifications(job).values_list("user_id", flat=True))
    assert set(per_user) == {u.pk for u in users}
    assert set(per_user.values()) == {1}
    invitations = Counter(
        StoryInvitation.objects.filter(batch_job=job).values_list("invitee_user_id", flat=True)
    )
    assert len(invitations) == 3_000 and set(invitations.values()) == {1}
    assert (job.processed_notifications, job.successful_notifications) == (3_000, 3_000)
    assert batch_job_deliveries(job).count() == 3_000


def broker_drained(settings) -> bool:
    """No task message is left in this run's broker database: every queue (a Redis list)
    is empty and the worker holds nothing unacknowledged (tasks are acked late)."""
    import redis

    conn = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queues = [key for key in conn.scan_iter("*") if conn.type(key) == b"list"]
    return not queues and not conn.hlen("unacked")


def test_cancel_halfway_stops_the_job_and_keeps_counters_true(
    in_app_provider, start_worker, purge_queue, settings
):
    # given a 3,000-recipient job running on one worker
    bulk_users(3_000)
    article = make_article()
    start_worker()
    job = start_job(article.pk, chunk_size=50)
    wait_for(lambda: NotificationBatchJob.objects.get(pk=job.pk).processed_notifications >= 300,
             timeout=120, interval=0.05)

    # when it is cancelled
    cancelled = batch_cancel(job.pk)
    deliveries_at_cancel = batch_job_deliveries(job).count()
    notifications_at_cancel = job_notifications(job).count()
    # the worker takes every chunk still queued (each finds the job cancelled)
    wait_for(lambda: broker_drained(settings), timeout=60, interval=0.1)

    # then it is cancelled, nothing new appeared after it, and the counters are true
    job.refresh_from_db()
    assert cancelled.status == job.status == "cancelled"
    assert batch_job_deliveries(job).count() == deliveries_at_cancel
    assert job_notifications(job).count() == notifications_at_cancel
    assert 300 <= job.processed_notifications < 3_000
    assert job.processed_notifications == notifications_at_cancel == deliveries_at_cancel
    assert job.successful_notifications == job.processed_notifications
    done = BatchChunk.objects.filter(job=job, status="done").count()
    assert job.processed_notifications == done * 50
    assert StoryInvitation.objects.filter(batch_job=job).count() == notifications_at_cancel
