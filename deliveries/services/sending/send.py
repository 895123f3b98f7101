"""Send: build the provider message, route, and call the providers (no transaction open)."""

from __future__ import annotations

import asyncio
import logging
import queue
from typing import Any

from notifyplatform.logs import delivery_fields, log_fields
from providers import errors as perrors
from providers.errors import ProviderError
from providers.models import Provider
from providers.routing import candidates, for_message
from providers.services import SuccessTally, send_with_failover, send_with_failover_async
from providers.types import OutboundMessage, SendOutcome

from ...models import NotificationDelivery
from ...preference_links import with_preference_footer
from ...unsubscribe import unsubscribe_headers
from .compose import compose
from .policy import SEND_CRASHED

# (channel, region, preferred providers, blocked providers): deliveries routed alike
_RouteKey = tuple[str, str | None, tuple[str, ...], tuple[str, ...]]

logger = logging.getLogger(__package__)  # one logger for the whole send path (JSON logs)


def build_message(delivery: NotificationDelivery) -> OutboundMessage:
    meta = delivery.delivery_metadata or {}
    rendered = meta.get("message") or {}
    notification = delivery.notification if delivery.notification_id else None
    data: dict[str, Any] = {
        "event_type": meta.get("event_type"),
        "category": meta.get("category"),
        "priority": meta.get("priority"),
        "notification_id": str(delivery.notification_id) if delivery.notification_id else None,
        "invitation_id": delivery.invitation_id,
        "action_url": meta.get("action_url"),
        "context": (notification.template_data if notification else None) or {},
    }
    # the channel's form of the rich content; own URLs become signed links on our host that
    # record the click, naming this delivery (unless tracking is off)
    body = compose(delivery.delivery_type, meta, delivery.notification_id, delivery.pk)
    if body.tracked_action_url:
        data["tracked_action_url"] = body.tracked_action_url
    if body.rich:
        data["rich_content"] = body.rich
    if meta.get("data"):
        data["metadata"] = meta["data"]
    if meta.get("subscription"):
        data["subscription"] = meta["subscription"]
    # every email to a user ends with the signed link to their preference page
    text, html = with_preference_footer(
        body.text or "",
        body.html,
        user_id=notification.user_id if notification else None,
        channel=delivery.delivery_type,
    )
    return OutboundMessage(
        delivery_id=delivery.pk,
        channel=delivery.delivery_type,
        recipient=delivery.recipient,
        recipient_type=delivery.recipient_type,
        subject=rendered.get("subject"),
        text=text,
        html=html,
        data=data,
        idempotency_key=f"delivery-{delivery.pk}",
        user_id=str(notification.user_id) if notification else None,
        metadata={
            "event_type": meta.get("event_type"),
            "priority": meta.get("priority"),
            "locale": meta.get("locale"),
        },
        headers=unsubscribe_headers(
            user_id=notification.user_id if notification else None,
            type_name=meta.get("event_type"),
            channel=delivery.delivery_type,
            category=meta.get("category"),
            address=delivery.recipient,
        ),
    )


def _send(delivery: NotificationDelivery, routed: list[Provider] | None = None) -> SendOutcome:
    """Route (unless ``routed`` gives the candidates already) and send; returns a
    providers.types.SendOutcome (never raises)."""
    meta = delivery.delivery_metadata or {}
    try:
        providers = routed
        if providers is None:
            providers = candidates(
                channel=delivery.delivery_type,
                region=delivery.geographic_region,
                preferred=meta.get("preferred_providers") or (),
                blocked=meta.get("blocked_providers") or (),
            )
        if not providers:
            error = ProviderError(
                f"no enabled, healthy provider for channel '{delivery.delivery_type}'",
                error_code=perrors.NO_PROVIDER,
                retryable=True,
            )
            return SendOutcome(result=None, provider=None, attempts=[], error=error)
        message = build_message(delivery)
        capable, skipped = for_message(message, providers)
        if not capable:
            return _no_capable_provider(message, skipped)
        outcome = send_with_failover(message, capable)
        outcome.skipped = skipped
        return outcome
    except Exception as exc:  # noqa: BLE001 - a bug or outage must not strand the row in sending
        logger.exception("sending delivery %s crashed", delivery.pk)
        error = ProviderError(
            f"send crashed: {type(exc).__name__}: {exc}", error_code=SEND_CRASHED, retryable=True
        )
        return SendOutcome(result=None, provider=None, attempts=[], error=error)


