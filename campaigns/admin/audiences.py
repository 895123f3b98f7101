"""Audiences and broadcasts in the admin.

An audience is edited through the same service as the API (``audience_save``): a ``list``
audience takes a CSV upload of emails/user ids (a bad file is an error on the field,
nothing changed); its recipient count shows on the change page. Broadcasts are browsed
with their job's progress and cancelled with an action; they are created by the API (or as
a ``broadcast`` batch job from the "start a batch" form).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from notifyplatform.admin_utils import NPModelAdmin, NPTabularInline
from users.models import User

from ..audience import csv_upload_entries, csv_users, saved_audience_users
from ..errors import BatchError
from ..models import Audience, AudienceKind, Broadcast, BroadcastStatus, TopicSubscription
from ..services import (
    audience_members_from_csv,
    audience_save,
    audience_validate,
    broadcast_cancel,
)


class AudienceForm(forms.ModelForm):
    csv_file = forms.FileField(
        required=False,
        label="CSV upload",
        help_text="list audiences: a CSV of emails and/or user ids; replaces the members",
    )

    class Meta:
        model = Audience
        fields = ["name", "kind", "value", "description"]

    def clean(self) -> dict[str, Any]:
        """The service's rules (``audience_validate``) and a strict read of the CSV, as
        errors on their fields; nothing is written before both pass."""
        data = super().clean() or {}
        if self.errors:
            return data
        upload = data.get("csv_file")
        self.csv_content = upload.read() if upload else None
        try:
            data["value"] = audience_validate(
                name=data.get("name") or "",
                kind=data.get("kind") or "",
                value=data.get("value") or "",
                instance=self.instance if self.instance.pk else None,
            )
            if self.csv_content is not None:
                if data.get("kind") != AudienceKind.LIST:
                    raise BatchError(
                        "INVALID_AUDIENCE", "only a list audience takes a CSV", "csv_file"
                    )
                entries = csv_upload_entries(self.csv_content)
                if not csv_users(entries).exists():
                    raise BatchError(
                        "INVALID_AUDIENCE", "no user matches the CSV's entries", "csv_file"
                    )
        except BatchError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, f"{exc.message} [{exc.code}]")
        return data


class TopicSubscriptionInline(NPTabularInline):
    model = TopicSubscription
    fields = ("user", "created_at")
    readonly_fields = fields
    can_delete = True
    max_num = 0
    show_change_link = False


@admin.register(Audience)
class AudienceAdmin(NPModelAdmin):
    form = AudienceForm
    list_display = ("name", "kind", "value", "recipients", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "value", "description")
    readonly_fields = ("recipients", "created_by", "created_at", "updated_at")
    inlines = (TopicSubscriptionInline,)

    @admin.display(description="recipients now")
    def recipients(self, obj: Audience) -> int | str:
        return saved_audience_users(obj).count() if obj.pk else "—"

    def save_model(self, request: HttpRequest, obj: Audience, form: Any, change: bool) -> None:
        data = form.cleaned_data  # checked by AudienceForm.clean with the same rules
        saved = audience_save(
            name=data["name"],
            kind=data["kind"],
            value=data.get("value") or "",
            description=data.get("description") or "",
            created_by=request.user if isinstance(request.user, User) else None,
            instance=obj if change else None,
        )
        obj.pk = saved.pk
        if form.csv_content is not None:
            counts = audience_members_from_csv(saved, form.csv_content)
            self.message_user(
                request,
                f"{counts['members']} member(s) from {counts['entries']} CSV entries "
                f"({counts['unmatched']} unmatched)",
            )


@admin.register(Broadcast)
class BroadcastAdmin(NPModelAdmin):
    list_display = (
        "id",
        "name",
        "audience",
        "template_key",
        "workflow_key",
        "status",
        "starts_at",
        "job_link",
        "progress",
    )
    list_filter = ("status",)
    search_fields = ("name", "template_key", "workflow_key", "cancellation_key")
    list_select_related = ("audience", "job")
    actions = ("cancel_broadcasts",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return tuple(f.name for f in self.model._meta.concrete_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API or the start-a-batch form

    @admin.display(description="job")
    def job_link(self, obj: Broadcast) -> str:
        if obj.job_id is None:
            return "—"
        url = reverse("admin:campaigns_notificationbatchjob_change", args=[obj.job_id])
        return format_html('<a href="{}">#{}</a>', url, obj.job_id)

    @admin.display(description="progress")
    def progress(self, obj: Broadcast) -> str:
        if obj.job is None:
            return "—"
        return f"{obj.job.progress_percent:.1f} % ({obj.job.status})"

    @admin.action(description="Cancel selected broadcasts")
    def cancel_broadcasts(self, request: HttpRequest, queryset: QuerySet) -> None:
        for broadcast in queryset.exclude(status=BroadcastStatus.CANCELLED):
            try:
                broadcast_cancel(broadcast.pk)
            except BatchError as exc:
                self.message_user(request, f"#{broadcast.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"broadcast #{broadcast.pk} cancelled")
