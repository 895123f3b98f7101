"""Audiences and topics over the API.

``/api/v1/audiences/`` (staff): CRUD of saved audiences (a ``list`` audience takes
``user_ids``), ``GET …/{id}/count/`` the number of recipients it selects now.
``/api/v1/topics/`` (any signed-in user): the topics, each with ``subscribed``;
``POST``/``DELETE /api/v1/topics/{key}/subscription/`` join or leave one.
"""

from __future__ import annotations

from typing import Any

from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notifyplatform.api_errors import ApiError
from notifyplatform.schema import error_response
from users.models import User

from ..audience import saved_audience_users
from ..models import Audience, AudienceKind, TopicSubscription
from ..services import audience_save, topic_subscribe, topic_unsubscribe


class AudienceSerializer(serializers.ModelSerializer):
    user_ids = serializers.ListField(
        child=serializers.UUIDField(),
        write_only=True,
        required=False,
        help_text="list audiences: the members (replaces them)",
    )
    members = serializers.SerializerMethodField()

    class Meta:
        model = Audience
        fields = [
            "id",
            "name",
            "kind",
            "value",
            "description",
            "user_ids",
            "members",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "members", "created_at", "updated_at"]
        # uniqueness is the service's to check (one error shape, one place)
        extra_kwargs: dict[str, dict[str, Any]] = {"name": {"validators": []}}

    def get_members(self, obj: Audience) -> int | None:
        """A list's member count, a topic's subscriber count; null for the other kinds."""
        if obj.kind == AudienceKind.LIST:
            return obj.members.count()
        if obj.kind == AudienceKind.TOPIC:
            return obj.subscriptions.count()
        return None


@extend_schema_view(
    destroy=extend_schema(
        responses={204: None, 409: error_response("Broadcasts use the audience.")}
    )
)
class AudienceViewSet(viewsets.ModelViewSet):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = AudienceSerializer
    queryset = Audience.objects.order_by("name")
    filterset_fields = ["kind"]
    ordering_fields = ["name", "created_at", "id"]

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = audience_save(
            name=data["name"],
            kind=data["kind"],
            value=data.get("value", ""),
            description=data.get("description", ""),
            user_ids=data.get("user_ids"),
            created_by=_user(self.request),
        )

    def perform_update(self, serializer: Any) -> None:
        data = serializer.validated_data
        instance = serializer.instance
        serializer.instance = audience_save(
            name=data.get("name", instance.name),
            kind=data.get("kind", instance.kind),
            value=data.get("value", instance.value),
            description=data.get("description", instance.description),
            user_ids=data.get("user_ids"),
            instance=instance,
        )

    def perform_destroy(self, instance: Audience) -> None:
        try:
            instance.delete()
        except ProtectedError:
            raise ApiError(
                "AUDIENCE_IN_USE",
                "broadcasts use this audience; it cannot be deleted",
                status_code=status.HTTP_409_CONFLICT,
            ) from None

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "AudienceCount",
                {"id": serializers.IntegerField(), "recipients": serializers.IntegerField()},
            )
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def count(self, request: Request, pk: str | None = None) -> Response:
        audience = self.get_object()
        return Response({"id": audience.pk, "recipients": saved_audience_users(audience).count()})


class TopicSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="value", read_only=True)
    subscribed = serializers.SerializerMethodField()

    class Meta:
        model = Audience
        fields = ["key", "name", "description", "subscribed"]
        read_only_fields = fields

    def get_subscribed(self, obj: Audience) -> bool:
        return obj.pk in self.context.get("subscribed", set())


class TopicViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Topics users join and leave themselves (any signed-in user; their own subscription
    only)."""

    serializer_class = TopicSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "value"
    lookup_url_kwarg = "key"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Audience]:
        return Audience.objects.filter(kind=AudienceKind.TOPIC).order_by("value")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        user = self.request.user
        if user.is_authenticated:
            context["subscribed"] = set(
                TopicSubscription.objects.filter(user=user).values_list("audience_id", flat=True)
            )
        return context

    @extend_schema(
        request=None,
        responses={
            200: TopicSerializer,
            201: TopicSerializer,
            404: error_response("No topic with this key."),
        },
        methods=["POST"],
    )
    @extend_schema(
        request=None,
        responses={204: None, 404: error_response("No topic with this key.")},
        methods=["DELETE"],
    )
    @action(detail=True, methods=["post", "delete"], filter_backends=[])
    def subscription(self, request: Request, key: str | None = None) -> Response:
        if request.method == "DELETE":
            topic_unsubscribe(user=_user(request), key=key or "")
            return Response(status=status.HTTP_204_NO_CONTENT)
        topic, created = topic_subscribe(user=_user(request), key=key or "")
        body = TopicSerializer(topic, context={"subscribed": {topic.pk}}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # the permission classes let only signed-in users in
    return user
