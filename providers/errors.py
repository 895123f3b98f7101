"""Provider errors with a standard code and a retry decision.

The pipeline never inspects provider-specific payloads: it reads ``error_code`` (one
of the constants below), ``retryable`` (fail over / retry later, or fail at once) and
``retry_after`` (seconds the provider asked us to wait, e.g. from ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

INVALID_RECIPIENT = "INVALID_RECIPIENT"
RATE_LIMITED = "RATE_LIMITED"
AUTH_FAILED = "AUTH_FAILED"
PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
TIMEOUT = "TIMEOUT"
REJECTED = "REJECTED"
UNCONFIGURED = "UNCONFIGURED"
NO_PROVIDER = "NO_PROVIDER"
UNKNOWN = "UNKNOWN"
# the provider's daily spend cap is reached (providers.spendcap): the delivery is deferred
SPEND_CAP = "SPEND_CAP"
# every routed provider lacks a feature the message needs (providers.features): permanent
FEATURE_UNSUPPORTED = "FEATURE_UNSUPPORTED"

ERROR_CODES: frozenset[str] = frozenset(
    {
        INVALID_RECIPIENT,
        RATE_LIMITED,
        AUTH_FAILED,
        PROVIDER_UNAVAILABLE,
        TIMEOUT,
        REJECTED,
        UNCONFIGURED,
        NO_PROVIDER,
        UNKNOWN,
        SPEND_CAP,
        FEATURE_UNSUPPORTED,
    }
)

# Codes that say something about the provider's health (the circuit breaker counts
# them); the others are about the message or the recipient, or are our own limits.
HEALTH_ERROR_CODES: frozenset[str] = frozenset(
    {PROVIDER_UNAVAILABLE, TIMEOUT, AUTH_FAILED, UNKNOWN}
)


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        error_code: str,
        retryable: bool,
        retry_after: float | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.response = response

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.message!r}, error_code={self.error_code!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_code": self.error_code,
            "message": self.message,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
        }


def permanent(message: str, code: str, response: dict[str, Any] | None = None) -> ProviderError:
    return ProviderError(message, error_code=code, retryable=False, response=response)


def transient(
    message: str,
    code: str = PROVIDER_UNAVAILABLE,
    *,
    retry_after: float | None = None,
    response: dict[str, Any] | None = None,
) -> ProviderError:
    return ProviderError(
        message, error_code=code, retryable=True, retry_after=retry_after, response=response
    )
