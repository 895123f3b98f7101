"""The base of every app's domain errors.

A domain error carries a stable UPPER_SNAKE ``code``, a message a person can read, the
input ``field`` at fault (if any) and the HTTP ``status`` the API answers with. Services
raise them; the API's exception handler (``notifyplatform.api_errors``) turns any of them
into the one error shape, so views need no per-app translation.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    def __init__(
        self, code: str, message: str, field: str | None = None, *, status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status

    @property
    def fields(self) -> dict[str, list[str]]:
        return {self.field: [self.message]} if self.field else {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "fields": self.fields}

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only status survives pickling (Celery pickles task exceptions)
        return (_rebuild, (type(self), self.code, self.message, self.field, self.status))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, field={self.field!r})"


def _rebuild(cls: type[DomainError], code: str, message: str, field: str | None, status: int):
    error = cls.__new__(cls)
    DomainError.__init__(error, code, message, field, status=status)
    return error
