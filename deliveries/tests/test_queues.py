"""Work that cannot starve (issue 14, point 5): sends, batch chunks and beat's control tasks
have their own queues and workers, and beat's dispatcher moves due rows to the send queue
at the sending rate.

Before: one ``celery`` queue for everything, so an auction's close and a batch's chunks
waited behind every queued send, and due rows reached the workers only through the
sweeper (5,000 every 15 s)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from deliveries.models import NotificationDelivery
from deliveries.services import deliveries_dispatch_due, enqueue_deliveries

from .conftest import wait_for
from .rows import insert_deliveries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalogue", "purge_queue"),
]

# the send rate `make bench` measured end to end (2 workers, README's table): pickup must
# keep ahead of it
MEASURED_SEND_RATE = 3_000


def _queued(queue: str) -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(queue)


def _statuses(ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in NotificationDelivery.objects.filter(pk__in=ids).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_routing_sends_batches_and_beats_tasks_to_their_own_queues():
    from notifyplatform.celery import app

    def queue_of(task: str) -> str:
        return app.amqp.router.route({}, task)["queue"].name

    assert queue_of("deliveries.send_delivery") == "send"
    assert queue_of("deliveries.send_deliveries") == "send"
    assert queue_of("deliveries.run_batch_chunk") == "batch"
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "deliveries.dispatch_due" in scheduled
    assert {queue_of(task) for task in scheduled} == {"control"}


def test_each_task_reaches_only_its_own_queue_once_workers_have_bound_them():
    from auctions.tasks import close_auctions
    from campaigns.tasks import run_batch_chunk
    from deliveries.tasks import send_delivery
    from notifyplatform.celery import app

    # given the three queues declared and bound, as their workers do at start
    with app.connection_for_write() as conn:
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()

        # when one task of each kind is published
        send_delivery.apply_async((1,), connection=conn)
        close_auctions.apply_async(connection=conn)
        run_batch_chunk.apply_async((1,), connection=conn)

    # then each queue holds exactly its own one (no queue gets another's copy)
    assert {q: _queued(q) for q in settings.NP_QUEUES} == {"send": 1, "batch": 1, "control": 1}
    conn = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    names = {
        q: json.loads(conn.lindex(q, 0))["headers"]["task"] for q in ("send", "batch", "control")
    }
    assert names == {
        "send": "deliveries.send_delivery",
        "batch": "deliveries.run_batch_chunk",
        "control": "auctions.close_auctions",
    }


def test_make_run_starts_a_worker_for_every_queue():
    from notifyplatform.launcher.appenv import WORKERS

    consumed = [queue for _name, queue, _pool in WORKERS]
    assert sorted(consumed) == sorted(settings.NP_QUEUES)


def test_auction_close_and_batch_chunk_proceed_while_10k_sends_are_queued(
    user, pipeline_providers, webhook_receiver, start_worker
):
    from auctions.models import Auction
    from auctions.services import auction_create
    from auctions.tasks import close_auctions
    from campaigns.models import NotificationBatchJob
    from campaigns.services import batch_create, batch_validate

    # given 10,000 webhook sends queued, and a send worker stuck on a receiver that holds
    # every request
    webhook_receiver.hold_after = 0
    ids = insert_deliveries(
        user_id=user.pk,
        count=10_000,
        status="pending",
        channel="webhook",
        recipient=webhook_receiver.url,
        scheduled_at=timezone.now(),
    )
    assert enqueue_deliveries(ids) == 10_000
    start_worker(queues="send")
    wait_for(lambda: webhook_receiver.held > 0, timeout=60)
    start_worker(queues="batch")
    start_worker(queues="control")
    now = timezone.now()
    auction = auction_create(
        seller=user,
        title="Blue Vase",
        auction_type="english",
        starts_at=now - timedelta(hours=1),
        ends_at=now - timedelta(seconds=1),
    )

    # when beat's auction close comes due and a batch job starts
    started = time.monotonic()
    close_auctions.delay()
    job = batch_create(batch_validate("cleanup_batch", older_than_days=30))

    # then both finish within seconds, although the sends are still queued
    wait_for(lambda: Auction.objects.get(pk=auction.pk).status == "completed", timeout=30)
    wait_for(lambda: NotificationBatchJob.objects.get(pk=job.pk).status == "completed", timeout=30)
    assert time.monotonic() - started < 30
    assert _queued("send") >= 100  # of the 200 messages (50 ids each), still waiting
    assert _statuses(ids).get("sent", 0) == 0


@pytest.mark.parametrize("send_pool", ["threads", "prefork"])
def test_dispatcher_sends_stranded_and_due_rows_through_beat_at_once(
    user, pipeline_providers, webhook_receiver, start_worker, send_pool
):
    # given rows whose enqueue was lost with the broker (pending, due, untouched for a
    # minute) and retries whose backoff just ended (scheduled after their last write)
    now = timezone.now()
    stranded = insert_deliveries(
        user_id=user.pk,
        count=1_000,
        status="pending",
        channel="webhook",
        recipient=webhook_receiver.url,
        created_at=now - timedelta(minutes=1),
        scheduled_at=now - timedelta(minutes=1),
    )
    retries = insert_deliveries(
        user_id=user.pk,
        count=1_000,
        status="pending",
        channel="webhook",
        recipient=webhook_receiver.url,
        created_at=now - timedelta(seconds=5),
        scheduled_at=now,
    )
    ids = stranded + retries

    # when a worker per queue runs with beat, the sweeper far off (an hour)
    settings_env = {"NP_SWEEP_INTERVAL_SECONDS": "3600", "NP_DISPATCH_INTERVAL_SECONDS": "0.5"}
    # (prefork, as `make run` starts the send worker: Celery closes the child's database
    # pool after each task, so each child holds at most one connection)
    start_worker(queues="send", pool=send_pool, **settings_env)
    start_worker(queues="control", beat=True, **settings_env)

    # then the dispatcher hands every row to the send workers; each arrives once
    wait_for(lambda: _statuses(ids) == {"sent": 2_000}, timeout=60, interval=0.5)
    arrivals = webhook_receiver.by_delivery()
    assert set(arrivals) == set(ids) and max(arrivals.values()) == 1


def test_one_dispatcher_run_picks_up_rows_faster_than_the_workers_send(user, settings):
    settings.NP_DISPATCH_MAX_QUEUED = 1_000_000
    now = timezone.now()
    ids = insert_deliveries(
        user_id=user.pk,
        count=10_000,
        status="pending",
        channel="webhook",
        recipient="https://hooks.example.test/x",
        created_at=now - timedelta(minutes=5),
        scheduled_at=now - timedelta(minutes=5),
    )
    fresh = insert_deliveries(  # just written: their own on-commit enqueue is in flight
        user_id=user.pk, count=10, status="pending", channel="webhook", scheduled_at=now
    )

    started = time.monotonic()
    report = deliveries_dispatch_due(limit=10_000)
    elapsed = time.monotonic() - started

    assert report == {"due": 10_000, "enqueued": 10_000, "backlog": 0}
    assert 10_000 / elapsed >= MEASURED_SEND_RATE, f"{10_000 / elapsed:,.0f} rows/s"
    assert _queued("send") == 10_000 // 50
    # the picked rows wait in the queue: the next run leaves them (and the fresh ones) alone
    assert deliveries_dispatch_due()["due"] == 0
    assert set(
        NotificationDelivery.objects.filter(pk__in=fresh).values_list("status", flat=True)
    ) == {"pending"}
    assert len(ids) == 10_000


def test_the_dispatcher_keeps_a_backlog_in_the_database_not_in_redis(user, settings):
    settings.NP_DISPATCH_MAX_QUEUED = 500  # rows' worth of queued messages
    insert_deliveries(
        user_id=user.pk,
        count=2_000,
        status="pending",
        channel="webhook",
        scheduled_at=timezone.now() - timedelta(minutes=5),
        created_at=timezone.now() - timedelta(minutes=5),
    )

    first = deliveries_dispatch_due()
    second = deliveries_dispatch_due()

    assert first == {"due": 500, "enqueued": 500, "backlog": 0}
    assert second == {"due": 0, "enqueued": 0, "backlog": 500}
    assert _queued("send") == 10
