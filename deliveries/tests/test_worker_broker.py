"""A worker on either Celery broker: a countdown send waits out its delay in the broker and
arrives after it, and SIGTERM lets the worker leave within seconds.

Before: on RabbitMQ the queues had direct exchanges, which Celery's native delayed
delivery does not bind to (it logged so, and held a countdown task in the worker until
due), and an idle worker took up to 10 s to act on SIGTERM, because its event loop polled
until its next timer before it looked at the shutdown flag."""

from __future__ import annotations

import signal
import time

import pytest

from deliveries.models import NotificationDelivery
from deliveries.services import notify
from deliveries.tasks import send_delivery

from .conftest import wait_for
from .rows import insert_deliveries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalogue"),
]

COUNTDOWN = 3
# a worker's event loop now wakes at least once a second; the rest is Python's exit
SHUTDOWN_WITHIN = 4.0


def _status(delivery_id: int) -> str:
    return NotificationDelivery.objects.get(pk=delivery_id).status


def test_a_countdown_send_arrives_after_its_delay_and_sigterm_stops_the_worker_promptly(
    broker, user, pipeline_providers, webhook_receiver, start_worker
):
    # without worker heartbeats, whose 2 s timer would wake an idle loop anyway
    worker = start_worker(args=("--without-heartbeat",))
    # given a worker that consumes (a first send went out through it)
    first = notify(
        user,
        title="Now",
        message="at once",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
    )
    wait_for(lambda: _status(first.deliveries[0].pk) == "sent", timeout=60)

    # when a pending delivery is queued with a countdown
    [delayed] = insert_deliveries(
        user_id=user.pk,
        count=1,
        status="pending",
        channel="webhook",
        recipient=webhook_receiver.url,
    )
    queued_at = time.monotonic()
    send_delivery.apply_async((delayed,), countdown=COUNTDOWN)

    # then it is sent once, after the delay
    wait_for(lambda: _status(delayed) == "sent", timeout=60)
    assert time.monotonic() - queued_at >= COUNTDOWN - 0.5
    assert webhook_receiver.by_delivery()[delayed] == 1
    # and on RabbitMQ it waited in the broker's delay queues, not in the worker
    assert "do not support direct exchanges" not in worker.output(), worker.output()

    # when the worker is asked to stop, it leaves within seconds
    stopping = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(timeout=30)
    took = time.monotonic() - stopping
    assert worker.process.returncode == 0, worker.output()
    assert took < SHUTDOWN_WITHIN, f"the worker took {took:.1f}s to stop\n{worker.output()}"
