"""Celery tasks of batch jobs: thin wrappers (ids in) around ``campaigns.services``.
Imported by ``deliveries.tasks`` so the worker registers them."""

from __future__ import annotations

from celery import shared_task

from . import services
from .queue import RESUME_STALLED_TASK, RUN_CHUNK_TASK, START_BROADCASTS_TASK
from .services import workflows
from .services.workflows import RUN_STEPS_TASK


@shared_task(name=RUN_CHUNK_TASK, ignore_result=True)
def run_batch_chunk(chunk_id: int) -> str:
    return services.batch_chunk_run(chunk_id)


@shared_task(name=RESUME_STALLED_TASK, ignore_result=True)
def resume_stalled_batches() -> int:
    return services.batches_resume_stalled()


@shared_task(name=START_BROADCASTS_TASK, ignore_result=True)
def start_due_broadcasts() -> int:
    return services.broadcasts_start_due()
@shared_task(name=RUN_STEPS_TASK, ignore_result=True)
def run_workflow_steps(step_ids: list[int]) -> int:
    """A chunk of due workflow steps (``workflows.step_execute`` each); how many ran."""
    return sum(1 for step_id in step_ids if workflows.step_execute(step_id) == "ran")


@shared_task(name="campaigns.dispatch_workflow_steps", ignore_result=True)
def dispatch_workflow_steps() -> dict[str, int]:
    """Beat's workflow dispatcher: due steps to the batch queue."""
    return workflows.workflow_steps_dispatch_due()
