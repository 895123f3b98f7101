"""A circuit breaker per provider, with its counters in Redis so every worker shares it.

Counts per minute bucket over a sliding 5-minute window. The circuit opens when the
window holds at least ``NP_CIRCUIT_MIN_ERRORS`` errors (default 100, Saleor's number)
and they are at least ``NP_CIRCUIT_ERROR_RATE`` (35 %) of the calls, or after
``NP_CIRCUIT_CONSECUTIVE`` (20) failures in a row. Open means
``provider_registry.is_healthy = False``: routing skips the provider.

Two things close it again:

- the health check task, when the provider's health check passes (after
  ``NP_CIRCUIT_COOLDOWN`` seconds, default 120, for providers with nothing to probe);
- half-open: once the circuit has been open for the cooldown, routing lets ONE request
  through as a trial (:func:`claim_trial`, a Redis ``SET NX`` shared by every worker, held
  for at most ``NP_CIRCUIT_TRIAL_TIMEOUT`` seconds, default 60, so a trial lost with its
  worker does not block the next one). Its success closes the circuit
  (:func:`record_success`); its failure re-opens it for another cooldown
  (:func:`record_failure`). A trial that ends otherwise (a bad recipient, a local rate
  limit) decides nothing: the next trial comes when its claim times out.

Routing hands a half-open provider out with ``is_healthy`` still False, which is how the
outcome of a send is recognised as the trial's.
"""

from __future__ import annotations

import contextlib
import logging
import time

import redis
from django.conf import settings
from django.utils import timezone

from providers import kv
from providers.models import Provider

logger = logging.getLogger(__name__)

WINDOW_MINUTES = 5


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def _base(name: str) -> str:
    """Every key of one provider's circuit shares a hash tag: one Redis Cluster slot, so
    its multi-key pipelines and DEL run there too."""
    return f"{kv.prefix()}:cb:{kv.slot_tag('cb', name)}"


