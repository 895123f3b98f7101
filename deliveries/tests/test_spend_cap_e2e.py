"""A provider's daily spend cap holds on the real send path (issue 15, item 2): a real
Celery worker (with its beat sweeper) sends until the cap, defers the rest — pending, with
decision ``spend_cap``, retries untouched — and sends them when the cap is raised or the
cap's window rolls over. Nothing is lost and nothing is sent twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from deliveries.models import NotificationDelivery
from deliveries.services import notify_many

from .conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("catalogue", "purge_queue")]

FAST_SWEEP = {
    "NP_SWEEP_INTERVAL_SECONDS": "1",
    "NP_SWEEP_GRACE_SECONDS": "0",
    "NP_SPEND_CAP_RECHECK_SECONDS": "1",
}


@pytest.fixture
def e2e_db(transactional_db):
    """Rows must be committed for the workers (other processes) to see them."""


def capped_webhook(pipeline_providers, *, cost: str, cap: str):
    provider = pipeline_providers["webhook"]
    provider.cost_per_message = Decimal(cost)
    provider.configuration = {**provider.configuration, "daily_spend_cap": cap}
    provider.save(update_fields=["cost_per_message", "configuration"])
    return provider


def send(make_user, webhook_receiver, count: int) -> list[int]:
    results = notify_many(
        [make_user() for _ in range(count)],
        title="Costly",
        message="counts toward the cap",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
    )
    return [result.deliveries[0].pk for result in results]


def test_sends_past_the_cap_wait_with_decision_spend_cap_until_it_is_raised(
    e2e_db, make_user, pipeline_providers, webhook_receiver, start_worker, client
):
    # given a provider at 0.01 a message with a cap of 0.03 a day, and 5 deliveries for it
    provider = capped_webhook(pipeline_providers, cost="0.01", cap="0.03")
    ids = send(make_user, webhook_receiver, 5)
    rows = NotificationDelivery.objects.filter(pk__in=ids)

    # when a real worker (with its sweeper) works through them
    worker = start_worker(beat=True, **FAST_SWEEP)

    # then 3 are sent and 2 wait: pending, decision spend_cap, no retry spent
    def settled() -> bool:
        statuses = Counter(rows.values_list("status", flat=True))
        deferred = rows.filter(status="pending", delivery_metadata__decision__rule="spend_cap")
        return statuses["sent"] == 3 and deferred.count() == 2

    wait_for(settled, timeout=60)
    waiting = list(rows.filter(status="pending"))
    for delivery in waiting:
        decision = delivery.delivery_metadata["decision"]
        assert (decision["rule"], decision["providers"]) == ("spend_cap", [provider.provider_name])
        assert (delivery.retry_count, delivery.error_code) == (0, "SPEND_CAP")
    # they are tried again (the recheck), and the cap still holds
    first_attempts = {d.pk: d.delivery_metadata["decision"]["next_attempt_at"] for d in waiting}

    def retried() -> bool:
        return all(
            d.delivery_metadata["decision"]["next_attempt_at"] != first_attempts[d.pk]
            for d in rows.filter(pk__in=first_attempts)
        )

    wait_for(retried, timeout=30)
    assert rows.filter(status="sent").count() == 3
    assert rows.filter(status="pending", retry_count=0).count() == 2
    assert sum(webhook_receiver.by_delivery().values()) == 3, worker.output()
    assert rows.aggregate(total=Sum("cost_per_message"))["total"] == Decimal("0.03")

    # when staff raise the cap
    capped_webhook(pipeline_providers, cost="0.01", cap="1.00")

    # then the deferred ones go out, each exactly once, and the spend is what was sent
    wait_for(lambda: rows.filter(status="sent").count() == 5, timeout=30)
    arrivals = webhook_receiver.by_delivery()
    assert sorted(arrivals) == sorted(ids) and set(arrivals.values()) == {1}
    assert rows.aggregate(total=Sum("cost_per_message"))["total"] == Decimal("0.05")

    # and staff see the spend against the cap, and per day, in the provider admin
    client.force_login(make_user(email="ops@example.test", is_staff=True, is_superuser=True))
    listed = client.get("/admin/providers/provider/").content.decode()
    assert "0.0500 / 1.00" in listed
    page = client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()
    today = timezone.now().astimezone(UTC).date().isoformat()
    assert f"<td>{today}</td><td>5</td><td>0.0500</td>" in page


def test_deferred_sends_go_out_when_the_cap_window_rolls_over(
    e2e_db, make_user, pipeline_providers, webhook_receiver, start_worker
):
    # given a cap of one message per (3-second) window and 3 deliveries
    capped_webhook(pipeline_providers, cost="0.01", cap="0.01")
    ids = send(make_user, webhook_receiver, 3)
    rows = NotificationDelivery.objects.filter(pk__in=ids)

    # when a worker sends them
    start_worker(beat=True, NP_SPEND_CAP_WINDOW_SECONDS="3", **FAST_SWEEP)

    # then all go out, one per window: the later two after being deferred by the cap
    wait_for(lambda: rows.filter(status="sent").count() == 3, timeout=60)
    sent = sorted(rows, key=lambda d: d.sent_at)
    assert (sent[-1].sent_at - sent[0].sent_at).total_seconds() > 2.5  # two windows apart
    deferred = [
        d for d in sent if d.delivery_metadata.get("decision", {}).get("rule") == "spend_cap"
    ]
    assert len(deferred) == 2 and all(d.retry_count == 0 for d in deferred)
    arrivals = webhook_receiver.by_delivery()
    assert sorted(arrivals) == sorted(ids) and set(arrivals.values()) == {1}
