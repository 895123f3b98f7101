"""Serializers of the content invitations point at: news articles, narrations, roleplay
templates and their roles."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from notifyplatform.choices import ConversationStyle

from ..models import (
    DifficultyLevel,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryCharacter,
)
from ..narration.profiles import DEFAULT_PROFILE, NARRATOR_PROFILES
from .serializers import ContentField


class NewsArticleSerializer(serializers.ModelSerializer):
    class Meta:
        model = NewsArticle
        fields = [
            "id", "title", "summary", "full_content", "source_url", "author", "published_at",
            "category", "tags", "language", "reading_time_minutes", "content_hash", "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "content_hash", "is_active", "created_at"]
        extra_kwargs = {
            "title": {"max_length": 1000},
            "summary": {"max_length": 5000},
            "full_content": {"max_length": 200_000},
            "source_url": {"max_length": 2000},
            "language": {"default": "en"},
        }

    def validate_tags(self, value: Any) -> Any:
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(t, str) for t in value)
        ):
            raise serializers.ValidationError("must be a list of strings")
        return value


class NewsNarrationSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = NewsNarration
        fields = [
            "id", "news_article", "user", "status", "narrator_profile", "conversation_style",
            "segments", "total_duration", "audio_file_url", "narration_metadata", "created_at",
        ]
        read_only_fields = fields

    def get_status(self, obj: NewsNarration) -> str:
        return str((obj.narration_metadata or {}).get("status", "pending"))


class NarrationCreateSerializer(serializers.Serializer):
    article = ContentField(queryset=NewsArticle.objects.filter(is_active=True))
    narrator_profile = serializers.ChoiceField(
        choices=sorted(NARRATOR_PROFILES), default=DEFAULT_PROFILE
    )
    conversation_style = serializers.ChoiceField(
        choices=ConversationStyle.choices, default=ConversationStyle.NEUTRAL
    )


class RoleSerializer(serializers.ModelSerializer):
    is_taken = serializers.SerializerMethodField()

    class Meta:
        model = RoleplayCharacterRole
        fields = [
            "id", "roleplay_template", "character", "role_name", "role_description",
            "required_voice_emotions", "is_protagonist", "role_metadata", "is_taken",
        ]
        read_only_fields = fields

    def get_is_taken(self, obj: RoleplayCharacterRole) -> bool:
        return obj.pk in self.context.get("taken", set())


class RoleCreateSerializer(serializers.Serializer):
    role_name = serializers.CharField(max_length=100)
    role_description = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=5000
    )
    required_voice_emotions = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, allow_null=True,
        max_length=20,
    )
    is_protagonist = serializers.BooleanField(required=False, default=False)
    role_metadata = serializers.JSONField(required=False, allow_null=True)
    character = ContentField(
        queryset=StoryCharacter.objects.all(), required=False, allow_null=True
    )


class RoleplayTemplateSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = RoleplayTemplate
        fields = [
            "id", "story", "template_name", "description", "total_characters",
            "estimated_duration_minutes", "difficulty_level", "is_public", "created_by",
            "template_metadata", "roles", "created_at",
        ]
        read_only_fields = fields

    def get_roles(self, obj: RoleplayTemplate) -> list[dict[str, Any]]:
        taken = self.context.get("taken_by_template", {}).get(obj.pk, set())
        roles = sorted(obj.roles.all(), key=lambda r: (r.role_name, r.pk))
        return list(RoleSerializer(roles, many=True, context={"taken": taken}).data)


class RoleplayTemplateCreateSerializer(serializers.Serializer):
    template_name = serializers.CharField(max_length=255)
    description = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=5000
    )
    total_characters = serializers.IntegerField(min_value=1, max_value=100)
    estimated_duration_minutes = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10_000
    )
    difficulty_level = serializers.ChoiceField(
        choices=DifficultyLevel.choices, required=False, allow_null=True
    )
    is_public = serializers.BooleanField(required=False, default=False)
    template_metadata = serializers.JSONField(required=False, allow_null=True)
    story = ContentField(queryset=Story.objects.all(), required=False, allow_null=True)
    roles = RoleCreateSerializer(many=True, required=False)
