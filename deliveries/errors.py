"""Errors the pipeline raises for bad input. Codes are UPPER_SNAKE and stable (API clients
and delivery records store them)."""

from __future__ import annotations

from notifyplatform.errors import DomainError

TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"
TEMPLATE_VARIABLE_MISSING = "TEMPLATE_VARIABLE_MISSING"
TEMPLATE_VARIABLE_INVALID = "TEMPLATE_VARIABLE_INVALID"
UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
INVALID_RECIPIENT = "INVALID_RECIPIENT"
INVALID_URL = "INVALID_URL"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
VALIDATION_ERROR = "VALIDATION_ERROR"
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"  # 422: the key names another request


class NotifyError(DomainError):
    """Bad input to ``notify()``: nothing was written.

    ``field`` names the offending input (``template_key``, ``context.amount``, ``channels``,
    ``email``, ``phone``, ``webhook_url`` ...), so the API can answer 400 naming it.
    """

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" ({self.field})" if self.field else "")
