"""Enumerations shared by several apps (channels, priorities, invitation types)."""

from django.db import models


class Channel(models.TextChoices):
    """A delivery method. ``notifications.notification_type`` and
    ``notification_deliveries.delivery_type`` use these values."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    IN_APP = "in_app", "In-app"
    WEBHOOK = "webhook", "Webhook"


class ProviderType(models.TextChoices):
    """`provider_registry.provider_type`: the seed lists email, sms, payment, push; a
    provider also exists for each other channel we deliver through."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    WEBHOOK = "webhook", "Webhook"
    IN_APP = "in_app", "In-app"
    PAYMENT = "payment", "Payment"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class InvitationType(models.TextChoices):
    STORY_COLLABORATION = "story_collaboration", "Story collaboration"
    NEWS_FEED = "news_feed", "News feed"
    ROLEPLAY_INVITATION = "roleplay_invitation", "Roleplay invitation"


class ConversationStyle(models.TextChoices):
    NEUTRAL = "neutral", "Neutral"
    CASUAL = "casual", "Casual"
    FORMAL = "formal", "Formal"
    PLAYFUL = "playful", "Playful"
    DRAMATIC = "dramatic", "Dramatic"
