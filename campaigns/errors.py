"""Batch job errors: one ``BatchError(code, message, field)`` for the command, the admin form
and the API alike (the command prints ``error: <field>: <message> [CODE]`` and exits 2)."""

from __future__ import annotations

from notifyplatform.errors import DomainError

UNKNOWN_JOB_TYPE = "UNKNOWN_JOB_TYPE"
INVALID_INVITATION_TYPE = "INVALID_INVITATION_TYPE"
CONTENT_REQUIRED = "CONTENT_REQUIRED"
CONTENT_NOT_FOUND = "CONTENT_NOT_FOUND"
INVALID_AUDIENCE = "INVALID_AUDIENCE"
EMPTY_AUDIENCE = "EMPTY_AUDIENCE"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
INVITER_NOT_FOUND = "INVITER_NOT_FOUND"
JOB_NOT_FOUND = "JOB_NOT_FOUND"
INVALID_STATE = "INVALID_STATE"
TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"  # no template for the invitation type on a channel
TOPIC_NOT_FOUND = "TOPIC_NOT_FOUND"
BROADCAST_NOT_FOUND = "BROADCAST_NOT_FOUND"
WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"  # a broadcast names an unknown workflow
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
# recorded in a job's error_summary
CHUNK_FAILED = "CHUNK_FAILED"
NOT_SENT = "NOT_SENT"


class BatchError(DomainError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        # a job in the wrong state for the action is a conflict; everything else is input
        status = {INVALID_STATE: 409, IDEMPOTENCY_KEY_REUSED: 422}.get(code, 400)
        if code in (TOPIC_NOT_FOUND, BROADCAST_NOT_FOUND):
            status = 404
        super().__init__(code, message, field, status=status)

    def one_line(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.message} [{self.code}]"
