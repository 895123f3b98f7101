"""Celery tasks: thin wrappers that call services (ids in, no logic here)."""

from __future__ import annotations

from celery import shared_task

from .services.sending import deliveries_sweep, delivery_send


@shared_task(name="deliveries.send_delivery", ignore_result=True)
def send_delivery(delivery_id: int) -> str:
    return delivery_send(delivery_id).outcome


@shared_task(name="deliveries.send_deliveries", ignore_result=True)
def send_deliveries(delivery_ids: list[int]) -> int:
    """A chunk of deliveries in one message (the fan-out and sweeper path: one broker round
    trip per chunk instead of per delivery)."""
    sent = 0
    for delivery_id in delivery_ids:
        if delivery_send(delivery_id).outcome == "sent":
            sent += 1
    return sent


@shared_task(name="deliveries.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> dict[str, int]:
    return deliveries_sweep()
