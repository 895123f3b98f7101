"""``notify(..., workflow=key)`` without importing the engine that runs workflows.

Workflows live in ``campaigns``, a layer above the pipeline: ``deliveries`` may not import
it. Like providers' traffic source (``providers/traffic.py``), the engine registers its
trigger here at start-up (``CampaignsConfig.ready`` calls ``register``); ``notify()`` with
``workflow=`` and the sources below campaigns (auctions, invitations) call ``trigger``.
Without a registered engine ``trigger`` raises ``ImproperlyConfigured``, never sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class WorkflowTriggered:
    """What a workflow trigger started: one run per recipient (``run_ids``, in recipient
    order); ``created`` is False when every run already existed (an idempotent repeat)."""

    workflow: str
    run_ids: list[int] = field(default_factory=list)
    created: bool = True


class WorkflowEngine(Protocol):
    """The registered trigger. Raises ``NotifyError`` for bad input (an unknown or inactive
    workflow, bad recipients), nothing written."""

    def __call__(
        self,
        key: str,
        *,
        recipients: list[Any],
        data: dict[str, Any],
        send_at: datetime | str | None = None,
        cancellation_key: str | None = None,
        idempotency_key: str | None = None,
    ) -> WorkflowTriggered: ...


_engine: WorkflowEngine | None = None


def register(engine: WorkflowEngine | None) -> None:
    """Install the workflow engine (``None`` removes it)."""
    global _engine
    _engine = engine


def registered() -> bool:
    return _engine is not None


def trigger(
    key: str,
    *,
    recipients: list[Any],
    data: dict[str, Any] | None = None,
    send_at: datetime | str | None = None,
    cancellation_key: str | None = None,
    idempotency_key: str | None = None,
) -> WorkflowTriggered:
    """Start workflow ``key`` for each recipient through the registered engine."""
    if _engine is None:
        raise ImproperlyConfigured(
            "no workflow engine registered: notify(workflow=...) needs 'campaigns' in "
            "INSTALLED_APPS (its AppConfig.ready registers the engine)"
        )
    return _engine(
        key,
        recipients=recipients,
        data=dict(data or {}),
        send_at=send_at,
        cancellation_key=cancellation_key,
        idempotency_key=idempotency_key,
    )
