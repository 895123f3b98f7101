"""Which providers may carry a message, best first.

Order: user-preferred providers first (in the user's order), then ``priority``
(lower first), then ``cost_per_message`` (cheaper first; unknown cost last), then
name so the order is stable. Never: disabled, unhealthy (circuit open), outside
their region, blocked by the user, missing credentials, a configuration
``providers.policy`` refuses, or out of rate-limit tokens. Per message (``for_message``): never a provider whose
``supported_features`` say ``false`` to a feature the message needs (``providers.features``).
A provider past its daily spend cap stays a candidate: sending refuses it (``SPEND_CAP``)
and fails over, and a delivery no provider took for that reason is deferred.
An open circuit past its cooldown is offered to exactly one caller as the half-open
trial (``circuit.claim_trial``); see ``providers.circuit``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from providers import circuit, features, ratelimit, spendcap
from providers.models import Provider
from providers.registry import UnknownAdapterError, get_adapter
from providers.types import OutboundMessage

logger = logging.getLogger(__name__)


def usable(provider: Provider, *, region: str | None = None) -> bool:
    """Whether routing may use this provider now (and the log line saying why not)."""
    if not provider.covers(region):
        return False
    try:
        adapter = get_adapter(provider)
    except UnknownAdapterError as exc:
        logger.error("provider %s skipped: %s", provider.provider_name, exc)
        return False
    refused = adapter.configuration_refused()
    if refused:
        logger.warning(
            "provider %s skipped: configuration refused: %s",
            provider.provider_name,
            "; ".join(refused),
        )
        return False
    missing = adapter.missing_credentials()
    if missing:
        logger.warning(
            "provider %s unconfigured: missing env %s", provider.provider_name, ", ".join(missing)
        )
        return False
    exhausted = ratelimit.available(provider)
    if exhausted is not None:
        logger.info(
            "provider %s skipped: rate limit per %s (%s) reached, resets in %.0fs",
            provider.provider_name,
            exhausted.period,
            exhausted.limit,
            exhausted.reset_in,
        )
        return False
    # a capped provider stays a candidate (the send step refuses it with SPEND_CAP, so a
    # delivery that only capped providers could carry is deferred, not failed); its spend
    # counter is made sure of here, off the sender's event loop
    spendcap.prime(provider)
    return True


def candidates(
    *,
    channel: str,
    region: str | None = None,
    preferred: Iterable[str] = (),
    blocked: Iterable[str] = (),
) -> list[Provider]:
    preferred_list = [name for name in preferred if name]
    blocked_set = {name for name in blocked if name}
    rows = Provider.objects.filter(provider_type=channel, is_enabled=True)
    if blocked_set:
        rows = rows.exclude(provider_name__in=blocked_set)
    found: list[Provider] = []
    for provider in rows:
        if not provider.is_healthy and not circuit.trial_due(provider):
            continue  # circuit open, still cooling down
        if not usable(provider, region=region):
            continue
        # claimed last, so a trial is only taken by a caller that can actually use it
        if not provider.is_healthy and not circuit.claim_trial(provider):
            continue
        found.append(provider)
    found.sort(key=lambda p: sort_key(p, preferred_list))
    return found


def sort_key(provider: Provider, preferred: list[str]) -> tuple[object, ...]:
    name = provider.provider_name
    rank = preferred.index(name) if name in preferred else len(preferred)
    cost = provider.cost_per_message
    return (rank, provider.priority, cost is None, cost or Decimal(0), name)


def for_message(
    message: OutboundMessage, providers: list[Provider]
) -> tuple[list[Provider], list[dict[str, Any]]]:
    """The routed ``providers`` that can carry ``message`` (order kept), and one
    ``{"provider", "missing"}`` entry per provider skipped for a missing feature
    (``providers.features``), for the delivery's decision trace."""
    needs = features.needed(message)
    if not needs:
        return providers, []
    kept: list[Provider] = []
    skipped: list[dict[str, Any]] = []
    for provider in providers:
        missing = features.lacking(provider.supported_features, needs)
        if missing:
            logger.info(
                "provider %s skipped: lacks feature %s", provider.provider_name, ", ".join(missing)
            )
            skipped.append({"provider": provider.provider_name, "missing": missing})
        else:
            kept.append(provider)
    return kept, skipped
