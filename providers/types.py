"""Value types shared by adapters, routing and the delivery pipeline.

They are plain dataclasses (not models) so an adapter never touches the database:
the pipeline turns an ``OutboundMessage`` into a request and a ``SendResult`` or an
``Attempt`` back into columns of ``notification_deliveries``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.errors import ProviderError
    from providers.models import Provider


@dataclass
class OutboundMessage:
    """One delivery, rendered, addressed and ready to hand to a provider."""

    delivery_id: int
    channel: str
    recipient: str
    recipient_type: str
    subject: str | None
    text: str
    html: str | None
    data: dict[str, Any]
    idempotency_key: str
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # extra email headers (e.g. List-Unsubscribe); email adapters add them to the message
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SendResult:
    """What a provider answered when it accepted a message."""

    provider_message_id: str | None
    response: dict[str, Any]
    cost: Decimal | None = None
    status: str = "sent"


@dataclass
class Attempt:
    """One try of one provider inside ``send_with_failover``; stored by the pipeline in
    ``provider_response["attempts"]`` so a failed-over delivery keeps its whole story."""

    provider_name: str
    ok: bool
    error_code: str | None
    response: dict[str, Any] | None
    duration_ms: int
    error_message: str | None = None
    retryable: bool | None = None
    provider_message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: that deep-copies ``response`` for every attempt recorded,
        # and the batch sender records thousands a second; the dict is serialised right away
        return {f: getattr(self, f) for f in _ATTEMPT_FIELDS}


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


@dataclass
class SendOutcome:
    """The result of ``send_with_failover``: the accepting provider, or the last error."""

    result: SendResult | None
    provider: Provider | None
    attempts: list[Attempt]
    error: ProviderError | None
    # providers routing skipped for a missing feature: [{"provider", "missing"}] (routing.for_message)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class HealthResult:
    """The answer of ``BaseAdapter.check_health``."""

    ok: bool
    response_time_ms: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    checked: bool = True  # False when the adapter has nothing to probe (in_app, console)


class ReceiptStatus:
    """Normalised receipt outcomes. The delivery outcomes (``DELIVERY``) are values of
    ``notification_deliveries.status``; the engagement events (``ENGAGEMENT``: the recipient
    opened the email, followed a link, unsubscribed at the ESP) leave the delivery's status
    alone and move the notification instead (``deliveries.services.engagement``)."""

    DELIVERED = "delivered"
    BOUNCED = "bounced"
    FAILED = "failed"
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"

    DELIVERY = (DELIVERED, BOUNCED, FAILED, COMPLAINED)
    ENGAGEMENT = (OPENED, CLICKED, UNSUBSCRIBED)
    ALL = DELIVERY + ENGAGEMENT


@dataclass
class Receipt:
    """A provider's status callback, normalised (cf. anymail's AnymailTrackingEvent)."""

    provider_message_id: str
    status: str  # one of ReceiptStatus.ALL
    event: str  # the provider's own event name, e.g. "undelivered", "bounce"
    timestamp: datetime | None = None
    recipient: str | None = None
    error_code: str | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # the provider's id of this one event (Mailgun event id, SendGrid sg_event_id…): an
    # engagement event seen twice (a retry, a replay) is counted once
    event_id: str | None = None
    click_url: str | None = None  # the link a ``clicked`` event followed
