"""Admin for stories, news, roleplay templates, invitations and their history.

The invitation token is a bearer secret (whoever holds the link can answer it), so it
is never displayed. History rows are an audit log: browse-only. The invitation list filters
by inviter (the busiest of the last 24 hours, with their counts) and by kind of recipient:
who sent what, for the abuse limits of ``invitations.limits``. The two analytics
views are browse-only too.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils import timezone

from notifyplatform.admin_utils import NPModelAdmin, NPTabularInline, ReadOnlyModelAdmin

from .models import (
    InvitationConversionFunnel,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryCharacter,
    StoryInvitation,
    UserInvitationHistory,
    UserInvitationSummary,
)


class StoryCharacterInline(NPTabularInline):
    model = StoryCharacter
    fields = ("name", "description", "voice_profile")


@admin.register(Story)
class StoryAdmin(NPModelAdmin):
    list_display = ("title", "owner", "genre", "is_public", "created_at")
    list_filter = ("is_public", "genre")
    search_fields = ("title", "synopsis", "owner__email")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    date_hierarchy = "created_at"
    inlines = (StoryCharacterInline,)


@admin.register(StoryCharacter)
class StoryCharacterAdmin(NPModelAdmin):
    list_display = ("name", "story", "voice_profile", "created_at")
    list_filter = ("voice_profile",)
    search_fields = ("name", "description", "story__title")
    list_select_related = ("story",)
    autocomplete_fields = ("story",)


class NewsNarrationInline(NPTabularInline):
    model = NewsNarration
    fields = ("user", "conversation_style", "narrator_profile", "total_duration")
    raw_id_fields = ("user",)


class NewsArticleForm(forms.ModelForm):
    """Fills the content hash and refuses a duplicate, as the API does."""

    class Meta:
        model = NewsArticle
        fields = [
            "title", "summary", "full_content", "source_url", "author", "published_at",
            "category", "tags", "language", "reading_time_minutes", "is_active",
        ]

    def clean(self) -> dict[str, Any]:
        from .services import article_content_hash

        data = super().clean() or {}
        digest = article_content_hash(
            title=data.get("title") or "",
            summary=data.get("summary") or "",
            full_content=data.get("full_content"),
        )
        others = NewsArticle.objects.filter(content_hash=digest)
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        if (other := others.first()) is not None:
            raise forms.ValidationError(
                f"An article with the same content already exists (article {other.pk})."
            )
        self.instance.content_hash = digest
        return data


@admin.register(NewsArticle)
class NewsArticleAdmin(NPModelAdmin):
    form = NewsArticleForm
    actions = ("narrate",)
    list_display = (
        "short_title",
        "category",
        "author",
        "language",
        "published_at",
        "is_active",
        "reading_time_minutes",
    )
    list_filter = ("is_active", "category", "language")
    search_fields = ("title", "summary", "author", "content_hash")
    date_hierarchy = "published_at"
    readonly_fields = ("content_hash",)
    inlines = (NewsNarrationInline,)

    @admin.display(description="title", ordering="title")
    def short_title(self, obj: NewsArticle) -> str:
        return str(obj)

    @admin.action(description="Narrate (anchor voice, neutral style)")
    def narrate(self, request: Any, queryset: Any) -> None:
        from .services import narration_request

        count = 0
        for article in queryset.filter(is_active=True):
            narration_request(article=article, user=None, narrator_profile="anchor")
            count += 1
        self.message_user(request, f"{count} narration(s) queued.", messages.SUCCESS)


@admin.register(NewsNarration)
class NewsNarrationAdmin(NPModelAdmin):
    list_display = (
        "id",
        "news_article",
        "user",
        "conversation_style",
        "narrator_profile",
        "total_duration",
        "status",
        "created_at",
    )
    list_filter = ("conversation_style", "narrator_profile")
    readonly_fields = ("audio_file_url", "segments", "total_duration", "narration_metadata")

    @admin.display(description="status")
    def status(self, obj: NewsNarration) -> str:
        return str((obj.narration_metadata or {}).get("status", "pending"))

    search_fields = ("news_article__title", "user__email")
    list_select_related = ("news_article", "user")
    autocomplete_fields = ("news_article", "user")
    date_hierarchy = "created_at"


class RoleplayCharacterRoleInline(NPTabularInline):
    model = RoleplayCharacterRole
    fields = ("role_name", "character", "is_protagonist", "required_voice_emotions")
    raw_id_fields = ("character",)


@admin.register(RoleplayTemplate)
class RoleplayTemplateAdmin(NPModelAdmin):
    list_display = (
        "template_name",
        "story",
        "total_characters",
        "difficulty_level",
        "estimated_duration_minutes",
        "is_public",
        "created_by",
    )
    list_filter = ("difficulty_level", "is_public")
    search_fields = ("template_name", "description", "story__title")
    list_select_related = ("story", "created_by")
    autocomplete_fields = ("story", "created_by")
    inlines = (RoleplayCharacterRoleInline,)


@admin.register(RoleplayCharacterRole)
class RoleplayCharacterRoleAdmin(NPModelAdmin):
    list_display = ("role_name", "roleplay_template", "character", "is_protagonist")
    list_filter = ("is_protagonist",)
    search_fields = ("role_name", "role_description", "roleplay_template__template_name")
    list_select_related = ("roleplay_template", "character")
    autocomplete_fields = ("roleplay_template",)
    raw_id_fields = ("character",)


class HistoryInline(NPTabularInline):
    model = UserInvitationHistory
    fields = ("action", "user", "action_timestamp", "ip_address", "user_agent")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


INVITER_FILTER_TOP = 25


class InviterFilter(admin.SimpleListFilter):
    """Who sent what (the abuse limits' staff view): the busiest inviters of the last 24
    hours, each with how many invitations they sent and how many went to addresses or
    numbers outside the platform (the ones the limits count)."""

    title = "inviter (last 24 h)"
    parameter_name = "inviter"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        rows = (
            StoryInvitation.objects.filter(created_at__gte=timezone.now() - timedelta(days=1))
            .values("inviter_id", "inviter__email")
            .annotate(
                sent=Count("id"), external=Count("id", filter=Q(invitee_user__isnull=True))
            )
            .order_by("-sent", "inviter__email")[:INVITER_FILTER_TOP]
        )
        return [
            (str(r["inviter_id"]), f"{r['inviter__email']} ({r['sent']} sent, {r['external']} external)")
            for r in rows
        ]

    def queryset(self, request: Any, queryset: Any) -> Any:
        if not self.value():
            return queryset
        try:
            inviter = uuid.UUID(self.value())
        except ValueError:
            return queryset.none()
        return queryset.filter(inviter_id=inviter)


class RecipientFilter(admin.SimpleListFilter):
    title = "recipient"
    parameter_name = "recipient"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("user", "a user"), ("email", "an email address"), ("phone", "a phone number")]

    def queryset(self, request: Any, queryset: Any) -> Any:
        if self.value() == "user":
            return queryset.filter(invitee_user__isnull=False)
        if self.value() == "email":
            return queryset.filter(invitee_user__isnull=True, invitee_email__isnull=False)
        if self.value() == "phone":
            return queryset.filter(invitee_user__isnull=True, invitee_phone__isnull=False)
        return queryset


@admin.register(StoryInvitation)
class StoryInvitationAdmin(NPModelAdmin):
    list_display = (
        "id",
        "invitation_type",
        "inviter",
        "invitee",
        "status",
        "conversation_style",
        "content_type",
        "expires_at",
        "created_at",
    )
    list_filter = (
        InviterFilter,
        RecipientFilter,
        "status",
        "invitation_type",
        "conversation_style",
        "content_type",
    )
    search_fields = ("invitee_email", "invitee_phone", "inviter__email", "invitee_user__email")
    list_select_related = ("inviter", "invitee_user")
    date_hierarchy = "created_at"
    raw_id_fields = ("batch_job",)
    # Who invited whom to what is fixed once sent: editing the inviter or the content here
    # would bypass the ownership rules (invitations.ownership) that the service enforces,
    # and the message that went out already named them.
    readonly_fields = (
        "invitation_type",
        "inviter",
        "invitee_user",
        "invitee_email",
        "invitee_phone",
        "story",
        "content_type",
        "content_id",
        "content_metadata",
        "roleplay_character_role",
        "viewed_at",
        "responded_at",
        "reminder_count",
        "last_reminded_at",
    )
    # `token` is left out on purpose: it is the secret of the invitation link.
    fieldsets = (
        (None, {"fields": ("invitation_type", "status", "inviter", "message")}),
        ("Invitee", {"fields": ("invitee_user", "invitee_email", "invitee_phone")}),
        (
            "Content",
            {
                "fields": (
                    "story",
                    "content_type",
                    "content_id",
                    "content_metadata",
                    "roleplay_character_role",
                    "conversation_style",
                )
            },
        ),
        (
            "Delivery",
            {"fields": ("delivery_preferences", "geographic_region", "batch_job", "expires_at")},
        ),
        (
            "Responses",
            {"fields": ("viewed_at", "responded_at", "reminder_count", "last_reminded_at")},
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )
    inlines = (HistoryInline,)

    @admin.display(description="invitee")
    def invitee(self, obj: StoryInvitation) -> str:
        return str(obj.invitee_user or obj.invitee_email or obj.invitee_phone or "-")

    def has_add_permission(self, request: object) -> bool:
        # An invitation needs a fresh secret token and a delivery: it is created by the
        # invitation service (API), not typed in here.
        return False


@admin.register(UserInvitationHistory)
class UserInvitationHistoryAdmin(ReadOnlyModelAdmin):
    list_display = ("action", "invitation", "user", "action_timestamp", "ip_address")
    list_filter = ("action",)
    search_fields = ("user__email", "invitation__invitee_email")
    list_select_related = ("invitation", "user")
    date_hierarchy = "action_timestamp"


@admin.register(UserInvitationSummary)
class UserInvitationSummaryAdmin(ReadOnlyModelAdmin):
    list_display = (
        "email",
        "invitations_sent",
        "invitations_received",
        "invitations_accepted",
        "invitations_declined",
        "invitations_expired",
        "acceptance_rate",
        "last_activity",
    )
    search_fields = ("email",)


@admin.register(InvitationConversionFunnel)
class InvitationConversionFunnelAdmin(ReadOnlyModelAdmin):
    list_display = (
        "invitation_type",
        "conversation_style",
        "total_invitations",
        "invitations_sent",
        "invitations_viewed",
        "invitations_accepted",
        "view_rate",
        "conversion_rate",
    )
    list_filter = ("invitation_type",)
