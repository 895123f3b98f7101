"""Sending one delivery, crash-safe and at most once per claim; retries; the sweeper.

Modules by job: ``claim``, ``send``, ``record`` (and ``pipeline``, which runs the three for
one delivery or a batch), ``inapp`` (the live event), ``enqueue``, ``dispatch``, ``sweep``,
``policy`` (leases, backoff, batch size), ``lease`` (renewing the leases of sends in flight).

The send is split in three steps so no database transaction is open during a network call
and a crash at any point leaves a state the sweeper can repair:

1. **Claim** (short transaction): ``SELECT … FOR UPDATE SKIP LOCKED`` the row; only a
   ``pending`` row that is due is taken; past ``expires_at`` it becomes ``expired``. The row
   becomes ``sending`` with a *lease* (``delivery_metadata.lease = {token, until, worker}``)
   and that is committed **before** the provider is called. A second task for the same
   delivery (a duplicate message, a sweeper re-enqueue, Celery's redelivery after a worker
   died) finds it locked or not pending and does nothing.
2. **Send** (no transaction): route (``providers.routing.candidates``) and
   ``providers.services.send_with_failover`` with the idempotency key ``delivery-<id>``.
3. **Record** (short transaction): a conditional UPDATE that only applies while *our* lease
   holds, then the notification's status is recomputed under its row lock.

While the send is in flight its worker renews the lease (``lease``: every third of
``NP_DELIVERY_LEASE_SECONDS``, for at most ``NP_DELIVERY_LEASE_MAX_SECONDS``), so a slow
provider or a long failover never looks like a dead worker. If the worker dies between 1 and
3 the renewals stop and the row stays ``sending`` until the lease runs out; the sweeper
then puts it back to ``pending`` (counting an attempt, so a message that crashes workers ends
``failed`` instead of looping) and it is sent again with the **same** idempotency key.
Trade-off, stated plainly: a crash *after* the provider accepted the message but *before*
step 3 committed means the outcome is unknown; we choose at-least-once for that window (a
few milliseconds) over losing the message. Providers that honour idempotency keys
(HTTP APIs with ``Idempotency-Key``, webhook receivers deduplicating on ``webhook-id``)
turn the re-send into a no-op; plain SMTP cannot, and the SMTP adapter puts the delivery id
in a header so a duplicate is at least recognisable downstream.

Retryable failures are rescheduled in the database (``scheduled_at`` = now + exponential
backoff with full jitter, ``NP_DELIVERY_RETRY_BASE_SECONDS``/``_CAP_SECONDS``) up to
``max_retries``; the dispatcher (beat, every second) enqueues them when due (no long Celery
countdowns).
"""

from .claim import _claim, _expire
from .dispatch import deliveries_dispatch_due, send_queue_backlog
from .enqueue import enqueue_deliveries
from .inapp import publish_in_app, publish_in_app_groups
from .pipeline import deliveries_send, deliveries_send_batch, delivery_send
from .policy import (
    LEASE_EXPIRED,
    SEND_CRASHED,
    _without,
    lease_seconds,
    retry_delay,
    send_batch_size,
    send_concurrency,
)
from .record import _refresh_notification
from .send import build_message
from .sweep import deliveries_sweep

__all__ = [
    "LEASE_EXPIRED",
    "SEND_CRASHED",
    "_claim",
    "_expire",
    "_refresh_notification",
    "_without",
    "build_message",
    "deliveries_dispatch_due",
    "deliveries_send",
    "deliveries_send_batch",
    "deliveries_sweep",
    "delivery_send",
    "enqueue_deliveries",
    "lease_seconds",
    "publish_in_app",
    "publish_in_app_groups",
    "retry_delay",
    "send_batch_size",
    "send_concurrency",
    "send_queue_backlog",
]
