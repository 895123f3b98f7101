"""Staff-only template CRUD and preview.

``POST /templates/{id}/preview/`` renders the template with the example values declared in
its ``template_variables`` (overridable with ``context``) and, with ``all_variants``, every
other channel and language of the same notification type, so an editor sees at once what a
change does everywhere. A variant that cannot render reports its error instead of failing
the whole preview.
"""

from __future__ import annotations

from typing import TypedDict

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors
from ..filters import TemplateFilter
from ..models import NotificationTemplate
from ..rendering.errors import TemplateError, TemplateErrorBody
from ..rendering.preview import example_context
from ..rendering.values import Context
from ..services import template_render
from ..sms import sms_segments
from .serializers import (
    TemplatePreviewRequestSerializer,
    TemplatePreviewSerializer,
    TemplateSerializer,
)


class RenderedVariant(TypedDict):
    """One row of a preview (RenderedVariantSerializer): the rendered parts or the error."""

    template_id: int
    template_key: str
    delivery_type: str
    language: str
    subject: str | None
    text: str | None
    html: str | None
    sms_segments: int | None
    error: TemplateErrorBody | None


def render_variant(template: NotificationTemplate, overrides: Context) -> RenderedVariant:
    variant = _unrendered(template)
    try:
        context = {**example_context(template.template_variables), **overrides}
        rendered = template_render(template, context)
    except TemplateError as exc:
        variant["error"] = exc.to_dict()
        return variant
    variant["subject"] = rendered.subject
    variant["text"] = rendered.text
    variant["html"] = rendered.html
    if template.delivery_type == "sms":
        variant["sms_segments"] = sms_segments(rendered.text).segments
    return variant


def _unrendered(template: NotificationTemplate) -> RenderedVariant:
    return RenderedVariant(
        template_id=template.pk,
        template_key=template.template_key,
        delivery_type=template.delivery_type,
        language=template.language,
        subject=None,
        text=None,
        html=None,
        sms_segments=None,
        error=None,
    )


def _preview_context(template: NotificationTemplate, overrides: Context) -> dict[str, object]:
    """The declared examples with ``overrides`` on top (just the overrides when the
    declarations are invalid)."""
    try:
        return {**example_context(template.template_variables), **overrides}
    except TemplateError:
        return dict(overrides)


class TemplateViewSet(viewsets.ModelViewSet):
    serializer_class = TemplateSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = NotificationTemplate.objects.all()
    filterset_class = TemplateFilter
    ordering_fields = ["template_key", "invitation_type", "delivery_type", "language", "updated_at"]
    ordering = list(selectors.TEMPLATE_ORDERING)
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[NotificationTemplate]:
        return selectors.template_list()

    @extend_schema(
        request=TemplatePreviewRequestSerializer, responses={200: TemplatePreviewSerializer}
    )
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        template = self.get_object()
        serializer = TemplatePreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        overrides = dict(serializer.validated_data["context"])
        rows = [template]
        if serializer.validated_data["all_variants"]:
            rows += list(
                selectors.template_variant_list(invitation_type=template.invitation_type).exclude(
                    pk=template.pk
                )
            )
        return Response(
            {
                "context": _preview_context(template, overrides),
                "variants": [render_variant(row, overrides) for row in rows],
            }
        )
