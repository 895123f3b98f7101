"""A live worker keeps the leases of its slow sends; only a dead or wedged one loses them.

In-process, against the real loopback webhook receiver holding every request (a provider
answering slowly), while the sweeper runs as beat would; the rows are committed because the
renewal runs on its own thread and database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from deliveries.models import NotificationDelivery
from deliveries.services import deliveries_sweep, delivery_send, notify
from deliveries.services.sending import deliveries_send

from .conftest import wait_for

pytestmark = pytest.mark.usefixtures("catalogue", "purge_queue")


def _webhook_deliveries(user, receiver, count: int) -> list[int]:
    return [
        notify(
            user, title="Slow", message=f"#{n}", channels=["webhook"], webhook_url=receiver.url
        ).deliveries[0].pk
        for n in range(count)
    ]


def _in_thread(func: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(func())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _sweep_for(seconds: float) -> int:
    """Run the sweeper every 0.2 s for ``seconds``, as beat would; how many leases it took."""
    released = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        released += deliveries_sweep()["released"]
        time.sleep(0.2)
    return released


def _single(ids: list[int]) -> list[Any]:
    [pk] = ids
    return [delivery_send(pk)]


@pytest.mark.parametrize(("send", "count"), [(deliveries_send, 3), (_single, 1)])
def test_a_send_slower_than_its_lease_keeps_it_and_is_sent_once(
    transactional_db, send, count, user, pipeline_providers, webhook_receiver, settings
):
    # given a 1.5 s lease, and a receiver that answers nothing until released
    settings.NP_DELIVERY_LEASE_SECONDS = 1.5
    settings.NP_SWEEP_GRACE_SECONDS = 0
    webhook_receiver.hold_after = 0
    ids = _webhook_deliveries(user, webhook_receiver, count)
    sending, out = _in_thread(lambda: send(ids))
    wait_for(lambda: webhook_receiver.held == len(ids), timeout=10)

    # when the send stays in flight for three leases while the sweeper runs
    released = _sweep_for(4.5)

    # then no lease ran out: a second worker finds nothing to send
    assert released == 0
    assert deliveries_send(ids) == []
    rows = NotificationDelivery.objects.filter(pk__in=ids)
    assert {row.status for row in rows} == {"sending"}
    assert all(row.delivery_metadata["lease"]["until"] > time.time() for row in rows)

    # and once the receiver answers, each is recorded sent, having arrived once
    webhook_receiver.release()
    sending.join(10)
    assert [summary.outcome for summary in out[0]] == ["sent"] * len(ids)
    assert webhook_receiver.by_delivery() == dict.fromkeys(ids, 1)
    for row in NotificationDelivery.objects.filter(pk__in=ids):
        assert (row.status, row.retry_count) == ("sent", 0)
        assert "lease_expiries" not in row.delivery_metadata


def test_a_wedged_send_stops_renewing_after_the_maximum(
    transactional_db, user, pipeline_providers, webhook_receiver, settings
):
    # given a send held by its receiver past NP_DELIVERY_LEASE_MAX_SECONDS
    settings.NP_DELIVERY_LEASE_SECONDS = 1
    settings.NP_DELIVERY_LEASE_MAX_SECONDS = 2
    settings.NP_SWEEP_GRACE_SECONDS = 0
    webhook_receiver.hold_after = 0
    [pk] = _webhook_deliveries(user, webhook_receiver, 1)
    sending, out = _in_thread(lambda: deliveries_send([pk]))
    wait_for(lambda: webhook_receiver.held == 1, timeout=10)

    # when the sweeper runs on: the renewal gives up at 2 s, the lease lapses a second later
    released = _sweep_for(4.5)

    # then the row went back to the queue with an attempt counted
    assert released == 1
    row = NotificationDelivery.objects.get(pk=pk)
    assert (row.status, row.retry_count) == ("pending", 1)
    # and the answer that comes at last is still recorded (nobody claimed the row again)
    webhook_receiver.release()
    sending.join(10)
    assert [summary.outcome for summary in out[0]] == ["sent"]
    assert NotificationDelivery.objects.get(pk=pk).status == "sent"
