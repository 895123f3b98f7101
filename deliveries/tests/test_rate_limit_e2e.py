"""A provider's per-minute limit holds across worker processes: two real Celery workers
share one Redis counter, so together they send at most N in any one minute window."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.db.models import Q

from deliveries.models import NotificationDelivery
from deliveries.services import notify_many

from .conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("catalogue", "purge_queue")]

LIMIT = 7


@pytest.fixture
def e2e_db(transactional_db):
    """Rows must be committed for the workers (other processes) to see them."""


def test_provider_limited_to_n_per_minute_receives_at_most_n_from_two_workers(
    e2e_db, make_user, pipeline_providers, webhook_receiver, start_worker
):
    # given a webhook provider limited to 7 a minute and 40 deliveries for it
    provider = pipeline_providers["webhook"]
    provider.rate_limit_per_minute = LIMIT
    provider.save(update_fields=["rate_limit_per_minute"])
    arrived_at: list[float] = []
    original = webhook_receiver.arrivals

    class Stamped(list):
        def append(self, item):  # the receiver appends under its lock
            arrived_at.append(time.time())
            super().append(item)

    webhook_receiver.arrivals = Stamped(original)
    results = notify_many(
        [make_user()] * 40,
        title="Limited",
        message="one of 40",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
    )
    ids = [result.deliveries[0].pk for result in results]

    # when two worker processes work through them
    start_worker()
    start_worker()

    # then every delivery was tried at least once...
    def all_tried() -> bool:
        # claimed is not tried: a batch claim leases all 40 at once, and an outcome (sent,
        # or rate-limited and rescheduled) is recorded only once each send has finished
        untried = NotificationDelivery.objects.filter(pk__in=ids).filter(
            Q(status="pending", retry_count=0) | Q(status="sending")
        )
        return not untried.exists()

    assert wait_for(all_tried, timeout=90)
    # ...and in no minute window (the limiter's fixed, epoch-aligned windows) did the
    # provider receive more than the limit, while it did receive traffic
    per_window = Counter(int(t // 60) for t in arrived_at)
    outcomes = Counter(
        NotificationDelivery.objects.filter(pk__in=ids).values_list("status", "error_code")
    )
    assert per_window, f"nothing was sent; deliveries (status, error): {dict(outcomes)}"
    assert max(per_window.values()) <= LIMIT, per_window
    sent = NotificationDelivery.objects.filter(pk__in=ids, status="sent").count()
    assert sent == len(webhook_receiver.arrivals)
    # those refused a token were not lost: they wait for a later window (or failed after
    # max_retries), each with the rule recorded
    waiting = NotificationDelivery.objects.filter(pk__in=ids).exclude(status="sent")
    assert waiting.count() == 40 - sent
    assert all(d.error_code for d in waiting)
