"""What providers know of their own traffic, without importing the pipeline that sends it.

The figures (success rates for the health check, spend for the spend cap, the admin list's
per-provider counts and spend) are read from ``notification_deliveries``, a table the
``deliveries`` app owns. ``deliveries`` computes them with its selectors and hands them to
providers at start-up (``DeliveriesConfig.ready`` calls ``register``), so ``providers``
never imports ``deliveries``: the dependency points down, from the pipeline to providers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# delivery statuses that count as a provider's success / failure (health, admin)
SUCCESS = ("sent", "delivered")
FAILURE = ("failed", "bounced")


@dataclass(frozen=True)
class TrafficSource:
    # provider name → {"1h"|"24h"|"7d": percent of finished deliveries that succeeded}
    success_rates: Callable[[str], dict[str, Decimal | None]]
    # provider name, window start, window end → sum of the costs of its sends in it
    spent_between: Callable[[str, datetime, datetime], Decimal]
    # since, spend-window start → annotations for a Provider queryset (one query):
    # ok_24h, bad_24h, cost_24h, spent_window
    provider_annotations: Callable[[datetime, datetime], dict[str, Any]]
    # provider name, since → [{"day", "sent", "spend"}], newest day first
    spend_by_day: Callable[[str, datetime], list[dict[str, Any]]]


_source: TrafficSource | None = None


def register(source: TrafficSource) -> None:
    global _source
    _source = source


def source() -> TrafficSource:
    if _source is None:
        raise ImproperlyConfigured(
            "no provider traffic source registered (is 'deliveries' in INSTALLED_APPS?)"
        )
    return _source
