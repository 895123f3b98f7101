"""Batch jobs in the admin: start one (a form validated by the same code as ``run_batch``),
watch running jobs (progress bars refreshed from a small JSON endpoint), cancel and resume,
and open a job's failed deliveries (a ``batch_job`` filter on the delivery changelist).

The delivery changelist's ``batch_job`` filter is added to the admin ``deliveries``
registered (looked up on the admin site, not imported: no app imports another's admin).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from deliveries.models import NotificationDelivery
from notifyplatform.admin_utils import NPModelAdmin, ReadOnlyModelAdmin
from notifyplatform.choices import Channel, InvitationType

from . import admin_workflows  # noqa: F401 - registers the workflow admin
from .audience import AUDIENCE_HELP
from .errors import BatchError
from .models import BatchChunk, BatchJobStatus, BatchJobType, NotificationBatchJob
from .selectors import batch_job_deliveries, batch_progress
from .services import batch_cancel, batch_create, batch_plan, batch_resume, batch_validate


class BatchStartForm(forms.Form):
    job_type = forms.ChoiceField(choices=BatchJobType.choices)
    invitation_type = forms.ChoiceField(
        choices=[("", "—"), *InvitationType.choices], required=False
    )
    article = forms.IntegerField(required=False, help_text="news article id (news_feed)")
    story = forms.IntegerField(required=False, help_text="story id (story_collaboration)")
    roleplay_template = forms.IntegerField(required=False)
    role = forms.IntegerField(required=False, help_text="character role id (roleplay)")
    audience = forms.CharField(required=False, help_text=AUDIENCE_HELP)
    channels = forms.MultipleChoiceField(
        choices=[c for c in Channel.choices if c[0] != Channel.WEBHOOK],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none: the invitation default (email)",
    )
    name = forms.CharField(required=False, max_length=255)
    chunk_size = forms.IntegerField(required=False, min_value=1)
    message = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    older_than = forms.IntegerField(
        required=False,
        min_value=0,
        initial=30,
        help_text="cleanup: websocket rows older than N days",
    )
    dry_run = forms.BooleanField(required=False, help_text="only count; create nothing")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.spec = batch_validate(
                data["job_type"],
                invitation_type=data.get("invitation_type") or None,
                article=data.get("article"),
                story=data.get("story"),
                roleplay_template=data.get("roleplay_template"),
                role=data.get("role"),
                audience=data.get("audience"),
                channels=data.get("channels") or None,
                name=data.get("name"),
                chunk_size=data.get("chunk_size"),
                inviter=self.inviter,
                message=data.get("message") or "",
                older_than_days=30 if data.get("older_than") is None else data["older_than"],
            )
            self.plan = batch_plan(self.spec)
        except BatchError as exc:
            field = {"older_than_days": "older_than"}.get(exc.field or "", exc.field)
            message = f"{exc.message} [{exc.code}]"
            if field in self.fields:
                self.add_error(field, message)
            else:
                self.add_error(None, message)
        return data

    inviter: Any = None


class BatchJobFilter(admin.SimpleListFilter):
    """Deliveries of one batch job (``?batch_job=<id>``)."""

    title = "batch job"
    parameter_name = "batch_job"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        jobs = NotificationBatchJob.objects.filter(
            job_type__in=[BatchJobType.INVITATION_BATCH, BatchJobType.REMINDER_BATCH]
        ).order_by("-created_at")[:20]
        return [(str(job.pk), f"#{job.pk} {job.job_name}"[:60]) for job in jobs]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        job = NotificationBatchJob.objects.filter(pk=int(value) if value.isdigit() else 0).first()
        if job is None:
            return queryset.none()
        return queryset.filter(pk__in=batch_job_deliveries(job).values("pk"))


# deliveries' admin is registered first (INSTALLED_APPS order); extend it with the filter
_DeliveryAdmin = type(admin.site.get_model_admin(NotificationDelivery))
admin.site.unregister(NotificationDelivery)


@admin.register(NotificationDelivery)
class BatchAwareDeliveryAdmin(_DeliveryAdmin):  # type: ignore[valid-type,misc]
    list_filter = (*_DeliveryAdmin.list_filter, BatchJobFilter)


class ChunkInline(admin.TabularInline):
    model = BatchChunk
    fields = (
        "index",
        "status",
        "processed",
        "successful",
        "failed",
        "attempts",
        "last_error",
        "finished_at",
    )
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    ordering = ("index",)
    classes = ("collapse",)


@admin.register(NotificationBatchJob)
class BatchJobAdmin(NPModelAdmin):
    change_list_template = "admin/campaigns/notificationbatchjob/change_list.html"
    list_display = (
        "id",
        "job_name",
        "job_type",
        "invitation_type",
        "status",
        "progress",
        "total_notifications",
        "successful_notifications",
        "failed_notifications",
        "failed_deliveries",
        "started_at",
        "completed_at",
    )
    list_filter = ("status", "job_type", "invitation_type")
    search_fields = ("job_name", "error_summary")
    date_hierarchy = "created_at"
    readonly_fields = (
        "job_type",
        "invitation_type",
        "status",
        "total_notifications",
        "processed_notifications",
        "successful_notifications",
        "failed_notifications",
        "job_config",
        "error_summary",
        "started_at",
        "completed_at",
    )
    actions = ("cancel_jobs", "resume_jobs")
    inlines = (ChunkInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are started with the "start a batch" form, never typed in

    @admin.display(description="progress")
    def progress(self, obj: NotificationBatchJob) -> str:
        return format_html(
            '<progress class="np-batch-progress" data-job="{}" data-running="{}" max="100" '
            'value="{}" style="width:8em"></progress> <span class="np-batch-pct">{} %</span>',
            obj.pk,
            "1" if obj.status in (BatchJobStatus.PENDING, BatchJobStatus.RUNNING) else "",
            obj.progress_percent,
            f"{obj.progress_percent:.1f}",
        )

    @admin.display(description="failed deliveries")
    def failed_deliveries(self, obj: NotificationBatchJob) -> str:
        if obj.job_type == BatchJobType.CLEANUP_BATCH:
            return "—"
        url = reverse("admin:deliveries_notificationdelivery_changelist")
        return format_html(
            '<a href="{}?batch_job={}&amp;status__exact=failed">failed</a>', url, obj.pk
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("start/", view(self.start_view), name="campaigns_batch_start"),
            path(
                "<int:job_id>/progress.json",
                view(self.progress_view),
                name="campaigns_batch_progress",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, job_id: int) -> JsonResponse:
        job = get_object_or_404(NotificationBatchJob, pk=job_id)
        return JsonResponse(batch_progress(job))

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        plan = None
        if request.method == "POST":
            form = BatchStartForm(request.POST)
            form.inviter = request.user
            if form.is_valid():
                if form.cleaned_data.get("dry_run"):
                    plan = form.plan
                else:
                    try:
                        job = batch_create(form.spec, plan=form.plan)
                    except BatchError as exc:
                        form.add_error(None, f"{exc.message} [{exc.code}]")
                    else:
                        self.message_user(request, f"Batch job {job.pk} started: {job.job_name}")
                        return HttpResponseRedirect(
                            reverse("admin:campaigns_notificationbatchjob_changelist")
                        )
        else:
            form = BatchStartForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Start a batch",
            "form": form,
            "plan": plan,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request, "admin/campaigns/notificationbatchjob/start.html", context
        )

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        for job in queryset:
            try:
                batch_cancel(job.pk)
            except BatchError as exc:
                self.message_user(request, f"job {job.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"job {job.pk} cancelled")

    @admin.action(description="Resume selected jobs")
    def resume_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        for job in queryset:
            try:
                _, count = batch_resume(job.pk)
            except BatchError as exc:
                self.message_user(request, f"job {job.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"job {job.pk} resumed: {count} chunks re-enqueued")


@admin.register(BatchChunk)
class BatchChunkAdmin(ReadOnlyModelAdmin):
    """Browse a job's chunks (the resumable units of work); written only by the runner."""

    list_display = (
        "id",
        "job",
        "index",
        "status",
        "processed",
        "successful",
        "failed",
        "attempts",
        "finished_at",
    )
    list_filter = ("status",)
    list_select_related = ("job",)
    search_fields = ("job__job_name",)
    raw_id_fields = ("job",)
