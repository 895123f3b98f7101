"""Workflows in the admin (registered by ``campaigns.admin``): edit a workflow's steps as
JSON (validated by the same code as the API; a change adds a version), browse its versions,
and watch runs with their steps, states, times and decisions; cancel runs."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from notifyplatform.admin_utils import NPModelAdmin, NPTabularInline, ReadOnlyModelAdmin

from ..models import Workflow, WorkflowRun, WorkflowRunStep, WorkflowVersion
from ..services.workflows import (
    WorkflowError,
    runs_cancel,
    steps_validate,
    workflow_current_version,
    workflow_save,
)


class WorkflowForm(forms.ModelForm):
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100, "style": "font-family:monospace"}),
        help_text="The ordered steps as JSON (README 'Workflows'). Saving a change adds a"
        " version; running instances keep theirs.",
    )

    class Meta:
        model = Workflow
        fields = ["key", "name", "description", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            current = workflow_current_version(self.instance)
            self.fields["steps"].initial = json.dumps(current.steps if current else [], indent=2)
            self.fields["key"].disabled = True

    def clean_steps(self) -> list[dict[str, Any]]:
        try:
            steps = json.loads(self.cleaned_data["steps"])
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from exc
        try:
            return steps_validate(steps)
        except WorkflowError as exc:
            raise forms.ValidationError(f"{exc.field}: {exc.message}") from exc


class VersionInline(NPTabularInline):
    model = WorkflowVersion
    fields = ["version", "steps", "created_at", "created_by"]
    readonly_fields = ["version", "steps", "created_at", "created_by"]
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(NPModelAdmin):
    form = WorkflowForm
    list_display = ["key", "name", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["key", "name"]
    inlines = [VersionInline]

    def save_model(self, request: HttpRequest, obj: Workflow, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = workflow_save(
            key=obj.key,
            name=data["name"],
            description=data.get("description") or "",
            is_active=data.get("is_active"),
            steps=data["steps"],
            by=request.user,
            create=not change,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()


class RunStepInline(NPTabularInline):
    model = WorkflowRunStep
    readonly_fields = [
        "index",
        "step_type",
        "state",
        "decision",
        "due_at",
        "started_at",
        "finished_at",
        "attempts",
        "detail",
        "notification_ids",
    ]
    fields = list(readonly_fields)
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "workflow", "user", "state", "decision", "step_index", "created_at"]
    list_filter = ["state", "workflow"]
    search_fields = ["cancellation_key", "user__email"]
    list_select_related = ["workflow", "user"]
    inlines = [RunStepInline]
    actions = ["cancel_runs"]

    @admin.action(description="Cancel the selected runs (their waiting steps never run)")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        count = runs_cancel(list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"Cancelled {count} run(s).")
