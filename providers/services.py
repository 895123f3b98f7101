"""Write paths of the providers app: sending with failover, circuit bookkeeping,
applying receipts, registering providers."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from providers import circuit, errors, ratelimit, spendcap
from providers.errors import HEALTH_ERROR_CODES, ProviderError
from providers.models import Provider
from providers.registry import UnknownAdapterError, get_adapter
from providers.types import Attempt, OutboundMessage, Receipt, ReceiptStatus, SendOutcome

logger = logging.getLogger(__name__)

__all__ = [
    "SendOutcome",
    "SuccessTally",
    "receipt_apply",
    "send_with_failover",
    "send_with_failover_async",
]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _ready(provider: Provider) -> tuple[Any, ProviderError | None]:
    """The provider's adapter, or why it cannot take this message now (unknown adapter,
    missing credentials, local rate limit): the checks before every try, either loop."""
    try:
        adapter = get_adapter(provider)
    except UnknownAdapterError as exc:
        return None, errors.permanent(str(exc), errors.UNCONFIGURED)
    if adapter.missing_credentials():
        # routing already skipped it; a caller passing its own list gets a record
        return None, adapter.unconfigured()
    # a provider without limits costs no Redis round trip; a limited one one EVAL
    exhausted = ratelimit.acquire(provider)
    if exhausted is not None:
        return None, errors.transient(
            f"{provider.provider_name}: rate limit per {exhausted.period} reached",
            errors.RATE_LIMITED,
            retry_after=exhausted.reset_in,
        )
    capped = _reserve_spend(provider)
    if capped is not None:
        return None, capped
    return adapter, None


def _reserve_spend(provider: Provider) -> ProviderError | None:
    """The daily spend cap step (``providers.spendcap``), last before the send: reserves
    the message's cost, or refuses the provider with ``SPEND_CAP``. Free for a provider
    without a cost or a cap; else one EVAL. A send that then fails is ``_refund_spend``."""
    reached = spendcap.reserve(provider)
    if reached is None:
        return None
    return errors.transient(
        f"{provider.provider_name}: daily spend cap {reached.cap} reached",
        errors.SPEND_CAP,
        retry_after=reached.reset_in,
    )


def _refund_spend(provider: Provider, exc: ProviderError) -> None:
    """The provider refused the message: its reserved cost goes back to the cap. Not for a
    timeout (the provider may have taken it)."""
    if exc.error_code != errors.TIMEOUT:
        spendcap.release(provider)


def _crashed(provider: Provider, exc: Exception) -> ProviderError:
    """An adapter bug becomes a retryable error: it must not lose the delivery's story."""
    logger.exception("provider %s raised unexpectedly", provider.provider_name)
    return errors.transient(
        f"{provider.provider_name}: {type(exc).__name__}: {exc}", errors.UNKNOWN
    )


def _succeeded(provider: Provider, result: Any, started: float) -> Attempt:
    # a provider that reports its cost corrects the reservation (_reserve_spend)
    spendcap.settle(provider, result.cost)
    return Attempt(
        provider_name=provider.provider_name,
        ok=True,
        error_code=None,
        response=result.response,
        duration_ms=_ms(started),
        provider_message_id=result.provider_message_id,
    )


def _none_took_it(
    message: OutboundMessage, attempts: list[Attempt], last_error: ProviderError | None
) -> SendOutcome:
    if last_error is None:
        last_error = errors.transient(
            f"no provider available for {message.channel}", errors.NO_PROVIDER
        )
    return SendOutcome(result=None, provider=None, attempts=attempts, error=last_error)


def send_with_failover(message: OutboundMessage, providers: list[Provider]) -> SendOutcome:
    """Try ``providers`` in order within one call.

    A retryable error (5xx, timeout, 429, connection, local rate limit) moves on to the
    next provider with the SAME idempotency key, so a slow first provider that did
    accept the message cannot make a receiver see it twice; a permanent error (bad
    recipient, rejected content) stops, because another provider would refuse it too.
    Every try is an Attempt in the outcome.
    """
    attempts: list[Attempt] = []
    last_error: ProviderError | None = None
    for provider in providers:
        started = time.monotonic()
        adapter, last_error = _ready(provider)
        if last_error is not None:
            attempts.append(_failed(provider, last_error, started))
            continue
        try:
            result = adapter.send(message)
        except ProviderError as exc:
            _refund_spend(provider, exc)
            last_error = exc
            attempts.append(_failed(provider, exc, started))
            if exc.error_code in HEALTH_ERROR_CODES:
                circuit.record_failure(provider)
            if not exc.retryable:
                return SendOutcome(result=None, provider=provider, attempts=attempts, error=exc)
            continue
        except Exception as exc:  # an adapter bug: see _crashed
            last_error = _crashed(provider, exc)
            attempts.append(_failed(provider, last_error, started))
            circuit.record_failure(provider)
            continue
        circuit.record_success(provider)
        attempts.append(_succeeded(provider, result, started))
        return SendOutcome(result=result, provider=provider, attempts=attempts, error=None)
    return _none_took_it(message, attempts, last_error)


