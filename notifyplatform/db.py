"""Small model-field helpers that keep the seeds' DDL and Django in step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models


def seed_default(value: Any) -> dict[str, Any]:
    """A default both in Python (for ORM instances) and in the database (the seeds'
    ``DEFAULT ...``, so raw SQL, COPY and bulk paths get it too)."""
    return {"default": value, "db_default": value}


class Now(models.Func):
    """``now()``, the seeds' timestamp default (Django's ``Now`` compiles to
    ``statement_timestamp()``; ``now()`` is the transaction's time, as the seeds say)."""

    template = "now()"
    output_field = models.DateTimeField()


def created_at(**extra: Any) -> models.DateTimeField:
    return models.DateTimeField(db_default=Now(), editable=False, **extra)


def updated_at(**extra: Any) -> models.DateTimeField:
    return models.DateTimeField(auto_now=True, db_default=Now(), **extra)


def choices_check(
    field: str, choices: type[models.TextChoices], name: str, *, nullable: bool = False
) -> models.CheckConstraint:
    """A CHECK constraint holding an enumerated column to its choices."""
    condition = models.Q(**{f"{field}__in": choices.values})
    if nullable:
        condition |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=name)


class SeedIndex(models.Index):
    """An index named as the seeds name it.

    Django caps index names at 30 characters for Oracle's sake; PostgreSQL allows 63
    and the seeds' names (e.g. ``idx_story_invitations_conversation_style``) are longer
    than 30, so the seeds' names are kept with PostgreSQL's limit.
    """

    max_name_length = 63

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        path, args, kwargs = super().deconstruct()
        return "notifyplatform.db.SeedIndex", args, kwargs
