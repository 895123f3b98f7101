"""Invitations and the content they invite to (seed 000).

``stories``, ``story_characters`` and the base of ``story_invitations`` are the
"existing" tables seed 000 extends; their columns are ours. The seed's added
columns keep its names, types and defaults.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from notifyplatform.choices import ConversationStyle, InvitationType
from notifyplatform.db import Now, SeedIndex, choices_check, created_at, seed_default, updated_at


class Story(models.Model):
    id = models.AutoField(primary_key=True)
    title = models.CharField(max_length=255)
    synopsis = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stories"
    )
    genre = models.CharField(max_length=50, blank=True, default="")
    is_public = models.BooleanField(**seed_default(False))
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "stories"
        ordering = ["title"]
        verbose_name_plural = "stories"

    def __str__(self) -> str:
        return self.title


class StoryCharacter(models.Model):
    id = models.AutoField(primary_key=True)
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="characters")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    voice_profile = models.CharField(max_length=50, blank=True, default="")
    created_at = created_at()

    class Meta:
        db_table = "story_characters"
        ordering = ["story_id", "name"]

    def __str__(self) -> str:
        return self.name


class NewsArticle(models.Model):
    id = models.AutoField(primary_key=True)
    title = models.TextField()
    summary = models.TextField()
    full_content = models.TextField(null=True, blank=True)
    source_url = models.TextField(null=True, blank=True)
    author = models.CharField(max_length=255, null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    category = models.CharField(max_length=100, null=True, blank=True)
    tags = models.JSONField(null=True, blank=True)
    language = models.CharField(max_length=10, null=True, blank=True, **seed_default("en"))
    reading_time_minutes = models.IntegerField(null=True, blank=True)
    content_hash = models.CharField(
        max_length=64, null=True, blank=True, help_text="SHA-256 of the content, for duplicates"
    )
    is_active = models.BooleanField(**seed_default(True))
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "news_articles"
        ordering = ["-published_at"]
        indexes = [
            SeedIndex(fields=["published_at"], name="idx_news_articles_published"),
            SeedIndex(fields=["category"], name="idx_news_articles_category"),
            SeedIndex(fields=["language"], name="idx_news_articles_language"),
            SeedIndex(fields=["content_hash"], name="idx_news_articles_hash"),
        ]
        constraints = [
            # Duplicate detection is a rule, not a hint: one article per content hash.
            models.UniqueConstraint(
                fields=["content_hash"],
                name="news_articles_content_hash_uniq",
                condition=models.Q(content_hash__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title[:80]


class NewsNarration(models.Model):
    id = models.AutoField(primary_key=True)
    news_article = models.ForeignKey(
        NewsArticle, on_delete=models.CASCADE, null=True, blank=True, related_name="narrations",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="news_narrations",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    conversation_style = models.CharField(max_length=50, null=True, blank=True)
    narrator_profile = models.CharField(max_length=50, null=True, blank=True)
    segments = models.JSONField(null=True, blank=True)
    total_duration = models.IntegerField(null=True, blank=True, help_text="Seconds")
    audio_file_url = models.TextField(null=True, blank=True)
    narration_metadata = models.JSONField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "news_narrations"
        ordering = ["-created_at"]
        indexes = [
            SeedIndex(fields=["news_article"], name="idx_news_narrations_article"),
            SeedIndex(fields=["user"], name="idx_news_narrations_user"),
            SeedIndex(fields=["conversation_style"], name="idx_news_narrations_style"),
        ]

    def __str__(self) -> str:
        return f"Narration {self.pk} of article {self.news_article_id}"


class DifficultyLevel(models.TextChoices):
    BEGINNER = "beginner", "Beginner"
    INTERMEDIATE = "intermediate", "Intermediate"
    ADVANCED = "advanced", "Advanced"


class RoleplayTemplate(models.Model):
    id = models.AutoField(primary_key=True)
    story = models.ForeignKey(
        Story, on_delete=models.CASCADE, null=True, blank=True, related_name="roleplay_templates",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    template_name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    total_characters = models.IntegerField()
    estimated_duration_minutes = models.IntegerField(null=True, blank=True)
    difficulty_level = models.CharField(
        max_length=20, choices=DifficultyLevel.choices, null=True, blank=True
    )
    is_public = models.BooleanField(**seed_default(False))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_column="created_by",
        related_name="roleplay_templates",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    template_metadata = models.JSONField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "roleplay_templates"
        ordering = ["template_name"]
        indexes = [
            SeedIndex(fields=["story"], name="idx_roleplay_templates_story"),
            SeedIndex(fields=["created_by"], name="idx_roleplay_templates_creator"),
            SeedIndex(fields=["is_public"], name="idx_roleplay_templates_public"),
        ]
        constraints = [
            choices_check(
                "difficulty_level", DifficultyLevel, "roleplay_templates_difficulty_valid", nullable=True
            ),
            models.CheckConstraint(
                condition=models.Q(total_characters__gt=0),
                name="roleplay_templates_total_characters_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.template_name


class RoleplayCharacterRole(models.Model):
    id = models.AutoField(primary_key=True)
    roleplay_template = models.ForeignKey(
        RoleplayTemplate, on_delete=models.CASCADE, null=True, blank=True, related_name="roles",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    character = models.ForeignKey(
        StoryCharacter, on_delete=models.SET_NULL, null=True, blank=True, related_name="roles",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    role_name = models.CharField(max_length=100)
    role_description = models.TextField(null=True, blank=True)
    required_voice_emotions = ArrayField(models.TextField(), null=True, blank=True)
    is_protagonist = models.BooleanField(**seed_default(False))
    role_metadata = models.JSONField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "roleplay_character_roles"
        ordering = ["roleplay_template_id", "role_name"]
        indexes = [
            SeedIndex(
                fields=["roleplay_template"], name="idx_roleplay_character_roles_template"
            ),
            SeedIndex(fields=["character"], name="idx_roleplay_character_roles_character"),
        ]

    def __str__(self) -> str:
        return self.role_name


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    VIEWED = "viewed", "Viewed"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ContentType(models.TextChoices):
    STORY = "story", "Story"
    NEWS_ARTICLE = "news_article", "News article"
    ROLEPLAY_TEMPLATE = "roleplay_template", "Roleplay template"


class StoryInvitation(models.Model):
    """An invitation to a story, a news article or a roleplay role.

    The invitee is a user, or only an email address or a phone number. ``token``
    is an unguessable secret carried in the invitation link.
    """

    id = models.AutoField(primary_key=True)
    # --- the base table ---
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations_sent"
    )
    invitee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="invitations_received",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    invitee_email = models.EmailField(max_length=254, null=True, blank=True)
    invitee_phone = models.CharField(max_length=20, null=True, blank=True)
    story = models.ForeignKey(
        Story, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    message = models.TextField(blank=True, default="")
    token = models.CharField(max_length=128, unique=True)
    status = models.CharField(
        max_length=20, choices=InvitationStatus.choices, **seed_default(InvitationStatus.PENDING)
    )
    expires_at = models.DateTimeField()
    viewed_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    reminder_count = models.IntegerField(**seed_default(0))
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    batch_job = models.ForeignKey(
        "campaigns.NotificationBatchJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations",
    )
    created_at = created_at()
    updated_at = updated_at()
    # --- columns seed 000 adds ---
    conversation_style = models.CharField(
        max_length=50, null=True, blank=True, **seed_default(ConversationStyle.NEUTRAL)
    )
    invitation_type = models.CharField(
        max_length=50,
        null=True,
        blank=True,
        choices=InvitationType.choices,
        **seed_default(InvitationType.STORY_COLLABORATION),
    )
    content_type = models.CharField(
        max_length=50, null=True, blank=True, choices=ContentType.choices, **seed_default("story")
    )
    content_id = models.IntegerField(null=True, blank=True, help_text="Generic content reference")
    content_metadata = models.JSONField(null=True, blank=True)
    roleplay_character_role = models.ForeignKey(
        RoleplayCharacterRole,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations",
    )
    delivery_preferences = models.JSONField(null=True, blank=True)
    geographic_region = models.CharField(max_length=50, null=True, blank=True)

    class Meta:
        db_table = "story_invitations"
        ordering = ["-created_at"]
        indexes = [
            SeedIndex(
                fields=["conversation_style"], name="idx_story_invitations_conversation_style"
            ),
            SeedIndex(fields=["invitation_type"], name="idx_story_invitations_invitation_type"),
            SeedIndex(fields=["content_type"], name="idx_story_invitations_content_type"),
            SeedIndex(fields=["content_id"], name="idx_story_invitations_content_id"),
            SeedIndex(fields=["status", "expires_at"], name="idx_story_invitations_status"),
            SeedIndex(fields=["invitee_user"], name="idx_story_invitations_invitee"),
            SeedIndex(fields=["invitee_email"], name="idx_story_invitations_email"),
        ]
        constraints = [
            choices_check("status", InvitationStatus, "story_invitations_status_valid"),
            choices_check(
                "invitation_type", InvitationType, "story_invitations_type_valid", nullable=True
            ),
            choices_check(
                "content_type", ContentType, "story_invitations_content_type_valid", nullable=True
            ),
            models.CheckConstraint(
                condition=models.Q(invitee_user__isnull=False)
                | models.Q(invitee_email__isnull=False)
                | models.Q(invitee_phone__isnull=False),
                name="story_invitations_has_invitee",
            ),
            # One accepted invitation per roleplay role: a taken role stays taken.
            models.UniqueConstraint(
                fields=["roleplay_character_role"],
                name="story_invitations_role_taken_once",
                condition=models.Q(status="accepted", roleplay_character_role__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        who = self.invitee_email or self.invitee_phone or self.invitee_user_id
        return f"{self.invitation_type} invitation to {who}"


class InvitationAction(models.TextChoices):
    SENT = "sent", "Sent"
    RECEIVED = "received", "Received"
    VIEWED = "viewed", "Viewed"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    REMINDED = "reminded", "Reminded"


class UserInvitationHistory(models.Model):
    id = models.AutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="invitation_history",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    invitation = models.ForeignKey(
        StoryInvitation, on_delete=models.CASCADE, null=True, blank=True, related_name="history",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    action = models.CharField(max_length=20, choices=InvitationAction.choices)
    action_timestamp = models.DateTimeField(db_default=Now())
    response_data = models.JSONField(null=True, blank=True)
    interaction_metadata = models.JSONField(null=True, blank=True)
    user_agent = models.TextField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    referrer = models.TextField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "user_invitation_history"
        ordering = ["-action_timestamp"]
        verbose_name_plural = "user invitation history"
        indexes = [
            SeedIndex(fields=["user"], name="idx_user_invitation_history_user"),
            SeedIndex(fields=["invitation"], name="idx_user_invitation_history_invitation"),
            SeedIndex(
                fields=["action", "action_timestamp"], name="idx_user_invitation_history_action"
            ),
            SeedIndex(fields=["action_timestamp"], name="idx_user_invitation_history_timestamp"),
        ]
        constraints = [
            choices_check("action", InvitationAction, "user_invitation_history_action_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.action} invitation {self.invitation_id}"


# --- analytics views (created by migration 0002), read-only ---------------------------


class UserInvitationSummary(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        related_name="+",
        db_constraint=False,
    )
    email = models.CharField(max_length=254)
    invitations_sent = models.BigIntegerField()
    invitations_received = models.BigIntegerField()
    invitations_accepted = models.BigIntegerField()
    invitations_declined = models.BigIntegerField()
    invitations_expired = models.BigIntegerField()
    acceptance_rate = models.DecimalField(max_digits=7, decimal_places=2, null=True)
    last_activity = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "user_invitation_summary"
        ordering = ["email"]
        verbose_name_plural = "user invitation summary"

    def __str__(self) -> str:
        return self.email


class InvitationConversionFunnel(models.Model):
    id = models.CharField(max_length=120, primary_key=True)
    invitation_type = models.CharField(max_length=50, null=True)
    conversation_style = models.CharField(max_length=50, null=True)
    total_invitations = models.BigIntegerField()
    invitations_sent = models.BigIntegerField()
    invitations_viewed = models.BigIntegerField()
    invitations_accepted = models.BigIntegerField()
    view_rate = models.DecimalField(max_digits=7, decimal_places=2, null=True)
    conversion_rate = models.DecimalField(max_digits=7, decimal_places=2, null=True)

    class Meta:
        managed = False
        db_table = "invitation_conversion_funnel"
        ordering = ["invitation_type", "conversation_style"]
        verbose_name_plural = "invitation conversion funnel"

    def __str__(self) -> str:
        return f"{self.invitation_type} / {self.conversation_style}"
