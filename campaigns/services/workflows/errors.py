"""Workflow errors: one ``WorkflowError(code, message, field)``; the API answers with its
status (400 for input, 404 for an unknown workflow, 409 for a state conflict)."""

from __future__ import annotations

from notifyplatform.errors import DomainError

INVALID_WORKFLOW = "INVALID_WORKFLOW"  # the steps do not validate (field: steps[i].name)
INVALID_TRIGGER = "INVALID_TRIGGER"  # recipients, data, send_at, keys
WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"
WORKFLOW_INACTIVE = "WORKFLOW_INACTIVE"
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"

_STATUS = {WORKFLOW_NOT_FOUND: 404, WORKFLOW_INACTIVE: 409, IDEMPOTENCY_KEY_REUSED: 422}


class WorkflowError(DomainError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(code, message, field, status=_STATUS.get(code, 400))
