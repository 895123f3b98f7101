"""Admin for notification templates: preview, inline validation, clone to a language.

- **Validation** runs in ``NotificationTemplate.clean()``, which the admin form calls: its
  ``ValidationError`` is keyed by field (``content_template``, ``template_variables`` ...), so
  each message shows next to the field it is about and nothing is saved.
- **Preview** (``<id>/preview/``) renders every channel and language of the template's
  notification type with the example values declared in ``template_variables``: subject,
  text, HTML (in a sandboxed iframe: admin-written markup must not run in the admin's
  origin) and, for SMS, the segment count the carrier will bill.
- **Clone to another language** (list action) asks for the target language and creates
  ``<type>.<channel>.<lang>`` rows with the same content for translators to edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from notifyplatform.admin_utils import NPModelAdmin

from . import selectors
from .models import NotificationTemplate
from .rendering.errors import TemplateError
from .rendering.message import RenderedMessage
from .rendering.preview import example_context
from .rendering.values import Scalar
from .services import template_clone_to_language, template_render
from .sms import SmsInfo, sms_segments

LANGUAGE_RE = re.compile(r"\A[a-z]{2,3}(-[A-Za-z0-9]{2,8})?\Z")


@dataclass(frozen=True)
class TemplatePreview:
    """One template row rendered with its declared examples (or the error that stopped it)."""

    template: NotificationTemplate
    context: dict[str, Scalar]
    rendered: RenderedMessage | None
    error: str | None
    sms: SmsInfo | None


def template_preview(template: NotificationTemplate) -> TemplatePreview:
    """Render ``template`` with the example values of its ``template_variables``."""
    try:
        context = example_context(template.template_variables)
        rendered = template_render(template, context)
    except TemplateError as exc:
        return TemplatePreview(template, {}, None, f"{exc.code}: {exc.message}", None)
    sms = sms_segments(rendered.text) if template.delivery_type == "sms" else None
    return TemplatePreview(template, context, rendered, None, sms)


class CloneLanguageForm(forms.Form):
    language = forms.CharField(
        max_length=10,
        help_text="Target language code, e.g. fr or pt-BR",
    )

    def clean_language(self) -> str:
        value = self.cleaned_data["language"].strip()
        if not LANGUAGE_RE.match(value):
            raise forms.ValidationError(
                "Enter a language code such as 'fr' or 'pt-BR' (2-3 lowercase letters, "
                "optionally a region)."
            )
        return value


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(NPModelAdmin):
    change_form_template = "admin_console/template_change_form.html"
    list_display = (
        "template_key",
        "template_name",
        "invitation_type",
        "delivery_type",
        "language",
        "is_active",
        "updated_at",
        "preview_link",
    )
    list_filter = ("delivery_type", "language", "is_active", "invitation_type")
    search_fields = ("template_key", "template_name", "invitation_type", "subject_template")
    list_editable = ("is_active",)
    date_hierarchy = "updated_at"
    actions = ("clone_to_language",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "template_key",
                    "template_name",
                    "invitation_type",
                    "delivery_type",
                    "language",
                    "is_active",
                )
            },
        ),
        ("Content", {"fields": ("subject_template", "content_template", "html_template")}),
        ("Rich content and links", {"fields": ("rich_content_template", "track_links")}),
        (
            "Variables and provider options",
            {"fields": ("template_variables", "provider_specific_config")},
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="{}_{}_preview".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.display(description="preview")
    def preview_link(self, obj: NotificationTemplate) -> str:
        url = reverse("admin:templates_notificationtemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">preview</a>', url)

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every channel × language of this template's type, rendered with examples.

        ``?language=xx`` narrows to one language; ``?channel=sms`` to one channel.
        """
        template = get_object_or_404(NotificationTemplate, pk=object_id)
        if not self.has_view_or_change_permission(request, template):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": template,
            "title": f"Preview: {template.invitation_type}",
            **_variant_previews(
                template,
                language=request.GET.get("language") or "",
                channel=request.GET.get("channel") or "",
            ),
        }
        return TemplateResponse(request, "admin_console/template_preview.html", context)

    @admin.action(description="Clone to another language…", permissions=["add"])
    def clone_to_language(
        self, request: HttpRequest, queryset: QuerySet[NotificationTemplate]
    ) -> HttpResponse | None:
        form = CloneLanguageForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            created, skipped = _clone_all(queryset, form.cleaned_data["language"])
            self._report_clones(request, created, skipped)
            return HttpResponseRedirect(request.get_full_path())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Clone templates to another language",
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin_console/template_clone.html", context)

    def _report_clones(self, request: HttpRequest, created: list[str], skipped: list[str]) -> None:
        if created:
            self.message_user(
                request,
                f"Created {len(created)} inactive template(s): {', '.join(created)}. "
                "Translate them, then activate.",
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                f"Already existed, left unchanged: {', '.join(skipped)}",
                messages.WARNING,
            )


def _variant_previews(
    template: NotificationTemplate, *, language: str, channel: str
) -> dict[str, object]:
    """The previews shown (narrowed to ``language``/``channel`` when given) and the
    languages and channels the type has, for the filter links."""
    variants = selectors.template_variant_list(invitation_type=template.invitation_type)
    languages = sorted(set(variants.values_list("language", flat=True)))
    channels = sorted(set(variants.values_list("delivery_type", flat=True)))
    shown = selectors.template_variant_list(
        invitation_type=template.invitation_type, language=language, channel=channel
    )
    return {
        "previews": [template_preview(row) for row in shown],
        "languages": languages,
        "channels": channels,
        "language": language,
        "channel": channel,
    }


def _clone_all(
    queryset: QuerySet[NotificationTemplate], language: str
) -> tuple[list[str], list[str]]:
    """Clone every selected template to ``language``: the keys created and those skipped."""
    created: list[str] = []
    skipped: list[str] = []
    for template in queryset.order_by("template_key"):
        copy = template_clone_to_language(template=template, language=language)
        (created if copy else skipped).append(
            NotificationTemplate.make_key(
                template.invitation_type, template.delivery_type, language
            )
        )
    return created, skipped
