"""Abuse limits on invitations to addresses and numbers outside the platform.

An invitation to an email address or a phone number makes the platform send mail or SMS
(which costs money) to whoever the inviter names, so those are limited; invitations to
users are not (they have preferences, opt-outs and frequency caps). Counted from the
``story_invitations`` rows themselves — the database is the truth, nothing to drift —
over sliding windows, under a transaction-level advisory lock per inviter and per
destination, so two requests at once cannot both take the last slot.

The rules, in order:

1. **New external recipients per inviter.** An address (or number) is *new* for an
   inviter when it is no user's and the inviter never invited it before. Each inviter may
   invite at most ``NP_INVITE_NEW_EMAIL_PER_HOUR`` / ``_PER_DAY`` new addresses and
   ``NP_INVITE_NEW_SMS_PER_HOUR`` / ``_PER_DAY`` new phone numbers (stricter: SMS costs
   money) in the last hour / 24 hours. Inviting an address again is not new (rule 2 still
   applies). Answer: 429 ``INVITATION_LIMIT_REACHED``.
2. **Per destination.** One address or number receives at most
   ``NP_INVITE_PER_DESTINATION_PER_DAY`` invitations in 24 hours from everyone together.
   Answer: 429 ``DESTINATION_LIMIT_REACHED``.

Both carry ``retry_after``: the seconds until the oldest counted invitation leaves its
window (the API sends it as ``Retry-After``). Batch jobs invite users only, so they are
not limited here; staff are limited like everyone (an invitation speaks for its inviter).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from users.models import User

from . import errors
from .errors import InvitationError
from .models import StoryInvitation

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class InvitationLimitError(InvitationError):
    """A limit of this module: 429 with the seconds until a slot frees."""

    def __init__(self, code: str, message: str, *, retry_after: float) -> None:
        super().__init__(code, message, status=429)
        self.retry_after = max(1, math.ceil(retry_after))


# (field, user column, settings prefix, what to call it)
_KINDS = (
    ("invitee_email", "email", "NP_INVITE_NEW_EMAIL", "email addresses"),
    ("invitee_phone", "phone", "NP_INVITE_NEW_SMS", "phone numbers"),
)


def _lock(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])


def _is_users(column: str, value: str) -> bool:
    lookup = f"{column}__iexact" if column == "email" else column
    return User.objects.filter(**{lookup: value}).exists()


def _firsts(inviter: User, field: str, column: str, since: datetime) -> list[datetime]:
    """When the inviter first invited each external address of ``field`` whose first
    invitation is after ``since``, oldest first (addresses of users left out)."""
    lookup = f"{column}__iexact" if column == "email" else column
    rows = (
        StoryInvitation.objects.filter(
            inviter=inviter, invitee_user__isnull=True, **{f"{field}__isnull": False}
        )
        .exclude(Exists(User.objects.filter(**{lookup: OuterRef(field)})))
        .values(field)
        .annotate(first=Min("created_at"))
        .filter(first__gte=since)
        .order_by("first")
    )
    return [row["first"] for row in rows]


def _over(times: list[datetime], limit: int, window: timedelta, now: datetime) -> float | None:
    """Seconds until a slot frees when ``times`` (oldest first, inside ``window``) already
    hold ``limit`` slots; None when one is free."""
    if len(times) < limit:
        return None
    if limit <= 0:
        return window.total_seconds()
    return ((times[len(times) - limit] + window) - now).total_seconds()


def invitation_limits_check(
    *, inviter: User, invitee_email: str | None, invitee_phone: str | None
) -> None:
    """Raise ``InvitationLimitError`` when an invitation by ``inviter`` to this address or
    number would pass a limit (rules 1 and 2). Call inside the creating transaction: the
    advisory locks hold until it ends, so the rows it then writes count for the next."""
    destinations = [
        (f, c, p, n, v)
        for (f, c, p, n), v in zip(_KINDS, (invitee_email, invitee_phone), strict=True)
        if v
    ]
    if not destinations:
        return
    now = timezone.now()
    _lock(f"invite-limit:inviter:{inviter.pk}")
    for _field, column, _prefix, _name, value in sorted(destinations, key=lambda d: d[4]):
        _lock(f"invite-limit:destination:{column}:{value.lower()}")
    for field, column, prefix, name, value in destinations:
        already = StoryInvitation.objects.filter(inviter=inviter, **{field: value}).exists()
        if not already and not _is_users(column, value):
            for period, window in (("HOUR", HOUR), ("DAY", DAY)):
                limit = int(getattr(settings, f"{prefix}_PER_{period}"))
                wait = _over(_firsts(inviter, field, column, now - window), limit, window, now)
                if wait is not None:
                    raise InvitationLimitError(
                        errors.INVITATION_LIMIT_REACHED,
                        f"you may invite at most {limit} new {name} per "
                        f"{'hour' if period == 'HOUR' else 'day'}",
                        retry_after=wait,
                    )
        limit = int(settings.NP_INVITE_PER_DESTINATION_PER_DAY)
        received = list(
            StoryInvitation.objects.filter(**{field: value}, created_at__gte=now - DAY)
            .order_by("created_at")
            .values_list("created_at", flat=True)
        )
        wait = _over(received, limit, DAY, now)
        if wait is not None:
            raise InvitationLimitError(
                errors.DESTINATION_LIMIT_REACHED,
                f"this {'address' if column == 'email' else 'number'} has received the most "
                f"invitations it may get in a day ({limit})",
                retry_after=wait,
            )
