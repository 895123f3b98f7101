"""Due in-app deliveries written as sent: a due in-app delivery is a write to our own
database, so the writer of its notification stores it as sent in its own transaction and
its event is published after commit — no enqueue, claim, record and notification refresh
per row (three more row versions of each delivery and notification, and a worker's round
trip before the user sees it). ``notify()`` and ``notify_many()`` (``bulk_inapp``) both.

The rows are exactly what the send pipeline would have recorded for it (status ``sent``,
the in-app provider's name, type and priority, ``provider_message_id`` = the delivery id,
the same ``provider_response`` with its one attempt, ``sent_at``), and its notification
carries what the record would have set (status from all its deliveries, one attempt,
``sent_at`` when the notification as a whole is sent, ``in_inbox``). Exactly once holds
because the row is never pending: no worker can claim it.

A row is written as sent only when nothing would have made the send path decide
otherwise: the channel is in-app, the row is plain (no preference rule, no preferred or
blocked providers: its metadata is the channel's plain one) and due now, it has not
expired, and the provider routing would pick for its region is a healthy local in-app
adapter with no rate limit, no spend cap and no feature it refuses. Anything else goes the
ordinary way. ``NP_INAPP_FAST_PATH=0`` turns this off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from notifyplatform.choices import Channel
from providers import features, routing, spendcap
from providers.adapters.in_app.local import InAppAdapter
from providers.models import Provider
from providers.registry import get_adapter
from providers.types import Attempt

from ...models import DeliveryStatus
from .rows import _DeliveryRow


def fast_path_enabled() -> bool:
    return bool(getattr(settings, "NP_INAPP_FAST_PATH", True))


def _plain_in_app(provider: Provider, region: str | None) -> bool:
    """Whether sending through ``provider`` is nothing but recording the row."""
    if not provider.is_healthy or not routing.usable(provider, region=region):
        return False
    if not isinstance(get_adapter(provider), InAppAdapter):
        return False
    if any(
        getattr(provider, f"rate_limit_per_{period}") is not None
        for period in ("minute", "hour", "day")
    ):
        return False
    if spendcap.applies(provider):
        return False
    return not features.lacking(provider.supported_features, list(features.FEATURES))


class InAppSentNow:
    """Per ``notify()`` or ``notify_many()`` call: which regions' due in-app rows are
    written as sent, and with which values."""

    def __init__(self, channels: list[str], expires_at: datetime | None):
        self.enabled = fast_path_enabled() and Channel.IN_APP in channels
        self.expires_at = expires_at
        self._providers: dict[str | None, Provider | None] = {}

    def provider(self, region: str | None) -> Provider | None:
        """The provider routing would pick for an in-app row in ``region``, if plain."""
        if region not in self._providers:
            enabled = Provider.objects.filter(provider_type=Channel.IN_APP, is_enabled=True)
            covering = sorted(
                (p for p in enabled if p.covers(region)),
                key=lambda p: routing.sort_key(p, []),
            )
            first = covering[0] if covering else None
            self._providers[region] = (
                first if first is not None and _plain_in_app(first, region) else None
            )
        return self._providers[region]

    def apply(
        self, rows: list[_DeliveryRow], region: str | None, now: datetime
    ) -> list[_DeliveryRow]:
        """``rows`` with the due, plain in-app ones marked sent (planning, before COPY)."""
        if not self.enabled or (self.expires_at is not None and self.expires_at <= now):
            return rows
        out = rows
        for n, row in enumerate(rows):
            if (
                row.channel == Channel.IN_APP
                and row.status == DeliveryStatus.PENDING
                and row.meta is None
                and row.scheduled_at <= now
                and self.provider(region) is not None
            ):
                if out is rows:
                    out = list(rows)
                out[n] = row._replace(status=DeliveryStatus.SENT)
        return out

    # -- values ---------------------------------------------------------------------------
    @staticmethod
    def _response(provider: Provider, delivery_id: Any, user_id: Any) -> dict[str, Any]:
        response = {"stored": True, "user_id": str(user_id)}
        attempt = Attempt(
            provider_name=provider.provider_name,
            ok=True,
            error_code=None,
            response=response,
            duration_ms=0,
            provider_message_id=str(delivery_id),
        )
        return {"response": response, "attempts": [attempt.to_dict()]}

    def delivery_values(
        self, region: str | None, delivery_id: Any, user_id: Any, now: datetime
    ) -> dict[str, Any]:
        """The columns a sent in-app row has beyond the channel's shared ones."""
        provider = self.provider(region)
        assert provider is not None  # only rows apply() marked sent come here
        return {
            "status": DeliveryStatus.SENT,
            "provider_name": provider.provider_name,
            "provider_type": provider.provider_type,
            "provider_priority": provider.priority,
            "provider_message_id": str(delivery_id),
            "provider_response": self._response(provider, delivery_id, user_id),
            "cost_per_message": provider.cost_per_message,
            "sent_at": now,
            "updated_at": now,
        }

    def notification_values(
        self, region: str | None, delivery_id: Any, user_id: Any, sent: bool, now: datetime
    ) -> dict[str, Any]:
        """What the record would have set on the notification of a sent in-app row."""
        provider = self.provider(region)
        assert provider is not None
        return {
            "delivery_attempts": 1,
            "provider_response": self._response(provider, delivery_id, user_id),
            "sent_at": now if sent else None,
            "in_inbox": True,
            "updated_at": now,
        }
