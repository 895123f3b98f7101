"""Audiences of a batch: who an invitation batch goes to.

``all`` (active users), ``region:<r>``, ``opted-in`` (users with an enabled preference row
for the invitation type), ``csv:<path>`` (a file of emails and/or user ids, any columns).
An audience resolves to a *stable ordered* list of user ids (ordered by id), stored in the
job's chunks when the job is created, so a resumed job works through exactly the same list
even if users sign up or change region meanwhile.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import Q, QuerySet

from deliveries.models import UserNotificationPreference
from users.models import User

from .errors import EMPTY_AUDIENCE, INVALID_AUDIENCE, BatchError

AUDIENCE_HELP = "all | region:<region> | opted-in | csv:<path of a file of emails/user ids>"
_CSV_MAX_ENTRIES = 1_000_000


@dataclass(frozen=True)
class Audience:
    kind: str  # all | region | opted-in | csv
    value: str = ""
    emails: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    invalid: tuple[str, ...] = field(default=())  # csv cells that are neither

    def describe(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind


def _read_csv(path_text: str) -> Audience:
    path = Path(path_text).expanduser()
    if not path_text or not path.is_file():
        raise BatchError(INVALID_AUDIENCE, f"CSV file not found: {path_text!r}", "audience")
    emails: list[str] = []
    ids: list[str] = []
    invalid: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    value = cell.strip()
                    if not value or value.lower() in ("email", "user_id", "id", "user"):
                        continue
                    if "@" in value:
                        emails.append(value.lower())
                        continue
                    try:
                        ids.append(str(uuid.UUID(value)))
                    except ValueError:
                        invalid.append(value)
                if len(emails) + len(ids) > _CSV_MAX_ENTRIES:
                    raise BatchError(
                        INVALID_AUDIENCE,
                        f"CSV file has more than {_CSV_MAX_ENTRIES} entries",
                        "audience",
                    )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BatchError(INVALID_AUDIENCE, f"cannot read CSV file: {exc}", "audience") from exc
    return Audience(
        "csv", str(path), emails=tuple(emails), user_ids=tuple(ids), invalid=tuple(invalid)
    )


def audience_parse(text: str | None) -> Audience:
    """Parse an audience filter; raises ``BatchError(INVALID_AUDIENCE)``."""
    text = (text or "").strip()
    if not text:
        raise BatchError(INVALID_AUDIENCE, f"an audience is required ({AUDIENCE_HELP})", "audience")
    kind, _, value = text.partition(":")
    kind = kind.strip().lower()
    value = value.strip()
    if kind == "all" and not value:
        return Audience("all")
    if kind in ("opted-in", "opted_in", "optedin") and not value:
        return Audience("opted-in")
    if kind == "region":
        if not value:
            raise BatchError(INVALID_AUDIENCE, "region: needs a region name", "audience")
        return Audience("region", value)
    if kind == "csv":
        return _read_csv(value)
    raise BatchError(
        INVALID_AUDIENCE, f"unknown audience {text!r}; expected {AUDIENCE_HELP}", "audience"
    )


def audience_queryset(
    audience: Audience, *, invitation_type: str | None, exclude_user_id: str | None = None
) -> QuerySet[User]:
    users = User.objects.filter(is_active=True)
    if audience.kind == "region":
        users = users.filter(region__iexact=audience.value)
    elif audience.kind == "opted-in":
        users = users.filter(
            pk__in=UserNotificationPreference.objects.filter(
                user__isnull=False, invitation_type=invitation_type or "*", is_enabled=True
            ).values("user_id")
        )
    elif audience.kind == "csv":
        users = users.filter(Q(pk__in=audience.user_ids) | Q(email__in=audience.emails))
    if exclude_user_id is not None:
        # Nobody invites themselves: the inviter is never in their own batch.
        users = users.exclude(pk=exclude_user_id)
    return users.order_by("pk")


def audience_resolve(
    audience: Audience, *, invitation_type: str | None, exclude_user_id: str | None = None
) -> list[str]:
    """The audience's user ids, ordered; raises ``BatchError(EMPTY_AUDIENCE)`` when none."""
    ids = [
        str(pk)
        for pk in audience_queryset(
            audience, invitation_type=invitation_type, exclude_user_id=exclude_user_id
        ).values_list("pk", flat=True)
    ]
    if not ids:
        raise BatchError(
            EMPTY_AUDIENCE, f"the audience {audience.describe()!r} matches no active user",
            "audience",
        )
    return ids
