"""Saving workflows: create one, or add a version when its steps change (running instances
keep the version they started with)."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from ...models import Workflow, WorkflowVersion
from .errors import INVALID_WORKFLOW, WORKFLOW_NOT_FOUND, WorkflowError
from .spec import steps_validate

_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
RESERVED_KEYS = frozenset({"cancel"})  # /workflows/cancel/ is an action


def workflow_current_version(workflow: Workflow) -> WorkflowVersion | None:
    return workflow.versions.order_by("-version").first()


@transaction.atomic
def workflow_save(
    *,
    key: str,
    name: str | None = None,
    steps: Any = None,
    description: str | None = None,
    is_active: bool | None = None,
    by: Any = None,
    create: bool | None = None,
) -> Workflow:
    """Create the workflow ``key`` (``steps`` required) or change it: new steps add a
    version only when they differ from the current one. ``create=True`` refuses an existing
    key, ``create=False`` an unknown one."""
    if not isinstance(key, str) or not _KEY_RE.match(key) or key in RESERVED_KEYS:
        raise WorkflowError(
            INVALID_WORKFLOW, "1-100 lowercase letters, digits, '_' or '-' (not 'cancel')", "key"
        )
    workflow = Workflow.objects.select_for_update().filter(key=key).first()
    if workflow is None:
        if create is False:
            raise WorkflowError(WORKFLOW_NOT_FOUND, f"no workflow {key!r}", "key")
        if steps is None:
            raise WorkflowError(INVALID_WORKFLOW, "required for a new workflow", "steps")
        steps = steps_validate(steps)
        workflow = Workflow.objects.create(
            key=key,
            name=name or key,
            description=description or "",
            is_active=True if is_active is None else is_active,
        )
        WorkflowVersion.objects.create(workflow=workflow, version=1, steps=steps, created_by=by)
        return workflow
    if create is True:
        raise WorkflowError(INVALID_WORKFLOW, f"a workflow {key!r} already exists", "key")
    changed = []
    for field, value in (("name", name), ("description", description), ("is_active", is_active)):
        if value is not None and getattr(workflow, field) != value:
            setattr(workflow, field, value)
            changed.append(field)
    if changed:
        workflow.save(update_fields=[*changed, "updated_at"])
    if steps is not None:
        steps = steps_validate(steps)
        current = workflow_current_version(workflow)
        if current is None or current.steps != steps:
            WorkflowVersion.objects.create(
                workflow=workflow,
                version=(current.version + 1) if current else 1,
                steps=steps,
                created_by=by,
            )
    return workflow