class SuccessTally:
    """Circuit-breaker successes of a batch, counted in memory and written in one Redis
    pipeline by :meth:`flush` (``circuit.record_successes``) instead of one round trip per
    send. A failure is still recorded at once (it may open the circuit); the tally only
    remembers whether a provider's last outcome was a success, so a batch ending in
    failures does not reset the consecutive-failure count."""

    def __init__(self) -> None:
        self.counts: dict[int, list[Any]] = {}  # provider pk -> [provider, successes, last_ok]

    def success(self, provider: Provider) -> None:
        entry = self.counts.setdefault(provider.pk, [provider, 0, True])
        entry[1] += 1
        entry[2] = True

    def failure(self, provider: Provider) -> None:
        entry = self.counts.setdefault(provider.pk, [provider, 0, False])
        entry[2] = False

    def flush(self) -> None:
        counts, self.counts = self.counts, {}
        for provider, successes, last_ok in counts.values():
            if successes:
                circuit.record_successes(provider, successes, reset_consecutive=last_ok)


async def send_with_failover_async(
    message: OutboundMessage, providers: list[Provider], tally: SuccessTally
) -> SendOutcome:
    """:func:`send_with_failover` as a coroutine for the batch sender's event loop: the same
    order, the same idempotency key on every try, the same attempts recorded. Adapters send
    with ``asend``; circuit successes go to ``tally`` (the caller flushes it after the
    batch), failures are recorded at once in a thread (opening a circuit writes the
    database, which the event loop must not)."""
    from providers import aio

    attempts: list[Attempt] = []
    last_error: ProviderError | None = None
    for provider in providers:
        started = time.monotonic()
        adapter, last_error = _ready(provider)
        if last_error is not None:
            attempts.append(_failed(provider, last_error, started))
            continue
        try:
            result = await adapter.asend(message)
        except ProviderError as exc:
            _refund_spend(provider, exc)
            last_error = exc
            attempts.append(_failed(provider, exc, started))
            if exc.error_code in HEALTH_ERROR_CODES:
                tally.failure(provider)
                await aio.to_thread(circuit.record_failure, provider)
            if not exc.retryable:
                return SendOutcome(result=None, provider=provider, attempts=attempts, error=exc)
            continue
        except Exception as exc:  # an adapter bug: see _crashed
            last_error = _crashed(provider, exc)
            attempts.append(_failed(provider, last_error, started))
            tally.failure(provider)
            await aio.to_thread(circuit.record_failure, provider)
            continue
        tally.success(provider)
        attempts.append(_succeeded(provider, result, started))
        return SendOutcome(result=result, provider=provider, attempts=attempts, error=None)
    return _none_took_it(message, attempts, last_error)


def _failed(provider: Provider, exc: ProviderError, started: float) -> Attempt:
    return Attempt(
        provider_name=provider.provider_name,
        ok=False,
        error_code=exc.error_code,
        response=exc.response,
        duration_ms=_ms(started),
        error_message=exc.message,
        retryable=exc.retryable,
    )


# Receipt outcome → which current statuses it may replace. A late "delivered" must not
# undo a bounce, and nothing moves a delivery back to an earlier state.
_RECEIPT_FROM: dict[str, tuple[str, ...]] = {
    ReceiptStatus.DELIVERED: ("pending", "sending", "sent"),
    ReceiptStatus.BOUNCED: ("pending", "sending", "sent", "delivered"),
    ReceiptStatus.FAILED: ("pending", "sending", "sent"),
    ReceiptStatus.COMPLAINED: ("sent", "delivered"),
}


@transaction.atomic
def receipt_apply(*, provider: Provider, receipt: Receipt) -> int:
    """Record a normalised receipt on the delivery it names; the number of rows updated."""
    from deliveries.models import NotificationDelivery

    now = timezone.now()
    fields: dict[str, Any] = {"status": receipt.status, "updated_at": now}
    if receipt.status == ReceiptStatus.DELIVERED:
        fields["delivered_at"] = receipt.timestamp or now
    elif receipt.status in (ReceiptStatus.BOUNCED, ReceiptStatus.FAILED):
        fields["failed_at"] = receipt.timestamp or now
        fields["error_code"] = receipt.error_code or (
            errors.INVALID_RECIPIENT if receipt.status == ReceiptStatus.BOUNCED else errors.REJECTED
        )
        if receipt.description:
            fields["error_message"] = receipt.description[:1000]
    rows = list(
        NotificationDelivery.objects.select_for_update()
        .filter(
            provider_name=provider.provider_name,
            provider_message_id=receipt.provider_message_id,
            status__in=_RECEIPT_FROM[receipt.status],
        )
        .only("id", "delivery_metadata")
    )
    for row in rows:
        metadata = dict(row.delivery_metadata or {})
        metadata.setdefault("receipts", []).append(
            {
                "event": receipt.event,
                "status": receipt.status,
                "at": (receipt.timestamp or now).isoformat(),
                "error_code": receipt.error_code,
            }
        )
        NotificationDelivery.objects.filter(pk=row.pk).update(delivery_metadata=metadata, **fields)
    if rows and receipt.status == ReceiptStatus.DELIVERED:
        _mark_notifications_delivered([r.pk for r in rows], fields["delivered_at"])
    return len(rows)


def _mark_notifications_delivered(delivery_ids: list[int], when: Any) -> None:
    from deliveries.models import Notification, NotificationDelivery

    notification_ids = NotificationDelivery.objects.filter(
        pk__in=delivery_ids, notification__isnull=False
    ).values("notification_id")
    Notification.objects.filter(pk__in=notification_ids, status__in=("pending", "sent")).update(
        status="delivered", delivered_at=when
    )
