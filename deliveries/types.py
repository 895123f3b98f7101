"""Value types of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Notification, NotificationDelivery
    from .workflows import WorkflowTriggered


@dataclass(frozen=True)
class Recipient:
    """An address-only recipient (e.g. an invitee without an account): no ``notifications``
    row is written, deliveries stand alone (with ``invitation_id`` when given)."""

    email: str | None = None
    phone: str | None = None
    locale: str = "en"
    timezone: str = "UTC"
    region: str | None = None


@dataclass
class NotifyResult:
    notification: Notification | None
    deliveries: list[NotificationDelivery]
    created: bool
    # notify(..., workflow=key): what the workflow trigger started (no notification yet:
    # the workflow's steps send later)
    workflow: WorkflowTriggered | None = None


@dataclass
class Decision:
    """What the preferences decided for one channel of one notification.

    ``action`` is ``send`` (at ``scheduled_at``), or ``skip``. ``rules`` records every rule
    that changed the outcome (opt-out, quiet hours, cap), stored in
    ``delivery_metadata.decision`` so "why was this not sent (now)?" has an answer.
    """

    action: str = "send"
    scheduled_at: datetime | None = None
    rule: dict[str, Any] | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)
    preferred_providers: list[str] = field(default_factory=list)
    blocked_providers: list[str] = field(default_factory=list)
    preference_id: int | None = None

    def record(self, rule: dict[str, Any]) -> None:
        self.rules.append(rule)
        self.rule = rule


@dataclass
class SendOutcomeSummary:
    """What ``delivery_send`` did with one delivery (for logs and tests)."""

    delivery_id: int
    outcome: str  # sent | retry | deferred | failed | expired | suppressed | skipped_locked | not_pending | not_due
    detail: str = ""
