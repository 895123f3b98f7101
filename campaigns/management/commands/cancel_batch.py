"""``manage.py cancel_batch <id>``: stop a job; returns once its chunks in flight finished."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.errors import BatchError
from campaigns.services import batch_cancel


class Command(BaseCommand):
    help = "Cancel a pending or running batch job."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            job = batch_cancel(options["id"])
        except BatchError as exc:
            raise CommandError(exc.one_line(), returncode=2) from None
        self.stdout.write(
            f"job {job.pk} {job.status}: {job.processed_notifications}/"
            f"{job.total_notifications} processed"
        )
