"""Workflows as data (issue 18): a workflow, its versions, runs and run steps.

* ``workflows`` — a trigger key (``outbid``, ``auction_ending``, any name clients use), a name
  and whether triggers start runs.
* ``workflow_versions`` — the ordered list of steps (JSON, validated on save by
  ``campaigns.services.workflows.spec``). Editing a workflow adds a version; a run keeps the
  version it started with.
* ``workflow_runs`` — one instance per recipient and trigger: the trigger data, state, the
  current step, a cancellation key and an idempotency key.
* ``workflow_run_steps`` — one row per step a run reached: state, ``due_at`` (the dispatcher
  picks up waiting rows whose time has come, ``FOR UPDATE SKIP LOCKED``), times, the decision
  and the notification/delivery ids it produced. A step's work and its ``done`` mark commit in
  one transaction, so a worker killed mid-step leaves the step to be run again, never twice.
* ``workflow_digests`` — an open digest window per (workflow, user, digest key): the items
  collected so far and the run step that will continue with them.
* ``workflow_trigger_requests`` — API ``Idempotency-Key`` ledger per caller.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models

from notifyplatform.db import choices_check


class Workflow(models.Model):
    id = models.BigAutoField(primary_key=True)
    key = models.SlugField(max_length=100, unique=True, help_text="The trigger key")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workflows"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class WorkflowVersion(models.Model):
    id = models.BigAutoField(primary_key=True)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    steps = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = "workflow_versions"
        ordering = ["workflow_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "version"], name="workflow_versions_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.version}"


class RunState(models.TextChoices):
    WAITING = "waiting", "Waiting"  # its current step waits for its due time
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class WorkflowRun(models.Model):
    id = models.BigAutoField(primary_key=True)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflow_runs"
    )
    data = models.JSONField(default=dict, blank=True)
    # what steps add for later steps' templates (a digest's digest_count, digest_items, ...)
    variables = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.WAITING)
    step_index = models.PositiveIntegerField(default=0)
    decision = models.CharField(max_length=50, blank=True, default="")
    cancellation_key = models.CharField(max_length=255, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    send_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "workflow_runs"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["cancellation_key"], name="workflow_runs_cancel_key"),
            models.Index(fields=["user", "-id"], name="workflow_runs_user"),
        ]
        constraints = [choices_check("state", RunState, "workflow_runs_state_valid")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.workflow_id}"


class StepState(models.TextChoices):
    WAITING = "waiting", "Waiting"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class WorkflowRunStep(models.Model):
    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    step_type = models.CharField(max_length=20)
    state = models.CharField(max_length=20, choices=StepState.choices, default=StepState.WAITING)
    due_at = models.DateTimeField()
    # the dispatcher's lease: a claimed step is not handed out again until it lapses
    leased_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # throttle / digest: the per-user key the step counted or collected under
    group_key = models.CharField(max_length=255, blank=True, default="")
    decision = models.CharField(max_length=50, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    notification_ids = models.JSONField(default=list, blank=True)
    delivery_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "workflow_run_steps"
        ordering = ["run_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="workflow_run_steps_uniq"),
            choices_check("state", StepState, "workflow_run_steps_state_valid"),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="workflow_run_steps_due",
                condition=models.Q(state="waiting"),
            ),
            models.Index(
                fields=["step_type", "group_key", "finished_at"],
                name="workflow_run_steps_group",
                condition=models.Q(decision="passed"),
            ),
            # a read/click/ack finds the waiting escalations about its notification
            GinIndex(
                fields=["notification_ids"],
                name="workflow_run_steps_escalating",
                condition=models.Q(state="waiting", step_type="escalate"),
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.index} ({self.step_type})"


class WorkflowDigest(models.Model):
    """An open digest window. ``leader`` is the run step that continues once with the items;
    later triggers append to ``items`` (up to the step's cap; ``count`` counts all)."""

    id = models.BigAutoField(primary_key=True)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    step_index = models.PositiveIntegerField()
    digest_key = models.CharField(max_length=255, blank=True, default="")
    is_open = models.BooleanField(default=True)
    leader = models.ForeignKey(
        WorkflowRunStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    items = models.JSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField()
    due_at = models.DateTimeField()
    max_due_at = models.DateTimeField()

    class Meta:
        db_table = "workflow_digests"
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "user", "step_index", "digest_key"],
                condition=models.Q(is_open=True),
                name="workflow_digests_one_open",
            )
        ]


class WorkflowTriggerRequest(models.Model):
    """An API ``Idempotency-Key`` (scoped to the caller) and the runs its request started."""

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    run_ids = models.JSONField(default=list)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "workflow_trigger_requests"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="workflow_trigger_requests_uniq")
        ]
