"""Celery tasks of batch jobs: thin wrappers (ids in) around ``campaigns.services``.
Imported by ``deliveries.tasks`` so the worker registers them."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="deliveries.run_batch_chunk", ignore_result=True)
def run_batch_chunk(chunk_id: int) -> str:
    return services.batch_chunk_run(chunk_id)


@shared_task(name="deliveries.resume_stalled_batches", ignore_result=True)
def resume_stalled_batches() -> int:
    return services.batches_resume_stalled()
