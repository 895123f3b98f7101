"""Admin for notification templates: searchable by key and type, JSON shown indented.

Validation of a template's variables runs in ``NotificationTemplate.clean()``, which
the admin form calls, so a template with an undeclared variable cannot be saved here.
"""

from __future__ import annotations

from django.contrib import admin

from notifyplatform.admin_utils import NPModelAdmin

from .models import NotificationTemplate


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(NPModelAdmin):
    list_display = (
        "template_key",
        "template_name",
        "invitation_type",
        "delivery_type",
        "language",
        "is_active",
        "updated_at",
    )
    list_filter = ("delivery_type", "language", "is_active", "invitation_type")
    search_fields = ("template_key", "template_name", "invitation_type", "subject_template")
    list_editable = ("is_active",)
    date_hierarchy = "updated_at"
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
        (
            "Variables and provider options",
            {"fields": ("template_variables", "provider_specific_config")},
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )
