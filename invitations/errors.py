"""Domain errors of the invitations app (code, message, field, HTTP status)."""

from __future__ import annotations

from notifyplatform.errors import DomainError


class InvitationError(DomainError):
    pass


INVITATION_NOT_FOUND = "INVITATION_NOT_FOUND"  # 404: unknown or tampered token
INVITATION_EXPIRED = "INVITATION_EXPIRED"  # 410
INVITATION_ALREADY_ANSWERED = "INVITATION_ALREADY_ANSWERED"  # 409: accepted or declined
INVITATION_CANCELLED = "INVITATION_CANCELLED"  # 409
ROLE_TAKEN = "ROLE_TAKEN"  # 409: the roleplay role went to someone else
INVITEE_REQUIRED = "INVITEE_REQUIRED"
INVALID_INVITATION_TYPE = "INVALID_INVITATION_TYPE"
CONTENT_REQUIRED = "CONTENT_REQUIRED"
CONTENT_MISMATCH = "CONTENT_MISMATCH"
# 404: content that does not exist or that the inviter may not see (another user's private
# story or roleplay), alike, so the answer tells nothing about it
CONTENT_NOT_FOUND = "CONTENT_NOT_FOUND"
CONTENT_FORBIDDEN = "CONTENT_FORBIDDEN"  # 403: visible, but not the inviter's to offer (roles)
# 403: an invitee action on an invitation whose inviter may not (or no longer) invite to
# its content
INVITATION_NOT_PERMITTED = "INVITATION_NOT_PERMITTED"
CHANNEL_UNAVAILABLE = "CHANNEL_UNAVAILABLE"
INVALID_EXPIRY = "INVALID_EXPIRY"
SELF_INVITATION = "SELF_INVITATION"
DUPLICATE_ARTICLE = "DUPLICATE_ARTICLE"
# 429 (invitations.limits): too many new external recipients for this inviter / too many
# invitations to this address or number today
INVITATION_LIMIT_REACHED = "INVITATION_LIMIT_REACHED"
DESTINATION_LIMIT_REACHED = "DESTINATION_LIMIT_REACHED"
