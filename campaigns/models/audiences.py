"""Audiences (``audiences``, an extension table): saved, named selections of users — and
the two membership tables behind the kinds that list people explicitly.

Kinds and what ``value`` holds:

* ``all`` — every active user (``value`` empty);
* ``region`` / ``locale`` — active users whose ``users.region`` / ``users.locale`` equals
  ``value`` (case-insensitive; a locale ``pt`` also matches ``pt-BR``);
* ``auction_watchers`` — the watchers of auction ``value`` (its id);
* ``list`` — the users in ``audience_members`` (ids from the API, or a CSV upload in the
  admin);
* ``topic`` — the users subscribed in ``topic_subscriptions``; ``value`` is the topic key
  users join and leave through ``/api/v1/topics/{key}/subscription/``.

An audience is resolved (to an ordered list of user ids) when a job or broadcast starts: a
resumed job works through exactly the list it started with.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from notifyplatform.db import choices_check, created_at, updated_at


class AudienceKind(models.TextChoices):
    ALL = "all", "All active users"
    REGION = "region", "Users in a region"
    LOCALE = "locale", "Users with a locale"
    AUCTION_WATCHERS = "auction_watchers", "Watchers of an auction"
    LIST = "list", "An explicit list of users"
    TOPIC = "topic", "Subscribers of a topic"


# kinds whose ``value`` must be given
VALUED_KINDS = (
    AudienceKind.REGION,
    AudienceKind.LOCALE,
    AudienceKind.AUCTION_WATCHERS,
    AudienceKind.TOPIC,
)


class Audience(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=150, unique=True)
    kind = models.CharField(max_length=30, choices=AudienceKind.choices)
    value = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="region, locale, auction id or topic key, by kind",
    )
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "audiences"
        ordering = ["name"]
        constraints = [
            choices_check("kind", AudienceKind, "audiences_kind_valid"),
            models.UniqueConstraint(
                fields=["value"],
                condition=models.Q(kind="topic"),
                name="audiences_topic_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else str(self.kind)


class AudienceMember(models.Model):
    """One user of a ``list`` audience."""

    id = models.BigAutoField(primary_key=True)
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = created_at()

    class Meta:
        db_table = "audience_members"
        constraints = [
            models.UniqueConstraint(fields=["audience", "user"], name="audience_members_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.audience_id}"


class TopicSubscription(models.Model):
    """A user's subscription to a ``topic`` audience (joined and left by the user)."""

    id = models.BigAutoField(primary_key=True)
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="subscriptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="topic_subscriptions"
    )
    created_at = created_at()

    class Meta:
        db_table = "topic_subscriptions"
        constraints = [
            models.UniqueConstraint(fields=["audience", "user"], name="topic_subscriptions_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} subscribes to {self.audience_id}"
