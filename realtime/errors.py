"""Errors of the real-time app: an UPPER_SNAKE ``code``, a message and the field at fault."""

from __future__ import annotations


class RealtimeError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}
