"""`notification_templates` (seed 000).

One row is one template for one notification type (``invitation_type``: e.g.
``outbid`` or ``news_feed``), one channel (``delivery_type``) and one language.
``template_key`` is unique, so it names exactly that row (``outbid.email.en``); the
pipeline looks templates up by type + channel + language with fallback.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from notifyplatform.choices import Channel
from notifyplatform.db import SeedIndex, choices_check, created_at, seed_default, updated_at

from .rendering.errors import TemplateValidationError
from .rendering.validation import validate_template
from .rich import rich_template_problems


class NotificationTemplate(models.Model):
    id = models.AutoField(primary_key=True)
    template_key = models.CharField(max_length=100, unique=True)
    template_name = models.CharField(max_length=255)
    invitation_type = models.CharField(
        max_length=50,
        help_text="Notification or invitation type this template renders, e.g. outbid, news_feed",
    )
    delivery_type = models.CharField(max_length=20, choices=Channel.choices)
    language = models.CharField(max_length=10, **seed_default("en"))
    subject_template = models.TextField(null=True, blank=True)
    content_template = models.TextField()
    html_template = models.TextField(null=True, blank=True)
    template_variables = models.JSONField(
        null=True,
        blank=True,
        help_text='{"name": {"required": true, "description": "...", "example": "..."}}',
    )
    provider_specific_config = models.JSONField(null=True, blank=True)
    rich_content_template = models.JSONField(
        null=True,
        blank=True,
        help_text="Rich content (image, buttons, text, html: README 'Rich content') whose "
        "strings may use {{ variables }}; used when a notify() call gives none",
    )
    track_links = models.BooleanField(
        **seed_default(True),
        help_text="Links to the notification's own URLs in this template's messages become "
        "tracked links at send time (with NP_TRACK_LINKS on)",
    )
    is_active = models.BooleanField(**seed_default(True))
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "notification_templates"
        ordering = ["invitation_type", "delivery_type", "language"]
        indexes = [
            SeedIndex(fields=["template_key"], name="idx_notification_templates_key"),
            SeedIndex(
                fields=["invitation_type", "delivery_type"], name="idx_notification_templates_type"
            ),
            SeedIndex(fields=["language"], name="idx_notification_templates_language"),
        ]
        constraints = [
            choices_check("delivery_type", Channel, "notification_templates_delivery_type_valid"),
            models.UniqueConstraint(
                fields=["invitation_type", "delivery_type", "language"],
                name="notification_templates_type_channel_language_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.template_key

    def clean(self) -> None:
        try:
            validate_template(
                subject=self.subject_template,
                content=self.content_template or "",
                html=self.html_template,
                template_variables=self.template_variables,
            )
        except TemplateValidationError as exc:
            raise ValidationError(exc.errors) from exc
        problems = rich_template_problems(self.rich_content_template)
        if problems:
            raise ValidationError({"rich_content_template": problems})

    @staticmethod
    def make_key(invitation_type: str, delivery_type: str, language: str) -> str:
        return f"{invitation_type}.{delivery_type}.{language}"
