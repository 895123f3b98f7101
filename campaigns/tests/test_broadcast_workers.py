"""Broadcasts on real Celery worker subprocesses: 10,000 recipients with every worker
SIGKILLed mid-run then resumed (each recipient notified exactly once), and a scheduled
broadcast started by the dispatcher in beat at its ``send_at``."""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Broadcast, NotificationBatchJob
from campaigns.selectors import batch_job_deliveries
from campaigns.services import audience_save, broadcast_create
from campaigns.tests.test_batch_helpers import bulk_users
from campaigns.tests.test_batch_workers import wait_finished
from deliveries.models import Notification
from deliveries.tests.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_app_provider(transactional_db, catalogue):
    from providers.models import Provider

    return Provider.objects.create(
        provider_name="broadcast-in-app", provider_type="in_app", provider_class="in_app"
    )


def notifications_of(job_id: int):
    return Notification.objects.filter(idempotency_key__startswith=f"batch:{job_id}:")


def test_broadcast_to_10k_resumed_after_sigkill_sends_each_recipient_once(
    in_app_provider, start_worker, purge_queue, settings
):
    # given an audience of 10,000 (and 50 users outside it) and two workers
    settings.NP_BROADCAST_CHUNK_SIZE = 250
    members = bulk_users(10_000, region="broadcast-land")
    bulk_users(50, region="elsewhere")
    audience = audience_save(name="land", kind="region", value="broadcast-land")
    first = [start_worker(), start_worker()]

    # when a broadcast starts and every worker is SIGKILLed part-way
    broadcast, created = broadcast_create(
        audience=audience,
        template_key="auction_started",
        channels=["in_app"],
        context={"auction_title": "Clock sale"},
    )
    assert created and broadcast.status == "started"
    job_id = broadcast.job_id
    wait_for(
        lambda: NotificationBatchJob.objects.get(pk=job_id).processed_notifications >= 2_000,
        timeout=180,
        interval=0.05,
    )
    for worker in first:
        worker.kill()
    job = NotificationBatchJob.objects.get(pk=job_id)
    assert job.status == "running"
    assert 2_000 <= job.processed_notifications < 10_000
    # what was counted is exactly what was written (a killed chunk rolled back entirely)
    assert notifications_of(job_id).count() == job.processed_notifications

    # and the job is resumed on fresh workers
    second = [start_worker(), start_worker()]
    out = io.StringIO()
    call_command("resume_batch", str(job_id), "--no-wait", stdout=out)
    assert "re-enqueued" in out.getvalue()
    wait_finished(job, second, timeout=300)

    # then every member got exactly one notification (one in-app delivery), nobody else any
    assert job.status == "completed", [w.output() for w in second]
    per_user = Counter(notifications_of(job_id).values_list("user_id", flat=True))
    assert set(per_user) == {u.pk for u in members}
    assert set(per_user.values()) == {1}
    assert (job.total_notifications, job.processed_notifications) == (10_000, 10_000)
    assert (job.successful_notifications, job.failed_notifications) == (10_000, 0)
    assert batch_job_deliveries(job).count() == 10_000


def test_scheduled_broadcast_is_started_by_the_dispatcher_in_beat(
    in_app_provider, start_worker, purge_queue
):
    # given a broadcast scheduled two seconds ahead and a worker running beat
    members = bulk_users(40, region="later")
    audience = audience_save(name="later", kind="region", value="later")
    send_at = timezone.now() + timedelta(seconds=2)
    broadcast, _ = broadcast_create(
        audience=audience,
        template_key="auction_started",
        channels=["in_app"],
        context={"auction_title": "Lamps"},
        send_at=send_at,
    )
    assert broadcast.status == "scheduled" and broadcast.job_id is None
    worker = start_worker(beat=True, NP_BROADCAST_DISPATCH_SECONDS="1")

    # when its time comes, then the dispatcher starts it and its job completes
    def done() -> Broadcast | None:
        row = Broadcast.objects.select_related("job").get(pk=broadcast.pk)
        return row if row.job is not None and row.job.status == "completed" else None

    try:
        row = wait_for(done, timeout=90, interval=0.25)
    except AssertionError:
        raise AssertionError(worker.output()) from None
    assert row.started_at >= send_at
    per_user = Counter(notifications_of(row.job_id).values_list("user_id", flat=True))
    assert per_user == Counter({u.pk: 1 for u in members})
