"""The "start a batch" form: one form for every job type, validated by the same code as
``run_batch`` (``batch_validate``), so the admin and the command refuse the same things with
the same messages.

The fields are grouped in fieldsets by the job types they serve (``FIELDSETS``); a small
script shows only the selected type's groups, and without it every group shows with the
types it serves in its legend — the form works either way. The audience is a saved
audience (picker), an ad-hoc filter, or an uploaded CSV of emails/user ids; an upload is
saved as a ``list`` audience when the job starts (the job then names it)."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils import timezone

from notifyplatform.choices import Channel, InvitationType

from ..audience import AUDIENCE_HELP, csv_upload_entries
from ..errors import BatchError
from ..models import Audience, BatchJobType
from ..services import audience_members_from_csv, audience_save, batch_plan, batch_validate

SENDS = (BatchJobType.INVITATION_BATCH, BatchJobType.BROADCAST)

# (legend, job types, field names)
FIELDSETS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("Job", tuple(BatchJobType.values), ("job_type", "name", "chunk_size")),
    ("Template", (BatchJobType.BROADCAST,), ("template", "context")),
    (
        "Invitation",
        (BatchJobType.INVITATION_BATCH, BatchJobType.REMINDER_BATCH),
        ("invitation_type", "article", "story", "roleplay_template", "role", "message"),
    ),
    ("Audience", SENDS, ("saved_audience", "audience", "csv_file")),
    ("Channels", SENDS, ("channels",)),
    ("Cleanup", (BatchJobType.CLEANUP_BATCH,), ("older_than",)),
]


class BatchStartForm(forms.Form):
    job_type = forms.ChoiceField(choices=BatchJobType.choices)
    name = forms.CharField(required=False, max_length=255)
    chunk_size = forms.IntegerField(required=False, min_value=1)
    template = forms.CharField(
        required=False, help_text="a notification type (e.g. auction_started) or a row key"
    )
    context = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='the template\'s variables as a JSON object, e.g. {"auction_title": "…"}',
    )
    invitation_type = forms.ChoiceField(
        choices=[("", "—"), *InvitationType.choices], required=False
    )
    article = forms.IntegerField(required=False, help_text="news article id (news_feed)")
    story = forms.IntegerField(required=False, help_text="story id (story_collaboration)")
    roleplay_template = forms.IntegerField(required=False)
    role = forms.IntegerField(required=False, help_text="character role id (roleplay)")
    message = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    saved_audience = forms.ModelChoiceField(
        queryset=Audience.objects.order_by("name"),
        required=False,
        empty_label="—",
        help_text="a saved audience (Audiences in this admin)",
    )
    audience = forms.CharField(
        required=False, help_text=f"or an ad-hoc filter: {AUDIENCE_HELP}", label="Filter"
    )
    csv_file = forms.FileField(
        required=False,
        label="CSV upload",
        help_text="or a CSV file of emails and/or user ids (saved as a list audience)",
    )
    channels = forms.MultipleChoiceField(
        choices=[c for c in Channel.choices if c[0] != Channel.WEBHOOK],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none: the template's (or invitation's) default channels",
    )
    older_than = forms.IntegerField(
        required=False,
        min_value=0,
        initial=30,
        help_text="cleanup: websocket rows older than N days",
    )
    inviter: Any = None
    spec: Any = None
    plan: Any = None

    def fieldsets(self) -> list[dict[str, Any]]:
        labels = dict(BatchJobType.choices)
        return [
            {
                "legend": legend,
                "types": " ".join(types),
                "serves": ""
                if len(types) == len(BatchJobType.values)
                else ", ".join(str(labels[t]) for t in types),
                "fields": [self[name] for name in names],
            }
            for legend, types, names in FIELDSETS
        ]

    def _audience_text(self, data: dict[str, Any]) -> str | None:
        given = [name for name in ("saved_audience", "audience", "csv_file") if data.get(name)]
        if len(given) > 1:
            raise BatchError(
                "INVALID_AUDIENCE",
                "pick one audience: a saved one, a filter or a CSV upload",
                "audience",
            )
        if data.get("saved_audience"):
            return f"audience:{data['saved_audience'].pk}"
        upload = data.get("csv_file")
        if upload:
            return self._csv_audience(upload)
        return data.get("audience")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            audience = None
            if data["job_type"] in SENDS:
                audience = self._audience_text(data)
            self.spec = batch_validate(
                data["job_type"],
                invitation_type=data.get("invitation_type") or None,
                article=data.get("article"),
                story=data.get("story"),
                roleplay_template=data.get("roleplay_template"),
                role=data.get("role"),
                audience=audience,
                channels=data.get("channels") or None,
                name=data.get("name"),
                chunk_size=data.get("chunk_size"),
                inviter=self.inviter,
                message=data.get("message") or "",
                older_than_days=30 if data.get("older_than") is None else data["older_than"],
                template=data.get("template"),
                context=data.get("context"),
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

    def _csv_audience(self, upload: Any) -> str:
        """An uploaded CSV as a saved ``list`` audience. The view runs the form in a
        transaction it keeps only when the job starts: a preview or an invalid form leaves
        no audience behind. A bad file is an error on the upload field."""
        content = upload.read()
        csv_upload_entries(content)  # the file's own errors first, before anything is written
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
        name = f"CSV {upload.name} ({stamp}, {uuid.uuid4().hex[:6]})"[:150]
        audience = audience_save(name=name, kind="list", created_by=self.inviter)
        audience_members_from_csv(audience, content)
        return f"audience:{audience.pk}"
