"""Workflows (issue 18): one module per job — ``spec`` (validate steps), ``definitions``
(save a workflow and its versions), ``trigger`` (start runs, cancel them), ``requests``
(API idempotency keys), ``engine`` (run a due step exactly once), ``steps``, ``digest``,
``escalate`` (the step handlers) and ``dispatch`` (due steps to the batch queue).

Other apps and the broadcast call ``workflow_trigger(key, recipients=[...], data=...)``."""

from .definitions import workflow_current_version, workflow_save
from .dispatch import RUN_STEPS_TASK, workflow_steps_dispatch_due
from .engine import step_execute
from .errors import WorkflowError
from .requests import workflow_trigger_idempotent
from .spec import steps_validate
from .trigger import TriggerResult, runs_cancel, send_at_for, workflow_cancel, workflow_trigger

__all__ = [
    "RUN_STEPS_TASK",
    "TriggerResult",
    "WorkflowError",
    "runs_cancel",
    "send_at_for",
    "step_execute",
    "steps_validate",
    "workflow_cancel",
    "workflow_current_version",
    "workflow_save",
    "workflow_steps_dispatch_due",
    "workflow_trigger",
    "workflow_trigger_idempotent",
]