def _keys(name: str, now: float) -> tuple[list[str], str]:
    minute = int(now // 60)
    base = _base(name)
    buckets = [f"{base}:m:{minute - i}" for i in range(WINDOW_MINUTES)]
    return buckets, f"{base}:consecutive"


def opened_at_key(name: str) -> str:
    return f"{_base(name)}:opened_at"


def trial_key(name: str) -> str:
    return f"{_base(name)}:trial"


def record_success(provider: Provider) -> None:
    record_successes(provider, 1)


def record_successes(provider: Provider, count: int, *, reset_consecutive: bool = True) -> None:
    """Count ``count`` successes in one pipeline (the batch sender tallies a whole batch);
    ``reset_consecutive=False`` when the provider's last outcome was a failure."""
    if not provider.is_healthy:  # the half-open trial went through: the provider is back
        close_circuit(provider, reason="half-open trial succeeded")
        return
    buckets, consecutive = _keys(provider.provider_name, time.time())
    try:
        pipe = kv.client().pipeline()
        pipe.hincrby(buckets[0], "ok", count)
        pipe.expire(buckets[0], WINDOW_MINUTES * 60 + 60)
        if reset_consecutive:
            pipe.delete(consecutive)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("circuit for %s not updated: redis error %s", provider, exc)


def record_failure(provider: Provider) -> bool:
    """Count one failure; open the circuit if a threshold is crossed. True if opened."""
    if not provider.is_healthy:  # the half-open trial failed: open for another cooldown
        open_circuit(provider, reason="half-open trial failed", reopen=True)
        return True
    now = time.time()
    buckets, consecutive = _keys(provider.provider_name, now)
    try:
        pipe = kv.client().pipeline()
        pipe.hincrby(buckets[0], "err", 1)
        pipe.expire(buckets[0], WINDOW_MINUTES * 60 + 60)
        pipe.incr(consecutive)
        pipe.expire(consecutive, 24 * 3600)
        for key in buckets:
            pipe.hgetall(key)
        result = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("circuit for %s not updated: redis error %s", provider, exc)
        return False
    in_a_row = int(result[2])
    ok = err = 0
    for bucket in result[4:]:
        ok += int(bucket.get("ok", 0))
        err += int(bucket.get("err", 0))
    rate = err / (ok + err) if ok + err else 0.0
    trip = (
        err >= _setting("NP_CIRCUIT_MIN_ERRORS", 100)
        and rate >= _setting("NP_CIRCUIT_ERROR_RATE", 0.35)
    ) or in_a_row >= _setting("NP_CIRCUIT_CONSECUTIVE", 20)
    if trip:
        open_circuit(
            provider, reason=f"{err} errors / {ok + err} calls in 5 min, {in_a_row} in a row"
        )
    return trip


def stats(provider: Provider) -> dict[str, float]:
    buckets, consecutive = _keys(provider.provider_name, time.time())
    pipe = kv.client().pipeline()
    for key in buckets:
        pipe.hgetall(key)
    pipe.get(consecutive)
    result = pipe.execute()
    ok = sum(int(b.get("ok", 0)) for b in result[:-1])
    err = sum(int(b.get("err", 0)) for b in result[:-1])
    return {"ok": ok, "errors": err, "consecutive": int(result[-1] or 0)}


def open_circuit(provider: Provider, *, reason: str, reopen: bool = False) -> None:
    """Open the circuit. The cooldown starts when it opens (or, with ``reopen``, now):
    failures of requests still in flight when it opened do not push it further away."""
    updated = Provider.objects.filter(pk=provider.pk, is_healthy=True).update(
        is_healthy=False, updated_at=timezone.now()
    )
    provider.is_healthy = False
    name = provider.provider_name
    with contextlib.suppress(redis.RedisError):
        conn = kv.client()
        if updated or reopen:
            pipe = conn.pipeline()
            pipe.set(opened_at_key(name), str(time.time()))
            pipe.delete(trial_key(name))
            pipe.execute()
        else:
            conn.set(opened_at_key(name), str(time.time()), nx=True)
    if updated or reopen:
        logger.warning("circuit opened for provider %s: %s", name, reason)


def close_circuit(provider: Provider, *, reason: str = "") -> None:
    Provider.objects.filter(pk=provider.pk).update(is_healthy=True, updated_at=timezone.now())
    provider.is_healthy = True
    name = provider.provider_name
    buckets, consecutive = _keys(name, time.time())
    with contextlib.suppress(redis.RedisError):
        kv.client().delete(*buckets, consecutive, opened_at_key(name), trial_key(name))
    logger.info("circuit closed for provider %s%s", name, f": {reason}" if reason else "")


def _opened_at(provider: Provider) -> float | None:
    value = kv.client().get(opened_at_key(provider.provider_name))
    return float(value) if value is not None else None


def cooled_down(provider: Provider) -> bool:
    """True once the circuit has been open for the cooldown period (or its start is lost)."""
    try:
        opened = _opened_at(provider)
    except redis.RedisError:
        return True
    if opened is None:
        return True
    return time.time() - opened >= _setting("NP_CIRCUIT_COOLDOWN", 120)


def trial_due(provider: Provider) -> bool:
    """Whether an open circuit has cooled down enough for a half-open trial.

    Unlike :func:`cooled_down`, an unknown opening time (a row marked unhealthy by hand, or
    Redis lost) gives no trial: then only a passing health check brings the provider back.
    """
    if provider.is_healthy:
        return False
    try:
        opened = _opened_at(provider)
    except redis.RedisError:
        return False
    return opened is not None and time.time() - opened >= _setting("NP_CIRCUIT_COOLDOWN", 120)


def claim_trial(provider: Provider) -> bool:
    """Claim the single half-open trial of a cooled-down open circuit; True for one caller
    (across all workers) until the trial reports back or its claim times out."""
    if not trial_due(provider):
        return False
    timeout = max(1, int(_setting("NP_CIRCUIT_TRIAL_TIMEOUT", 60)))
    try:
        claimed = bool(
            kv.client().set(
                trial_key(provider.provider_name), str(time.time()), nx=True, ex=timeout
            )
        )
    except redis.RedisError:
        return False
    if claimed:
        logger.info("circuit half-open for provider %s: one trial request", provider.provider_name)
    return claimed


def state(provider: Provider) -> dict[str, object]:
    """The circuit as the admin or a test sees it: closed / open / half_open (a trial is
    out), when it opened, and the current counters."""
    name = provider.provider_name
    pipe = kv.client().pipeline()
    pipe.get(opened_at_key(name))
    pipe.exists(trial_key(name))
    opened, trial = pipe.execute()
    healthy = Provider.objects.filter(pk=provider.pk).values_list("is_healthy", flat=True).first()
    label = "closed" if healthy else ("half_open" if trial else "open")
    return {
        "state": label,
        "opened_at": float(opened) if opened is not None else None,
        **stats(provider),
    }