def _route_groups(
    deliveries: list[NotificationDelivery],
) -> dict[_RouteKey, list[Provider] | Exception]:
    """Candidates per (channel, region, preferred, blocked): one routing per group and batch
    instead of one per delivery."""
    routes: dict[_RouteKey, list[Provider] | Exception] = {}
    for delivery in deliveries:
        key = _route_key(delivery)
        if key in routes:
            continue
        try:
            routes[key] = candidates(
                channel=key[0], region=key[1], preferred=key[2], blocked=key[3]
            )
        except Exception as exc:  # noqa: BLE001 - becomes each delivery's crash outcome
            routes[key] = exc
    return routes


def _route_key(delivery: NotificationDelivery) -> _RouteKey:
    meta = delivery.delivery_metadata or {}
    return (
        delivery.delivery_type,
        delivery.geographic_region,
        tuple(meta.get("preferred_providers") or ()),
        tuple(meta.get("blocked_providers") or ()),
    )


def _no_capable_provider(message: OutboundMessage, skipped: list[dict[str, Any]]) -> SendOutcome:
    """Every routed provider lacks a feature the message needs: permanent (a retry would
    meet the same providers), and the trace names each one and what it lacks."""
    lacks = "; ".join(f"{s['provider']}: {', '.join(s['missing'])}" for s in skipped)
    error = ProviderError(
        f"no provider for channel '{message.channel}' supports this message ({lacks})",
        error_code=perrors.FEATURE_UNSUPPORTED,
        retryable=False,
    )
    return SendOutcome(result=None, provider=None, attempts=[], error=error, skipped=skipped)


def _crashed(exc: BaseException) -> SendOutcome:
    error = ProviderError(
        f"send crashed: {type(exc).__name__}: {exc}", error_code=SEND_CRASHED, retryable=True
    )
    return SendOutcome(result=None, provider=None, attempts=[], error=error)


async def _send_one(
    message: OutboundMessage, route: list[Provider] | Exception, tally: SuccessTally
) -> SendOutcome:
    """``_send`` on the sender loop: never raises, an outcome for every delivery."""
    if isinstance(route, Exception):
        return _crashed(route)
    if not route:
        error = ProviderError(
            f"no enabled, healthy provider for channel '{message.channel}'",
            error_code=perrors.NO_PROVIDER,
            retryable=True,
        )
        return SendOutcome(result=None, provider=None, attempts=[], error=error)
    try:
        capable, skipped = for_message(message, list(route))
        if not capable:
            return _no_capable_provider(message, skipped)
        outcome = await send_with_failover_async(message, capable, tally)
        outcome.skipped = skipped
        return outcome
    except Exception as exc:  # noqa: BLE001 - a bug or outage must not strand the row in sending
        logger.exception("sending delivery %s crashed", message.delivery_id)
        return _crashed(exc)


async def _send_all(
    jobs: list[tuple[NotificationDelivery, Any, list[Any] | Exception]],
    results: queue.SimpleQueue[tuple[NotificationDelivery, SendOutcome]],
    tally: SuccessTally,
) -> None:
    """Send every job concurrently; each outcome goes to ``results`` as soon as it is known
    (the calling thread records them while the others are still in flight)."""

    async def one(delivery: NotificationDelivery, message: Any, route: Any) -> None:
        try:
            # each gather() task runs in its own copy of the context: these ids are its own
            with log_fields(**delivery_fields(delivery)):
                outcome = await _send_one(message, route, tally)
        except BaseException as exc:  # noqa: BLE001 - cancelled: still report the row
            outcome = _crashed(exc)
            results.put((delivery, outcome))
            raise
        results.put((delivery, outcome))

    await asyncio.gather(*(one(*job) for job in jobs))
