"""The seeding context shared by the demo-data modules: counters and stable keys."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from auctions.models import Auction, Bid
    from deliveries.models import UserNotificationPreference
    from invitations.models import NewsNarration, StoryInvitation
    from users.models import User

DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - a published demo credential, by design
SEED_NAMESPACE = uuid.UUID("6f1c2d4e-8a57-4c1e-9a0b-5e2f3d4c1b00")

M = TypeVar("M", bound=models.Model)


def seed_uuid(name: str) -> uuid.UUID:
    """A stable primary key for a demo row, so a second run finds the first run's row."""
    return uuid.uuid5(SEED_NAMESPACE, name)


def content_hash(title: str, summary: str) -> str:
    return hashlib.sha256((title + summary).encode()).hexdigest()


class Seeder:
    """Creates the demo rows, counting what it created and what it found."""

    def __init__(self) -> None:
        self.now = timezone.now()
        self.created: Counter[str] = Counter()
        self.found: Counter[str] = Counter()
        # rows later steps refer to, by short demo name
        self.users: dict[str, User] = {}
        self.invitations: list[StoryInvitation] = []
        self.narrations: list[NewsNarration] = []  # to render once committed
        self.auctions: dict[str, Auction] = {}
        self.bids: dict[str, Bid] = {}
        self.preferences: dict[tuple[str, str, str], UserNotificationPreference] = {}

    # --- bookkeeping ---------------------------------------------------------------

    def count(self, model: type[models.Model], created: bool) -> None:
        (self.created if created else self.found)[model._meta.db_table] += 1

    def get(self, model: type[M], defaults: dict[str, Any] | None = None, **lookup: Any) -> M:
        obj, created = model._default_manager.get_or_create(defaults=defaults or {}, **lookup)
        self.count(model, created)
        return obj

    def ago(self, **delta: float) -> datetime:
        return self.now - timedelta(**delta)

    def ahead(self, **delta: float) -> datetime:
        return self.now + timedelta(**delta)
