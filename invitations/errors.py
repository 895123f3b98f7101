"""Domain errors of the invitations app (code, message, field, HTTP status)."""

from __future__ import annotations


class InvitationError(Exception):
    def __init__(
        self, code: str, message: str, *, field: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status

    def __repr__(self) -> str:
        return f"InvitationError({self.code!r}, {self.message!r}, field={self.field!r})"


INVITATION_NOT_FOUND = "INVITATION_NOT_FOUND"  # 404: unknown or tampered token
INVITATION_EXPIRED = "INVITATION_EXPIRED"  # 410
INVITATION_ALREADY_ANSWERED = "INVITATION_ALREADY_ANSWERED"  # 409: accepted or declined
INVITATION_CANCELLED = "INVITATION_CANCELLED"  # 409
ROLE_TAKEN = "ROLE_TAKEN"  # 409: the roleplay role went to someone else
INVITEE_REQUIRED = "INVITEE_REQUIRED"
INVALID_INVITATION_TYPE = "INVALID_INVITATION_TYPE"
CONTENT_REQUIRED = "CONTENT_REQUIRED"
CONTENT_MISMATCH = "CONTENT_MISMATCH"
CHANNEL_UNAVAILABLE = "CHANNEL_UNAVAILABLE"
INVALID_EXPIRY = "INVALID_EXPIRY"
SELF_INVITATION = "SELF_INVITATION"
DUPLICATE_ARTICLE = "DUPLICATE_ARTICLE"
