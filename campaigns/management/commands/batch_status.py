"""``manage.py batch_status [id]``: a table of recent jobs, or one job's details."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.errors import BatchError
from campaigns.progress import progress_line, quiet_closed_pipe
from campaigns.selectors import batch_delivery_breakdown, batch_job_list, batch_progress
from campaigns.services import batch_get


class Command(BaseCommand):
    help = "Show batch jobs (a table) or one job's progress, errors and deliveries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", nargs="?", help="a job id for its details")
        parser.add_argument("--status", help="filter the table by status")
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--json", action="store_true")

    def execute(self, *args: Any, **options: Any) -> Any:
        with quiet_closed_pipe(self.stdout):
            return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["id"]:
            try:
                job = batch_get(options["id"])
            except BatchError as exc:
                raise CommandError(exc.one_line(), returncode=2) from None
            p = batch_progress(job)
            p["deliveries"] = batch_delivery_breakdown(job)
            p["config"] = job.job_config
            if options["json"]:
                self.stdout.write(json.dumps(p))
                return
            self.stdout.write(f"job {job.pk}: {job.job_name} ({job.job_type})")
            self.stdout.write("  " + progress_line(p))
            self.stdout.write(f"  chunks: {p['chunks_done']}/{p['chunks_total']} done; "
                              f"started {p['started_at']}, completed {p['completed_at']}")
            self.stdout.write(f"  config: {json.dumps(job.job_config)}")
            if p["deliveries"]:
                parts = ", ".join(f"{k} {v}" for k, v in sorted(p["deliveries"].items()))
                self.stdout.write(f"  deliveries: {parts}")
            if p["errors"]:
                self.stdout.write("  errors:")
                for code, entry in p["errors"].items():
                    self.stdout.write(f"    {code:<28} {entry['count']:>8}  {entry['message']}")
            return
        jobs = list(batch_job_list(status=options["status"])[: options["limit"]])
        if options["json"]:
            self.stdout.write(json.dumps([batch_progress(job) for job in jobs]))
            return
        header = (f"{'id':>6}  {'type':<16} {'status':<10} {'processed':>10} {'total':>8} "
                  f"{'ok':>8} {'failed':>7}  name")
        self.stdout.write(header)
        for job in jobs:
            self.stdout.write(
                f"{job.pk:>6}  {job.job_type:<16} {job.status:<10} "
                f"{job.processed_notifications:>10} {job.total_notifications:>8} "
                f"{job.successful_notifications:>8} {job.failed_notifications:>7}  {job.job_name}"
            )
