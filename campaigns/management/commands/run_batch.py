"""``manage.py run_batch <invitation_batch|reminder_batch|cleanup_batch|broadcast> [options]``.

``run_batch --template <key> --audience <audience>`` (job type ``broadcast`` implied) sends
any template to any audience — a saved one (``audience:<name or id>``) or an ad-hoc filter;
``--workflow <key>`` instead starts that workflow per recipient.

Bad arguments exit with status 2 and one line on stderr, and create no job. ``--dry-run``
prints the counts and a sample and writes nothing. The job runs on the Celery workers
(``--inline`` runs its chunks in this process instead); ``--wait`` follows its progress
(the default on a terminal). A followed job that ends with failures (or not completed)
exits 1 with a summary line; Ctrl-C stops following, not the job, and says how to follow
it again.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.audience import AUDIENCE_HELP
from campaigns.errors import BatchError
from campaigns.progress import follow, quiet_closed_pipe, sigint_deferred
from campaigns.services import batch_create, batch_plan, batch_run_inline, batch_validate


class Command(BaseCommand):
    help = (
        "Run a batch job: a template or invitations to an audience, due reminders, or cleanup."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "job_type",
            nargs="?",
            help="invitation_batch | reminder_batch | cleanup_batch | broadcast "
            "(default: broadcast with --template)",
        )
        parser.add_argument("--template", help="broadcast: template key (a type or a row key)")
        parser.add_argument(
            "--workflow", help="broadcast: a workflow key to start per recipient (not --template)"
        )
        parser.add_argument("--context", help="broadcast: the template's variables, JSON")
        parser.add_argument("--invitation-type", help="story_collaboration | news_feed | "
                            "roleplay_invitation")
        parser.add_argument("--article", help="news article id (news_feed)")
        parser.add_argument("--narration", help="news narration id (news_feed, optional)")
        parser.add_argument("--story", help="story id (story_collaboration)")
        parser.add_argument("--roleplay-template", help="roleplay template id")
        parser.add_argument("--role", help="roleplay character role id")
        parser.add_argument("--audience", help=AUDIENCE_HELP)
        parser.add_argument("--channels", help="comma-separated, e.g. email,in_app")
        parser.add_argument("--inviter", help="email or id of the inviting user "
                            "(default: the platform's batch sender)")
        parser.add_argument("--message", default="", help="personal message in the invitation")
        parser.add_argument("--expires-in-days", default=7)
        parser.add_argument("--older-than", default=30,
                            help="cleanup: prune disconnected websocket rows older than N days")
        parser.add_argument("--name", help="job name")
        parser.add_argument("--chunk-size", help="recipients per chunk (default 500)")
        parser.add_argument("--dry-run", action="store_true",
                            help="print counts and a sample; create nothing")
        parser.add_argument("--inline", action="store_true",
                            help="run the chunks in this process instead of on the workers")
        wait = parser.add_mutually_exclusive_group()
        wait.add_argument("--wait", dest="wait", action="store_true", default=None,
                          help="follow progress until the job is done (default on a TTY)")
        wait.add_argument("--no-wait", dest="wait", action="store_false")
        parser.add_argument("--json", action="store_true",
                            help="print the job's final figures as one JSON line")

    def execute(self, *args: Any, **options: Any) -> Any:
        with quiet_closed_pipe(self.stdout):
            return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sends = options["template"] or options["workflow"]
            job_type = options["job_type"] or ("broadcast" if sends else "")
            spec = batch_validate(
                job_type,
                template=options["template"],
                workflow=options["workflow"],
                context=options["context"],
                invitation_type=options["invitation_type"],
                article=options["article"],
                narration=options["narration"],
                story=options["story"],
                roleplay_template=options["roleplay_template"],
                role=options["role"],
                audience=options["audience"],
                channels=options["channels"],
                name=options["name"],
                chunk_size=options["chunk_size"],
                inviter=options["inviter"],
                message=options["message"],
                expires_in_days=options["expires_in_days"],
                older_than_days=options["older_than"],
            )
            plan = batch_plan(spec)
            if options["dry_run"]:
                self._print_plan(spec.name, spec.config(), plan)
                return
            job = batch_create(spec, plan=plan)
        except BatchError as exc:
            raise CommandError(exc.one_line(), returncode=2) from None
        wait = options["wait"]
        if wait is None:
            wait = self.stdout.isatty()
        try:
            if options["inline"]:
                # the chunks run here: Ctrl-C stops one mid-way (its transaction rolls back)
                self._started(job)
                batch_run_inline(job.pk)
                figures = follow(job.pk, self.stdout, tty=self.stdout.isatty())
            else:
                # the job is the workers': Ctrl-C only stops following, between two polls
                with sigint_deferred() as pressed:
                    self._started(job)
                    if not wait:
                        return
                    figures = follow(job.pk, self.stdout, tty=self.stdout.isatty(), stop=pressed)
        except KeyboardInterrupt:
            self.stderr.write("\n" + self._interrupted(job.pk, inline=options["inline"]))
            sys.exit(130)
        if options["json"]:
            self.stdout.write(json.dumps(figures))
        if figures["status"] != "completed" or figures["failed"]:
            raise CommandError(
                f"job {job.pk} {figures['status']} with {figures['failed']:,} of "
                f"{figures['total']:,} failed; `manage.py batch_status {job.pk}` shows why",
                returncode=1,
            )

    def _started(self, job: Any) -> None:
        self.stdout.write(
            f"job {job.pk} {job.status}: {job.job_name!r}, {job.total_notifications} items "
            f"in {job.chunks.count()} chunks"
        )

    @staticmethod
    def _interrupted(job_id: int, *, inline: bool) -> str:
        if inline:  # its chunks ran here: what is not done waits for a resume
            return (
                f"interrupted: job {job_id} stopped part-way; `manage.py resume_batch {job_id}` "
                f"runs the rest on the workers, `manage.py batch_status {job_id}` shows it"
            )
        return (
            f"interrupted: job {job_id} keeps running on the workers; follow it with "
            f"`manage.py batch_status {job_id}` (`manage.py cancel_batch {job_id}` stops it)"
        )

    def _print_plan(self, name: str, config: dict[str, Any], plan: Any) -> None:
        self.stdout.write(f"dry run — nothing created: {name!r}")
        self.stdout.write(f"  config: {json.dumps(config)}")
        self.stdout.write(f"  total: {plan.total}")
        for key, value in plan.notes.items():
            self.stdout.write(f"  {key}: {value}")
        self.stdout.write("  sample:" if plan.sample else "  sample: (none)")
        for line in plan.sample:
            self.stdout.write(f"    {line}")
