"""``/me/``: who the caller is; ``/me/tokens/``: their own API tokens (list, create, revoke);
``/devices/``: their own push devices (register or refresh, list, delete)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifyplatform.api_errors import ApiError
from notifyplatform.schema import error_response

from .. import selectors, services
from ..authentication import request_user
from ..models import ApiToken, Device
from .serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    DeviceRegisterSerializer,
    DeviceSerializer,
    MeSerializer,
)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's own tokens. Another user's token is 404. ``POST`` returns the secret
    once; ``POST {id}/revoke/`` revokes (idempotent)."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()
    filterset_fields = ["is_service"]
    ordering_fields = ["created_at", "last_used_at", "name"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.api_token_list(user=request_user(self.request))

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        expires_at = serializer.validated_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise ApiError(
                "VALIDATION_ERROR",
                "expires_at: must be in the future",
                fields={"expires_at": ["must be in the future"]},
            )
        token, raw = services.token_create(
            user=request_user(request),
            name=serializer.validated_data["name"],
            expires_at=expires_at,
        )
        body = dict(ApiTokenSerializer(token).data)
        body["token"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: ApiTokenSerializer,
            409: error_response("TOKEN_IN_USE: the token authenticating this request."),
        },
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = self.get_object()
        if getattr(request.auth, "pk", None) == token.pk and isinstance(request.auth, ApiToken):
            # Revoking the credential of the very request would lock a script out by
            # accident (a wrong id); revoke it from another token, a session or the admin.
            raise ApiError(
                "TOKEN_IN_USE",
                "This token authenticates the current request; revoke it with another "
                "token, from a browser session or in the admin.",
                status_code=status.HTTP_409_CONFLICT,
            )
        token = services.token_revoke(token=token)
        return Response(ApiTokenSerializer(token).data)


class DeviceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own push devices. ``POST`` registers or refreshes (idempotent on the FCM
    token / the subscription's endpoint: 201 when new, 200 when known; a token another
    account registered moves to the caller). Another user's device is 404."""

    serializer_class = DeviceSerializer
    queryset = Device.objects.none()
    filterset_fields = ["kind", "platform"]
    ordering_fields = ["created_at", "last_seen_at"]
    ordering = ["-last_seen_at"]

    def get_queryset(self) -> Any:
        return selectors.device_list(user=request_user(self.request))

    @extend_schema(
        request=DeviceRegisterSerializer,
        responses={201: DeviceSerializer, 200: DeviceSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = DeviceRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = data.get("subscription")
        device, created = services.device_register(
            user=request_user(request),
            kind=data["kind"],
            address=data["token"] if subscription is None else subscription["endpoint"],
            subscription=None
            if subscription is None
            else {
                "endpoint": subscription["endpoint"],
                "keys": {
                    "p256dh": subscription["keys"]["p256dh"],
                    "auth": subscription["keys"]["auth"],
                },
            },
            platform=data["platform"],
            label=data["label"] or request.headers.get("User-Agent", "")[:200],
        )
        return Response(
            DeviceSerializer(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def perform_destroy(self, instance: Device) -> None:
        services.device_delete(device=instance)
