"""``notify(user, ..., workflow=key)``: hand the trigger to the registered workflow engine
(``deliveries.workflows``) instead of composing a message. The workflow's steps choose
templates and channels, so those inputs are refused here; ``context`` becomes the trigger
data (with ``auction_id``/``bid_id``/``item_id`` and ``action_url`` from the links), and
``idempotency_key`` passes through (one run per key and user, ever)."""

from __future__ import annotations

from typing import Any

from ... import errors, workflows
from ...errors import NotifyError
from ...types import NotifyResult, Recipient

# notify() inputs a workflow's own steps decide
_STEP_FIELDS = ("template_key", "title", "message", "channels", "rich_content", "webhook_url")


def notify_workflow(
    recipient: Any,
    workflow: str,
    *,
    idempotency_key: str | None,
    relations: dict[str, Any],
    fields: dict[str, Any],
) -> NotifyResult:
    if not isinstance(workflow, str) or not workflow:
        raise NotifyError(errors.VALIDATION_ERROR, "a workflow key is required", "workflow")
    if isinstance(recipient, Recipient) or getattr(recipient, "pk", None) is None:
        raise NotifyError(
            errors.INVALID_RECIPIENT, "a workflow is triggered for a saved user", "user_id"
        )
    for name in _STEP_FIELDS:
        if fields.get(name) is not None:
            raise NotifyError(
                errors.VALIDATION_ERROR,
                "not with workflow: the workflow's steps choose it",
                name,
            )
    context = fields.get("context") or {}
    if not isinstance(context, dict):
        raise NotifyError(errors.VALIDATION_ERROR, "must be an object", "context")
    data = dict(context)
    for name, obj in relations.items():
        if obj is not None:
            data.setdefault(f"{name}_id", str(getattr(obj, "pk", obj)))
    for name in ("action_url", "action_label"):
        if fields.get(name):
            data.setdefault(name, fields[name])
    triggered = workflows.trigger(
        workflow,
        recipients=[recipient],
        data=data,
        send_at=fields.get("scheduled_at"),
        idempotency_key=idempotency_key,
    )
    return NotifyResult(None, [], created=triggered.created, workflow=triggered)
