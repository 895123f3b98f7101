from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.analytics import CTR_DEFAULT_HOURS, CTR_MAX_HOURS
from deliveries.models import ProviderPerformanceSummary
from notifyplatform.choices import ConversationStyle, InvitationType

from .. import selectors
from ..errors import CONTENT_NOT_FOUND, InvitationError
from ..models import (
    InvitationConversionFunnel,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryInvitation,
    UserInvitationHistory,
    UserInvitationSummary,
)
from ..ownership import invitation_permitted


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation as its inviter or invitee sees it (never the token)."""

    direction = serializers.SerializerMethodField()
    inviter_name = serializers.SerializerMethodField()

    class Meta:
        model = StoryInvitation
        fields = [
            "id", "direction", "invitation_type", "status", "inviter", "inviter_name",
            "invitee_user", "invitee_email", "invitee_phone", "story", "content_type",
            "content_id", "content_metadata", "roleplay_character_role", "conversation_style",
            "message", "delivery_preferences", "expires_at", "viewed_at", "responded_at",
            "reminder_count", "last_reminded_at", "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: StoryInvitation) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not invitation_permitted(instance):
            data["content_metadata"] = None  # the title of content not the inviter's to share
        return data

    def get_direction(self, obj: StoryInvitation) -> str:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return "sent" if user is not None and obj.inviter_id == user.pk else "received"

    def get_inviter_name(self, obj: StoryInvitation) -> str:
        return obj.inviter.display_name or "Someone"


class ContentField(serializers.PrimaryKeyRelatedField):
    """A content id. An unknown one is ``CONTENT_NOT_FOUND`` (404), the very answer the
    ownership rules give for someone else's private content, so the two cannot be told
    apart (a 400 for one and a 404 for the other would tell which private ids exist)."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            codes = exc.get_codes()
            if not isinstance(codes, list) or "does_not_exist" not in codes:
                raise
            name = (self.field_name or "content").replace("_", " ")
            raise InvitationError(
                CONTENT_NOT_FOUND, f"no {name} {data} you may invite to",
                field=self.field_name, status=404,
            ) from None


class InvitationCreateSerializer(serializers.Serializer):
    invitation_type = serializers.ChoiceField(choices=InvitationType.choices)
    invitee_user = serializers.UUIDField(required=False, allow_null=True)
    invitee_email = serializers.EmailField(required=False, allow_null=True, allow_blank=True)
    invitee_phone = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=20
    )
    story = ContentField(
        queryset=Story.objects.all(), required=False, allow_null=True
    )
    article = ContentField(
        queryset=NewsArticle.objects.filter(is_active=True), required=False, allow_null=True
    )
    narration = ContentField(
        queryset=NewsNarration.objects.all(), required=False, allow_null=True
    )
    roleplay_template = ContentField(
        queryset=RoleplayTemplate.objects.all(), required=False, allow_null=True
    )
    role = ContentField(
        queryset=RoleplayCharacterRole.objects.all(), required=False, allow_null=True
    )
    conversation_style = serializers.ChoiceField(
        choices=ConversationStyle.choices, default=ConversationStyle.NEUTRAL
    )
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=90, default=7)
    channels = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, allow_empty=False
    )


class AnswerSerializer(serializers.Serializer):
    response_data = serializers.JSONField(required=False, allow_null=True)


class TokenNarrationSerializer(serializers.ModelSerializer):
    class Meta:
        model = NewsNarration
        fields = [
            "narrator_profile", "conversation_style", "segments", "total_duration",
            "audio_file_url",
        ]
        read_only_fields = fields


class TokenInvitationSerializer(serializers.ModelSerializer):
    """What the holder of an invitation link may see: no addresses, no ids of people."""

    inviter_name = serializers.SerializerMethodField()
    narration = serializers.SerializerMethodField()
    free_roles = serializers.SerializerMethodField()

    class Meta:
        model = StoryInvitation
        fields = [
            "invitation_type", "status", "inviter_name", "content_type", "content_metadata",
            "conversation_style", "message", "expires_at", "viewed_at", "responded_at",
            "narration", "free_roles",
        ]
        read_only_fields = fields

    @extend_schema_field(TokenNarrationSerializer(allow_null=True))
    def get_narration(self, obj: StoryInvitation) -> dict[str, Any] | None:
        """The narration a news-feed invitation plays, if one was attached."""
        narration = selectors.narration_for_invitation(obj)
        return TokenNarrationSerializer(narration).data if narration is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_free_roles(self, obj: StoryInvitation) -> list[str] | None:
        """Roleplay invitations: the names of the roles nobody has accepted yet."""
        role = obj.roleplay_character_role
        if role is None or role.roleplay_template is None:
            return None
        return [r.role_name for r in selectors.roles_free(role.roleplay_template)]

    def get_inviter_name(self, obj: StoryInvitation) -> str:
        return obj.inviter.display_name or "Someone"


class UserInvitationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = UserInvitationSummary
        fields = [
            "user", "email", "invitations_sent", "invitations_received", "invitations_accepted",
            "invitations_declined", "invitations_expired", "acceptance_rate", "last_activity",
        ]
        read_only_fields = fields


class ClickThroughWindowSerializer(serializers.Serializer):
    """One provider's click-through over the window (``deliveries/analytics.py``)."""

    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    delivered = serializers.IntegerField(help_text="Deliveries sent or delivered.")
    clicked = serializers.IntegerField(help_text="Of those, clicked at least once.")
    clicks = serializers.IntegerField(help_text="Every click on them.")
    click_through_rate = serializers.DecimalField(
        max_digits=6, decimal_places=2, allow_null=True, help_text="clicked / delivered, in %."
    )


class PerformanceWindowQuerySerializer(serializers.Serializer):
    hours = serializers.IntegerField(
        required=False, default=CTR_DEFAULT_HOURS, min_value=1, max_value=CTR_MAX_HOURS,
        help_text="The click-through window: deliveries created in the last N hours.",
    )


class ProviderPerformanceSerializer(serializers.ModelSerializer):
    click_through = serializers.SerializerMethodField()

    class Meta:
        model = ProviderPerformanceSummary
        fields = [
            "provider_name", "provider_type", "total_deliveries", "successful_deliveries",
            "failed_deliveries", "success_rate", "avg_cost_per_message", "total_cost",
            "first_delivery", "last_delivery", "click_through",
        ]
        read_only_fields = fields

    @extend_schema_field(ClickThroughWindowSerializer)
    def get_click_through(self, obj: ProviderPerformanceSummary) -> dict[str, Any]:
        """The view's numbers are all time (as the seed defines them); the click-through is
        over the window the view set computed once for the page (``context``)."""
        since, until, by_provider = self.context["click_through"]
        row = by_provider.get(obj.provider_name)
        counts = (row.delivered, row.clicked, row.clicks) if row else (0, 0, 0)
        return ClickThroughWindowSerializer(
            {
                "since": since,
                "until": until,
                "delivered": counts[0],
                "clicked": counts[1],
                "clicks": counts[2],
                "click_through_rate": row.click_through_rate if row else None,
            }
        ).data


class InvitationFunnelSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvitationConversionFunnel
        fields = [
            "invitation_type", "conversation_style", "total_invitations", "invitations_sent",
            "invitations_viewed", "invitations_accepted", "view_rate", "conversion_rate",
        ]
        read_only_fields = fields


class InvitationHistorySerializer(serializers.ModelSerializer):
    """One entry of the caller's own invitation history."""

    class Meta:
        model = UserInvitationHistory
        fields = ["id", "invitation", "action", "action_timestamp", "response_data"]
        read_only_fields = fields
