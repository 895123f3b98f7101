"""Notifications (send), the user's inbox and the user's preferences."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from notifyplatform.api_errors import ApiError
from notifyplatform.schema import error_response
from users.models import User

from .. import selectors, services
from ..filters import InboxFilter, NotificationFilter
from ..models import Notification, UserNotificationPreference
from ..services.idempotency import IdempotentRequest, notify_idempotent, request_fingerprint
from ..services.operations import notification_cancel
from ..types import Recipient
from .serializers import (
    DeliverySerializer,
    NotificationSerializer,
    NotificationWithDeliveriesSerializer,
    NotifyRequestSerializer,
    NotifyResponseSerializer,
    PreferenceSerializer,
)


class CanSendNotifications(permissions.BasePermission):
    """Staff users, or a service API token (``ApiToken.is_service``)."""

    message = "Sending notifications needs a staff account or a service API token."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return bool(user.is_staff or getattr(request.auth, "is_service", False))


class NotificationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """``POST /notifications/``: send one notification (``Idempotency-Key`` header honoured,
    scoped to the caller: a repeat returns the first result with 200 instead of 201 and sends
    nothing more; the key with another body is 422 ``IDEMPOTENCY_KEY_REUSED``).

    ``GET /notifications/``: the caller's own notifications on every channel, in any state
    (their history; the inbox is the in-app subset). Another user's notification is 404.
    ``POST /notifications/{id}/cancel/`` (staff): cancel its pending deliveries."""

    serializer_class = NotificationWithDeliveriesSerializer
    queryset = selectors.Notification.objects.none()
    filterset_class = NotificationFilter
    ordering_fields = ["created_at", "sent_at", "priority"]
    ordering = ["-created_at"]
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_permissions(self) -> list[Any]:
        if self.action == "create":
            return [CanSendNotifications()]
        if self.action == "cancel":
            return [permissions.IsAdminUser()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Notification]:
        if self.action == "cancel":
            return selectors.Notification.objects.all()
        return selectors.notification_list(self.request.user)

    @extend_schema(
        request=None,
        responses={200: NotificationSerializer, 409: error_response("Nothing left to cancel.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        result = notification_cancel(notification=self.get_object())
        return Response(NotificationSerializer(result.notification).data)

    @extend_schema(
        request=NotifyRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Scoped to the caller (API token or user) and kept for"
                " NP_IDEMPOTENCY_KEY_TTL_HOURS: a repeat with the same body returns the first"
                " result (200); the same key with another body is 422 IDEMPOTENCY_KEY_REUSED.",
            )
        ],
        responses={
            201: NotifyResponseSerializer,
            200: NotifyResponseSerializer,
            422: error_response("The Idempotency-Key was used with a different request."),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = NotifyRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        idempotency_key = request.headers.get("Idempotency-Key") or data.pop(
            "idempotency_key", None
        )
        data.pop("idempotency_key", None)
        idempotent = (
            IdempotentRequest(
                scope=_caller_scope(request),
                key=idempotency_key,
                fingerprint=request_fingerprint(
                    method=request.method or "POST",
                    path=request.path,
                    body={k: v for k, v in request.data.items() if k != "idempotency_key"},
                ),
            )
            if idempotency_key
            else None
        )
        user_id = data.pop("user_id", None)
        email, phone, locale = data.pop("email", None), data.pop("phone", None), data.pop("locale")
        if user_id is not None:
            recipient: Any = User.objects.filter(pk=user_id, is_active=True).first()
            if recipient is None:
                raise ApiError(
                    "INVALID_RECIPIENT", "no such user", fields={"user_id": ["no such user"]}
                )
        else:
            recipient = Recipient(email=email, phone=phone, locale=locale)
        if idempotent is not None:
            result = notify_idempotent(recipient, request=idempotent, **data)
        else:
            result = services.notify(recipient, **data)
        body = {
            "notification": NotificationSerializer(result.notification).data
            if result.notification
            else None,
            "deliveries": DeliverySerializer(result.deliveries, many=True).data,
            "created": result.created,
        }
        return Response(
            body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


def _caller_scope(request: Request) -> str:
    """Whose idempotency keys these are: the API token's, else the signed-in user's."""
    token = request.auth
    if token is not None and getattr(token, "pk", None) is not None:
        return f"token:{token.pk}"
    return f"user:{request.user.pk}"


def _uuid(value: str | None) -> uuid.UUID:
    """The path id as a UUID; a malformed one is simply not found (404), never a 500."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ApiError("NOT_FOUND", "Not found.", status_code=status.HTTP_404_NOT_FOUND) from None


class InboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The signed-in user's in-app inbox. Other users' notifications are 404."""

    serializer_class = NotificationSerializer
    filterset_class = InboxFilter
    queryset = selectors.Notification.objects.none()
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self) -> QuerySet[Notification]:
        return selectors.inbox_list(self.request.user)

    @extend_schema(
        responses={
            200: inline_serializer("UnreadCount", {"unread_count": serializers.IntegerField()})
        }
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def unread_count(self, request: Request) -> Response:
        return Response({"unread_count": selectors.inbox_unread_count(request.user)})

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = services.inbox_mark_read(user=request.user, notification_id=_uuid(pk))
        if notification is None:
            raise ApiError("NOT_FOUND", "Not found.", status_code=status.HTTP_404_NOT_FOUND)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(
        request=None,
        responses={200: inline_serializer("ReadAll", {"updated": serializers.IntegerField()})},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def read_all(self, request: Request) -> Response:
        return Response({"updated": services.inbox_mark_all_read(user=request.user)})

    @extend_schema(
        request=None,
        responses={200: NotificationSerializer, 404: error_response("Not your notification")},
        description=(
            "Record a click for clients that open the action URL themselves (the same as "
            "following `tracked_action_url`): sets `clicked_at` on the first click, status "
            "`clicked`, marks it read, counts the click in the delivery's metadata and "
            "publishes `notification_clicked` to the user."
        ),
    )
    @action(detail=True, methods=["post"])
    def click(self, request: Request, pk: str | None = None) -> Response:
        inbox = selectors.inbox_list(request.user, include_archived=True)
        found = inbox.filter(pk=_uuid(pk)).first()
        if found is None:
            raise ApiError("NOT_FOUND", "Not found.", status_code=status.HTTP_404_NOT_FOUND)
        return Response(NotificationSerializer(services.notification_click(found)).data)

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        notification = services.inbox_archive(user=request.user, notification_id=_uuid(pk))
        if notification is None:
            raise ApiError("NOT_FOUND", "Not found.", status_code=status.HTTP_404_NOT_FOUND)
        return Response(NotificationSerializer(notification).data)


class PreferenceViewSet(viewsets.ModelViewSet):
    """The signed-in user's own preference rows (platform defaults are admin-only)."""

    serializer_class = PreferenceSerializer
    filter_backends: list[Any] = []
    queryset = UserNotificationPreference.objects.none()
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[UserNotificationPreference]:
        return selectors.preference_list(self.request.user)

    def get_object(self) -> UserNotificationPreference:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def perform_create(self, serializer: BaseSerializer[UserNotificationPreference]) -> None:
        serializer.instance = services.preference_create(
            user=self.request.user, data=dict(serializer.validated_data)
        )

    def perform_update(self, serializer: BaseSerializer[UserNotificationPreference]) -> None:
        preference = serializer.instance
        assert preference is not None  # update() built the serializer on get_object()
        serializer.instance = services.preference_update(
            preference=preference, data=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance: Any) -> None:
        services.preference_delete(preference=instance)
