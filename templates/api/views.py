"""Staff-only template CRUD and preview.

``POST /templates/{id}/preview/`` renders the template with the example values declared in
its ``template_variables`` (overridable with ``context``) and, with ``all_variants``, every
other channel and language of the same notification type, so an editor sees at once what a
change does everywhere. A variant that cannot render reports its error instead of failing
the whole preview.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors
from ..filters import TemplateFilter
from ..models import NotificationTemplate
from ..rendering import TemplateError, example_context
from ..services import template_render
from ..sms import sms_segments
from .serializers import (
    TemplatePreviewRequestSerializer,
    TemplatePreviewSerializer,
    TemplateSerializer,
)


def render_variant(template: NotificationTemplate, overrides: dict[str, Any]) -> dict[str, Any]:
    variant: dict[str, Any] = {
        "template_id": template.pk,
        "template_key": template.template_key,
        "delivery_type": template.delivery_type,
        "language": template.language,
        "subject": None,
        "text": None,
        "html": None,
        "sms_segments": None,
        "error": None,
    }
    try:
        context = {**example_context(template.template_variables), **overrides}
        rendered = template_render(template, context)
    except TemplateError as exc:
        variant["error"] = exc.to_dict()
        return variant
    variant.update(subject=rendered.subject, text=rendered.text, html=rendered.html)
    if template.delivery_type == "sms":
        variant["sms_segments"] = sms_segments(rendered.text).segments
    return variant


class TemplateViewSet(viewsets.ModelViewSet):
    serializer_class = TemplateSerializer
    permission_classes = [permissions.IsAdminUser]
    queryset = NotificationTemplate.objects.all()
    filterset_class = TemplateFilter
    ordering_fields = ["template_key", "invitation_type", "delivery_type", "language", "updated_at"]
    ordering = ["invitation_type", "delivery_type", "language", "id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return selectors.template_list(ordering=self.ordering)

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
            rows += list(selectors.template_variants(template).exclude(pk=template.pk))
        try:
            context = {**example_context(template.template_variables), **overrides}
        except TemplateError:
            context = dict(overrides)
        return Response(
            {"context": context, "variants": [render_variant(row, overrides) for row in rows]}
        )
