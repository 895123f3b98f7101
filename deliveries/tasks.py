"""Celery tasks: thin wrappers that call services (ids in, no logic here)."""

from __future__ import annotations

from celery import shared_task

from .retention import retention_apply
from .services.sending import (
    deliveries_dispatch_due,
    deliveries_send,
    deliveries_sweep,
    delivery_send,
)


@shared_task(name="deliveries.send_delivery", ignore_result=True)
def send_delivery(delivery_id: int) -> str:
    return delivery_send(delivery_id).outcome


@shared_task(name="deliveries.send_deliveries", ignore_result=True)
def send_deliveries(delivery_ids: list[int]) -> int:
    """A chunk of deliveries in one message (the fan-out and sweeper path): claimed in
    batches, sent concurrently, recorded in bulk (``deliveries_send``)."""
    return sum(1 for summary in deliveries_send(delivery_ids) if summary.outcome == "sent")


@shared_task(name="deliveries.dispatch_due", ignore_result=True)
def dispatch_due() -> dict[str, int]:
    """Beat's dispatcher: due pending rows to the send queue (``deliveries_dispatch_due``)."""
    return deliveries_dispatch_due()


@shared_task(name="deliveries.apply_retention", ignore_result=True)
def apply_retention() -> dict[str, int]:
    """Beat's retention pass: old finished rows deleted in batches (``deliveries.retention``)."""
    return {run.table_name: run.deleted for run in retention_apply()}


@shared_task(name="deliveries.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> dict[str, int]:
    return deliveries_sweep()
