"""Saved audiences' write paths: create/update (with the members of a ``list`` audience),
replace a list's members from ids or a CSV upload, and topic subscriptions (a user joins or
leaves a ``topic`` audience). Reads are ``campaigns.audience.saved_audience_users``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from auctions.models import Auction
from users.models import User

from ..audience import csv_upload_entries, csv_users
from ..errors import INVALID_ARGUMENT, INVALID_AUDIENCE, TOPIC_NOT_FOUND, BatchError
from ..models import VALUED_KINDS, Audience, AudienceKind, AudienceMember, TopicSubscription

MAX_LIST_IDS = 100_000


def _check(kind: str, value: str, pk: int | None) -> str:
    if kind not in AudienceKind.values:
        raise BatchError(
            INVALID_AUDIENCE,
            f"unknown kind {kind!r}; expected one of {', '.join(AudienceKind.values)}",
            "kind",
        )
    value = (value or "").strip()
    if kind in VALUED_KINDS and not value:
        raise BatchError(INVALID_ARGUMENT, f"a {kind} audience needs a value", "value")
    if kind not in VALUED_KINDS and value:
        raise BatchError(INVALID_ARGUMENT, f"a {kind} audience takes no value", "value")
    if kind == AudienceKind.AUCTION_WATCHERS:
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            raise BatchError(INVALID_ARGUMENT, f"{value!r} is not an auction id", "value") from None
        if not Auction.objects.filter(pk=value).exists():
            raise BatchError(INVALID_ARGUMENT, f"no auction with id {value!r}", "value")
    if kind == AudienceKind.TOPIC:
        taken = Audience.objects.filter(kind=AudienceKind.TOPIC, value=value)
        if pk is not None:
            taken = taken.exclude(pk=pk)
        if taken.exists():
            raise BatchError(INVALID_ARGUMENT, f"topic key {value!r} is taken", "value")
    return value


def _user_ids(raw: Iterable[Any]) -> list[str]:
    ids: list[str] = []
    for item in raw:
        try:
            ids.append(str(uuid.UUID(str(item))))
        except ValueError:
            raise BatchError(INVALID_ARGUMENT, f"{item!r} is not a user id", "user_ids") from None
    if len(ids) > MAX_LIST_IDS:
        raise BatchError(INVALID_ARGUMENT, f"at most {MAX_LIST_IDS} user ids", "user_ids")
    found = set(map(str, User.objects.filter(pk__in=ids).values_list("pk", flat=True)))
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise BatchError(
            INVALID_ARGUMENT, f"{len(missing)} unknown user id(s), e.g. {missing[0]}", "user_ids"
        )
    return list(dict.fromkeys(ids))


def audience_validate(*, name: str, kind: str, value: str, instance: Audience | None = None) -> str:
    """Check an audience's name, kind and value (no write); returns the value normalised."""
    name = (name or "").strip()
    if not name:
        raise BatchError(INVALID_ARGUMENT, "a name is required", "name")
    same_name = Audience.objects.filter(name=name)
    if instance is not None:
        same_name = same_name.exclude(pk=instance.pk)
    if same_name.exists():
        raise BatchError(INVALID_ARGUMENT, f"an audience named {name!r} exists", "name")
    return _check(kind, value, getattr(instance, "pk", None))


@transaction.atomic
def audience_save(
    *,
    name: str,
    kind: str,
    value: str = "",
    description: str = "",
    user_ids: Iterable[Any] | None = None,
    created_by: User | None = None,
    instance: Audience | None = None,
) -> Audience:
    """Create (or update ``instance``) an audience; ``user_ids`` replace a list's members."""
    name = (name or "").strip()
    value = audience_validate(name=name, kind=kind, value=value, instance=instance)
    if user_ids is not None and kind != AudienceKind.LIST:
        raise BatchError(INVALID_ARGUMENT, "only a list audience takes user ids", "user_ids")
    ids = _user_ids(user_ids) if user_ids is not None else None
    audience = instance or Audience(created_by=created_by)
    audience.name, audience.kind, audience.value = name, kind, value
    audience.description = description or ""
    try:
        with transaction.atomic():
            audience.save()
    except IntegrityError:
        raise BatchError(INVALID_ARGUMENT, "the name or topic key is taken", "name") from None
    if ids is not None:
        audience_members_replace(audience, ids)
    return audience


def audience_members_replace(audience: Audience, user_ids: list[str]) -> int:
    """A list audience's members become exactly ``user_ids``; returns how many."""
    AudienceMember.objects.filter(audience=audience).delete()
    AudienceMember.objects.bulk_create(
        [AudienceMember(audience=audience, user_id=pk) for pk in user_ids], batch_size=5000
    )
    return len(user_ids)


@transaction.atomic
def audience_members_from_csv(
    audience: Audience, content: bytes, *, field_name: str = "csv_file"
) -> dict[str, int]:
    """Replace a list audience's members with the users a CSV upload names (emails or ids).
    Raises ``BatchError`` for a bad file (nothing changed); returns the counts."""
    if audience.kind != AudienceKind.LIST:
        raise BatchError(INVALID_AUDIENCE, "only a list audience takes a CSV", field_name)
    entries = csv_upload_entries(content, field_name=field_name)
    ids = [str(pk) for pk in csv_users(entries).order_by("pk").values_list("pk", flat=True)]
    if not ids:
        raise BatchError(INVALID_AUDIENCE, "no user matches the CSV's entries", field_name)
    audience_members_replace(audience, ids)
    entries_count = len(entries.emails) + len(entries.user_ids)
    return {"entries": entries_count, "members": len(ids), "unmatched": entries_count - len(ids)}


def _topic(key: str) -> Audience:
    topic = Audience.objects.filter(kind=AudienceKind.TOPIC, value=key).first()
    if topic is None:
        raise BatchError(TOPIC_NOT_FOUND, f"no topic {key!r}", "key")
    return topic


def topic_subscribe(*, user: User, key: str) -> tuple[Audience, bool]:
    """The user joins topic ``key``; True if they were not subscribed yet."""
    topic = _topic(key)
    _, created = TopicSubscription.objects.get_or_create(audience=topic, user=user)
    return topic, created


def topic_unsubscribe(*, user: User, key: str) -> tuple[Audience, bool]:
    """The user leaves topic ``key``; True if they were subscribed."""
    topic = _topic(key)
    deleted, _ = TopicSubscription.objects.filter(audience=topic, user=user).delete()
    return topic, bool(deleted)
