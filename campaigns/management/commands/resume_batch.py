"""``manage.py resume_batch <id>``: re-enqueue a job's unfinished chunks."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.errors import BatchError
from campaigns.progress import follow
from campaigns.services import batch_resume, batch_run_inline


class Command(BaseCommand):
    help = "Resume a batch job whose workers died, or that was cancelled."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id")
        parser.add_argument("--inline", action="store_true",
                            help="run the remaining chunks in this process")
        wait = parser.add_mutually_exclusive_group()
        wait.add_argument("--wait", dest="wait", action="store_true", default=None)
        wait.add_argument("--no-wait", dest="wait", action="store_false")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            job, count = batch_resume(options["id"], enqueue=not options["inline"])
        except BatchError as exc:
            raise CommandError(exc.one_line(), returncode=2) from None
        self.stdout.write(f"job {job.pk} {job.status}: {count} unfinished chunks "
                          f"{'to run here' if options['inline'] else 're-enqueued'}")
        if options["inline"]:
            batch_run_inline(job.pk)
        wait = options["wait"] if options["wait"] is not None else self.stdout.isatty()
        if wait or options["inline"]:
            figures = follow(job.pk, self.stdout, tty=self.stdout.isatty())
            if figures["status"] != "completed":
                sys.exit(1)
