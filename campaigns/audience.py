"""Audiences of a batch: who an invitation batch or a broadcast goes to.

``all`` (active users), ``region:<r>``, ``opted-in`` (users with an enabled preference row
for the invitation type), ``csv:<path>`` (a file of emails and/or user ids, any columns),
``audience:<name or id>`` (a saved audience: ``models.audiences``; ``saved_audience_users``
is what each kind selects).
An audience resolves to a *stable ordered* list of user ids (ordered by id), stored in the
job's chunks when the job is created, so a resumed job works through exactly the same list
even if users sign up or change region meanwhile.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import Q, QuerySet

from auctions.models import AuctionWatcher
from deliveries.models import UserNotificationPreference
from users.models import User

from .errors import EMPTY_AUDIENCE, INVALID_AUDIENCE, BatchError
from .models import Audience as SavedAudience
from .models import AudienceKind, AudienceMember, TopicSubscription

AUDIENCE_HELP = (
    "all | region:<region> | opted-in | csv:<path of a file of emails/user ids> | "
    "audience:<saved audience name or id>"
)
_CSV_MAX_ENTRIES = 1_000_000


@dataclass(frozen=True)
class Audience:
    kind: str  # all | region | opted-in | csv | audience (a saved one; value: its id)
    value: str = ""
    emails: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    invalid: tuple[str, ...] = field(default=())  # csv cells that are neither

    def describe(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind


@dataclass(frozen=True)
class CsvEntries:
    emails: tuple[str, ...]
    user_ids: tuple[str, ...]
    invalid: tuple[tuple[int, str], ...]  # (row number, cell) of cells that are neither


_HEADER_WORDS = ("email", "e-mail", "user_id", "id", "user", "user id")


def csv_entries(lines: Iterable[str]) -> CsvEntries:
    """The emails and user ids in CSV text, any columns (header words are skipped); raises
    ``BatchError(INVALID_AUDIENCE)`` past ``_CSV_MAX_ENTRIES`` or for unreadable CSV."""
    emails: list[str] = []
    ids: list[str] = []
    invalid: list[tuple[int, str]] = []
    try:
        for number, row in enumerate(csv.reader(lines), start=1):
            for cell in row:
                value = cell.strip()
                if not value or value.lower() in _HEADER_WORDS:
                    continue
                if "@" in value:
                    emails.append(value.lower())
                    continue
                try:
                    ids.append(str(uuid.UUID(value)))
                except ValueError:
                    invalid.append((number, value))
            if len(emails) + len(ids) > _CSV_MAX_ENTRIES:
                raise BatchError(
                    INVALID_AUDIENCE, f"CSV has more than {_CSV_MAX_ENTRIES} entries", "audience"
                )
    except csv.Error as exc:
        raise BatchError(INVALID_AUDIENCE, f"cannot read CSV: {exc}", "audience") from exc
    return CsvEntries(tuple(emails), tuple(ids), tuple(invalid))


def csv_upload_entries(content: bytes, *, field_name: str = "csv_file") -> CsvEntries:
    """An uploaded CSV, strictly: UTF-8, at least one entry, and no cell that is neither an
    email nor a user id (the error names the first few, with their row numbers)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BatchError(
            INVALID_AUDIENCE, "the CSV file is not UTF-8 text", field_name
        ) from None
    entries = csv_entries(text.splitlines())
    if entries.invalid:
        shown = "; ".join(f"row {row}: {cell!r}" for row, cell in entries.invalid[:5])
        more = f" (and {len(entries.invalid) - 5} more)" if len(entries.invalid) > 5 else ""
        raise BatchError(
            INVALID_AUDIENCE,
            f"{len(entries.invalid)} cell(s) are neither an email nor a user id: {shown}{more}",
            field_name,
        )
    if not entries.emails and not entries.user_ids:
        raise BatchError(INVALID_AUDIENCE, "the CSV file has no emails or user ids", field_name)
    return entries


def csv_users(entries: CsvEntries) -> QuerySet[User]:
    """The users a CSV names (by id or email), active or not."""
    return User.objects.filter(Q(pk__in=entries.user_ids) | Q(email__in=entries.emails))


def _read_csv(path_text: str) -> Audience:
    path = Path(path_text).expanduser()
    if not path_text or not path.is_file():
        raise BatchError(INVALID_AUDIENCE, f"CSV file not found: {path_text!r}", "audience")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            entries = csv_entries(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(INVALID_AUDIENCE, f"cannot read CSV file: {exc}", "audience") from exc
    return Audience(
        "csv",
        str(path),
        emails=entries.emails,
        user_ids=entries.user_ids,
        invalid=tuple(cell for _, cell in entries.invalid),
    )


def saved_audience_get(name_or_id: str) -> SavedAudience:
    """A saved audience by id or name; raises ``BatchError(INVALID_AUDIENCE)``."""
    found = None
    if name_or_id.isdigit():
        found = SavedAudience.objects.filter(pk=int(name_or_id)).first()
    found = found or SavedAudience.objects.filter(name=name_or_id).first()
    if found is None:
        raise BatchError(INVALID_AUDIENCE, f"no saved audience {name_or_id!r}", "audience")
    return found


def saved_audience_users(audience: SavedAudience) -> QuerySet[User]:
    """The active users a saved audience selects, ordered by id."""
    users = User.objects.filter(is_active=True)
    kind, value = audience.kind, audience.value
    if kind == AudienceKind.REGION:
        users = users.filter(region__iexact=value)
    elif kind == AudienceKind.LOCALE:
        users = users.filter(Q(locale__iexact=value) | Q(locale__istartswith=f"{value}-"))
    elif kind == AudienceKind.AUCTION_WATCHERS:
        try:
            auction_id = uuid.UUID(value)
        except ValueError:
            return users.none()
        watchers = AuctionWatcher.objects.filter(auction_id=auction_id)
        users = users.filter(pk__in=watchers.values("user_id"))
    elif kind == AudienceKind.LIST:
        users = users.filter(
            pk__in=AudienceMember.objects.filter(audience=audience).values("user_id")
        )
    elif kind == AudienceKind.TOPIC:
        users = users.filter(
            pk__in=TopicSubscription.objects.filter(audience=audience).values("user_id")
        )
    return users.order_by("pk")


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
    if kind == "audience" and value:
        saved = saved_audience_get(value)
        return Audience("audience", str(saved.pk))
    raise BatchError(
        INVALID_AUDIENCE, f"unknown audience {text!r}; expected {AUDIENCE_HELP}", "audience"
    )


def audience_queryset(
    audience: Audience, *, invitation_type: str | None, exclude_user_id: str | None = None
) -> QuerySet[User]:
    users = User.objects.filter(is_active=True)
    if audience.kind == "audience":
        users = saved_audience_users(saved_audience_get(audience.value))
    elif audience.kind == "region":
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
