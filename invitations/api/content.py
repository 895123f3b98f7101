"""The content invitations point at, over the API: news articles (read by everyone signed
in, written by staff; duplicates are 409), narrations (anyone asks for one of an active
article: 202, rendered by a worker; a user sees their own and the platform's), roleplay
templates with their roles (public ones and one's own; roles show whether they are taken;
``free-roles`` lists those still open)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notifyplatform.schema import error_response
from users.authentication import request_user

from .. import selectors, services
from ..models import NewsArticle, NewsNarration, RoleplayTemplate
from .content_serializers import (
    NarrationCreateSerializer,
    NewsArticleSerializer,
    NewsNarrationSerializer,
    RoleCreateSerializer,
    RoleplayTemplateCreateSerializer,
    RoleplayTemplateSerializer,
    RoleSerializer,
)


class StaffWrites(permissions.BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return bool(request.user and request.user.is_staff)


class NewsArticleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """News articles. Everyone signed in reads the active ones; staff create (and see
    inactive ones). The same content twice is ``DUPLICATE_ARTICLE`` (409) naming the
    existing article."""

    serializer_class = NewsArticleSerializer
    permission_classes = [StaffWrites]
    queryset = NewsArticle.objects.none()
    filterset_fields = ["category", "language"]
    ordering_fields = ["published_at", "created_at"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return NewsArticle.objects.none()
        return selectors.article_list(viewer=request_user(self.request))

    @extend_schema(
        responses={201: NewsArticleSerializer, 409: error_response("DUPLICATE_ARTICLE")}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = NewsArticleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        article = services.article_create(**serializer.validated_data)
        return Response(NewsArticleSerializer(article).data, status=status.HTTP_201_CREATED)


class NewsNarrationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Narrations of news articles. POST asks for one (202, ``status: pending``); a worker
    renders it (``ready``: ``segments``, ``audio_file_url``, ``total_duration``)."""

    serializer_class = NewsNarrationSerializer
    queryset = NewsNarration.objects.none()
    filterset_fields = ["news_article", "conversation_style", "narrator_profile"]
    ordering_fields = ["created_at"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return NewsNarration.objects.none()
        return selectors.narration_list(viewer=request_user(self.request))

    @extend_schema(
        request=NarrationCreateSerializer,
        responses={
            202: NewsNarrationSerializer,
            404: error_response("CONTENT_NOT_FOUND: no such active article"),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = NarrationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        narration = services.narration_request(
            article=data["article"],
            user=request_user(request),
            narrator_profile=data["narrator_profile"],
            conversation_style=data["conversation_style"],
        )
        return Response(NewsNarrationSerializer(narration).data, status=status.HTTP_202_ACCEPTED)


class RoleplayTemplateViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Roleplay templates: public ones and the caller's own, each with its roles and
    whether each is taken. POST creates one (with its roles); ``roles`` adds a role (the
    owner only); ``free-roles`` lists the roles nobody has accepted yet."""

    serializer_class = RoleplayTemplateSerializer
    queryset = RoleplayTemplate.objects.none()
    filterset_fields = ["story", "difficulty_level", "is_public"]
    ordering_fields = ["template_name", "created_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return RoleplayTemplate.objects.none()
        return selectors.roleplay_template_list(viewer=request_user(self.request))

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["taken_by_template"] = _TakenByTemplate()
        return context

    @extend_schema(
        request=RoleplayTemplateCreateSerializer,
        responses={
            201: RoleplayTemplateSerializer,
            404: error_response("CONTENT_NOT_FOUND: the story is not yours to use"),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = RoleplayTemplateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.roleplay_template_create(
            creator=request_user(request), **serializer.validated_data
        )
        body = RoleplayTemplateSerializer(template, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RoleCreateSerializer,
        responses={201: RoleSerializer, 403: error_response("CONTENT_FORBIDDEN: not the owner")},
    )
    @action(detail=True, methods=["post"], url_path="roles")
    def roles(self, request: Request, pk: str | None = None) -> Response:
        template = self.get_object()
        serializer = RoleCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        role = services.roleplay_role_add(
            template=template, by=request_user(request), **serializer.validated_data
        )
        return Response(RoleSerializer(role).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RoleSerializer(many=True)})
    # the free roles of one template are few: one unpaginated list, as documented
    @action(detail=True, methods=["get"], url_path="free-roles", pagination_class=None)
    def free_roles(self, request: Request, pk: str | None = None) -> Response:
        template = self.get_object()
        return Response(RoleSerializer(selectors.roles_free(template), many=True).data)


class _TakenByTemplate(dict):
    """template id → ids of its taken roles, looked up once per template on demand."""

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = selectors.roles_taken_ids(RoleplayTemplate(pk=key))
        return self[key]
