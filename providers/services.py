"""Write paths of the providers app: sending with failover, circuit bookkeeping,
registering providers. (Adapters verify and parse receipts; the pipeline applies them:
``deliveries.services.receipts``.)"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from providers import circuit, errors, policy, ratelimit, spendcap
from providers.errors import HEALTH_ERROR_CODES, ProviderError
from providers.models import Provider
from providers.registry import UnknownAdapterError, get_adapter
from providers.types import Attempt, OutboundMessage, SendOutcome

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("providers.audit")

__all__ = [
    "SendOutcome",
    "provider_audit_configuration",
    "SuccessTally",
    "send_with_failover",
    "send_with_failover_async",
]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _adapter(provider: Provider) -> tuple[Any, ProviderError | None]:
    """The provider's adapter, or why it cannot be used (unknown adapter, missing
    credentials): the checks before every try, either loop.

    Worked out once per provider instance and kept on it: a batch's sends share the
    instances routing loaded for that batch (fresh ones each batch), and what is checked —
    the row's class and configuration, the process's environment — cannot change in
    between. Measured: the policy checks were 4 % of a sending worker's CPU when repeated
    for every send (bench/profiles/send_worker.txt). Adapters keep no per-send state."""
    found: tuple[Any, ProviderError | None] | None = provider.__dict__.get(_READY_ADAPTER)
    if found is None:
        found = provider.__dict__[_READY_ADAPTER] = _checked_adapter(provider)
    return found


_READY_ADAPTER = "_np_ready_adapter"


def _checked_adapter(provider: Provider) -> tuple[Any, ProviderError | None]:
    try:
        adapter = get_adapter(provider)
    except UnknownAdapterError as exc:
        return None, errors.permanent(str(exc), errors.UNCONFIGURED)
    refused = adapter.configuration_refused()
    if refused:
        # routing already skipped it: a credential variable or server the policy refuses
        return None, adapter.refused("; ".join(refused))
    if adapter.missing_credentials():
        # routing already skipped it; a caller passing its own list gets a record
        return None, adapter.unconfigured()
    return adapter, None


def _rate_limited(provider: Provider, exhausted: ratelimit.Limit) -> ProviderError:
    return errors.transient(
        f"{provider.provider_name}: rate limit per {exhausted.period} reached",
        errors.RATE_LIMITED,
        retry_after=exhausted.reset_in,
    )


def _ready(provider: Provider) -> tuple[Any, ProviderError | None]:
    """The adapter, or why it cannot take this message now (see ``_adapter``; or its local
    rate limit: a provider without limits costs no Redis round trip, a limited one one
    EVAL)."""
    adapter, error = _adapter(provider)
    if error is not None:
        return None, error
    exhausted = ratelimit.acquire(provider)
    if exhausted is not None:
        return None, _rate_limited(provider, exhausted)
    capped = _reserve_spend(provider)
    if capped is not None:
        return None, capped
    return adapter, None


async def _aready(provider: Provider) -> tuple[Any, ProviderError | None]:
    """:func:`_ready` for the event loop: the rate-limit token is taken with redis.asyncio,
    so a slow Redis holds back this send only, not every send on the loop. The spend
    reservation (a blocking Redis call, only for providers with a cost and a cap) runs in
    a thread for the same reason."""
    adapter, error = _adapter(provider)
    if error is not None:
        return None, error
    exhausted = await ratelimit.acquire_async(provider)
    if exhausted is not None:
        return None, _rate_limited(provider, exhausted)
    if spendcap.applies(provider):
        capped = await asyncio.to_thread(_reserve_spend, provider)
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
        adapter, last_error = await _aready(provider)
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


def provider_sensitive_values(provider: Provider) -> dict[str, Any]:
    return policy.sensitive_values(
        configuration=provider.configuration,
        webhook_config=provider.webhook_config,
        credentials_required=provider.credentials_required,
        provider_class=provider.provider_class,
    )


def provider_audit_configuration(
    *,
    provider: Provider,
    before: dict[str, Any],
    actor: Any,
    via: str,
    history: bool = True,
) -> list[str]:
    """Record a change of the credential variables or servers a provider points at.

    One WARNING line on the ``providers.audit`` logger, and (``history``) an admin
    history row (LogEntry) with the diff: the admin writes its own row, whose message
    ``ProviderAdmin`` extends with the same diff. Returns the diff (empty: nothing
    sensitive changed, nothing recorded)."""
    diff = policy.sensitive_diff(before, provider_sensitive_values(provider))
    if not diff:
        return diff
    who = getattr(actor, "email", None) or getattr(actor, "pk", None) or "unknown"
    audit_logger.warning(
        "provider %s credentials/servers changed by %s via %s: %s",
        provider.provider_name,
        who,
        via,
        "; ".join(diff),
    )
    if history and getattr(actor, "pk", None) is not None:
        from django.contrib.admin.models import CHANGE, LogEntry
        from django.contrib.contenttypes.models import ContentType

        LogEntry.objects.create(
            user_id=actor.pk,
            content_type=ContentType.objects.get_for_model(Provider),
            object_id=str(provider.pk),
            object_repr=str(provider)[:200],
            action_flag=CHANGE,
            change_message=f"Changed via {via}: " + "; ".join(diff),
        )
    return diff
