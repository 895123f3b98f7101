"""Invitations API: a user's own invitations (sent / received) and creating one; the
invitee's token actions (no login); the seed's analytics views, read-only, for staff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deliveries.analytics import click_through, ctr_window
from deliveries.models import ProviderPerformanceSummary
from notifyplatform.api_errors import ApiError
from notifyplatform.schema import error_response
from users.authentication import request_user
from users.models import User

from .. import selectors, services
from ..errors import INVITATION_NOT_FOUND
from ..filters import InvitationFilter, InvitationHistoryFilter
from ..models import (
    InvitationConversionFunnel,
    StoryInvitation,
    UserInvitationHistory,
    UserInvitationSummary,
)
from .serializers import (
    AnswerSerializer,
    InvitationCreateSerializer,
    InvitationFunnelSerializer,
    InvitationHistorySerializer,
    InvitationSerializer,
    PerformanceWindowQuerySerializer,
    ProviderPerformanceSerializer,
    TokenInvitationSerializer,
    UserInvitationSummarySerializer,
)


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations the caller sent or received; ``?direction=sent|received``,
    ``?status=``, ``?type=``. POST creates and sends one."""

    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter
    queryset = StoryInvitation.objects.none()
    lookup_value_regex = r"\d+"
    ordering_fields = ["created_at", "expires_at"]

    def get_queryset(self) -> Any:
        return selectors.invitation_list_for_user(user=request_user(self.request))

    @extend_schema(
        request=InvitationCreateSerializer,
        responses={
            201: InvitationSerializer,
            403: error_response(
                "CONTENT_FORBIDDEN: a role of a roleplay the caller does not own; "
                "PERMISSION_DENIED otherwise"
            ),
            404: error_response(
                "CONTENT_NOT_FOUND: no such content, or another user's private content"
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invitee_user = None
        if data.get("invitee_user"):
            invitee_user = User.objects.filter(pk=data["invitee_user"], is_active=True).first()
            if invitee_user is None:
                raise ApiError(
                    "VALIDATION_ERROR",
                    "invitee_user: no such user",
                    fields={"invitee_user": ["no such user"]},
                )
        preferences = {"channels": data["channels"]} if data.get("channels") else None
        invitation = services.invitation_create(
            inviter=request_user(request),
            invitation_type=data["invitation_type"],
            invitee_user=invitee_user,
            invitee_email=data.get("invitee_email") or None,
            invitee_phone=data.get("invitee_phone") or None,
            story=data.get("story"),
            article=data.get("article"),
            narration=data.get("narration"),
            roleplay_template=data.get("roleplay_template"),
            role=data.get("role"),
            conversation_style=data["conversation_style"],
            message=data.get("message", ""),
            expires_in=timedelta(days=data["expires_in_days"]),
            delivery_preferences=preferences,
        )
        body = InvitationSerializer(invitation, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class _TokenView(APIView):
    """The link token is the credential: no session (hence no CSRF), no login."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def invitation(self, token: str) -> StoryInvitation:
        invitation = selectors.invitation_get_by_token(token)
        if invitation is None:
            raise ApiError(
                INVITATION_NOT_FOUND,
                "this invitation link is not valid",
                status_code=status.HTTP_404_NOT_FOUND,
            )
        return invitation


_NOT_PERMITTED = error_response(
    "INVITATION_NOT_PERMITTED: the inviter may not (or no longer) invite to this content"
)


class InvitationByTokenView(_TokenView):
    @extend_schema(responses={200: TokenInvitationSerializer, 403: _NOT_PERMITTED})
    def get(self, request: Request, token: str) -> Response:
        invitation = self.invitation(token)
        # Nothing of the content (its title is in content_metadata) for an invitation its
        # inviter had no right to make.
        services.invitation_check_permitted(invitation)
        services.invitation_view(
            invitation=invitation, meta=services.RequestMeta.from_request(request)
        )
        invitation.refresh_from_db()
        return Response(TokenInvitationSerializer(invitation).data)


class _AnswerView(_TokenView):
    accept: bool = True

    @extend_schema(
        request=AnswerSerializer, responses={200: TokenInvitationSerializer, 403: _NOT_PERMITTED}
    )
    def post(self, request: Request, token: str) -> Response:
        invitation = self.invitation(token)
        services.invitation_check_permitted(invitation)
        serializer = AnswerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = services.invitation_accept if self.accept else services.invitation_decline
        invitation = answer(
            invitation=invitation,
            meta=services.RequestMeta.from_request(request),
            response_data=serializer.validated_data.get("response_data"),
        )
        return Response(TokenInvitationSerializer(invitation).data)


class InvitationAcceptByTokenView(_AnswerView):
    accept = True


class InvitationDeclineByTokenView(_AnswerView):
    accept = False


class InvitationHistoryViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's own invitation history (sent, viewed, accepted ...). Others' are 404."""

    serializer_class = InvitationHistorySerializer
    filterset_class = InvitationHistoryFilter
    queryset = UserInvitationHistory.objects.none()
    ordering_fields = ["action_timestamp"]
    ordering = ["-action_timestamp", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return UserInvitationHistory.objects.filter(user=request_user(self.request))


class _StaffReadOnly(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.IsAdminUser]


class UserInvitationSummaryViewSet(_StaffReadOnly):
    serializer_class = UserInvitationSummarySerializer
    queryset = UserInvitationSummary.objects.all()
    filterset_fields = ["email"]
    ordering_fields = ["email", "invitations_sent", "acceptance_rate", "last_activity"]


@extend_schema_view(
    list=extend_schema(parameters=[PerformanceWindowQuerySerializer]),
    retrieve=extend_schema(parameters=[PerformanceWindowQuerySerializer]),
)
class ProviderPerformanceViewSet(_StaffReadOnly):
    """The ``provider_performance_summary`` view (all time) with each provider's
    click-through rate over the last ``hours`` (24 by default): one grouped query for the
    whole page, not one per provider."""

    serializer_class = ProviderPerformanceSerializer
    queryset = ProviderPerformanceSummary.objects.all()
    filterset_fields = ["provider_type", "provider_name"]
    ordering_fields = ["provider_name", "success_rate", "total_cost"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        query = PerformanceWindowQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        self.window = ctr_window(query.validated_data["hours"])

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        window = getattr(self, "window", None)
        if window is not None:
            since, until = window
            by_provider = {r.key: r for r in click_through("provider", since=since, until=until)}
            context["click_through"] = (since, until, by_provider)
        return context


class InvitationFunnelViewSet(_StaffReadOnly):
    serializer_class = InvitationFunnelSerializer
    queryset = InvitationConversionFunnel.objects.all()
    filterset_fields = ["invitation_type", "conversation_style"]
    ordering_fields = ["invitation_type", "conversion_rate", "view_rate"]
