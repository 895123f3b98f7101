"""Thin Celery tasks of the providers app."""

from __future__ import annotations

from celery import shared_task

from providers.health import check_all


@shared_task(name="providers.tasks.check_provider_health", ignore_result=True)
def check_provider_health() -> int:
    """Beat: probe every enabled provider, record metrics, open/close circuits."""
    return len(check_all())
