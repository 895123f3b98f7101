"""``manage.py seed_demo``: a small, realistic data set for the admin, the API and demos.

Safe to run any number of times: a second run creates nothing (see ``demo.seed``).
"""

from __future__ import annotations

import shutil
from typing import Any

from django.core.management.base import BaseCommand

from demo.seed import DEMO_PASSWORD, seed_demo
from invitations.services import narration_enqueue, narration_status


class Command(BaseCommand):
    help = "Load a small demo data set (idempotent: a second run creates nothing)."

    def handle(self, *args: Any, **options: Any) -> None:
        seeder = seed_demo()
        created = sum(seeder.created.values())
        found = sum(seeder.found.values())
        self.stdout.write(
            self.style.SUCCESS(f"seed_demo: {created} rows created, {found} already present.")
        )
        if created:
            detail = ", ".join(f"{table} {n}" for table, n in sorted(seeder.created.items()))
            self.stdout.write(f"  created: {detail}")
        self.stdout.write(f"Demo users (password {DEMO_PASSWORD!r} when created by seed_demo):")
        for user in seeder.users.values():
            self.stdout.write(f"  {user.email:<26} {user.timezone:<20} {user.region}")
        self.queue_narrations(seeder.narrations)

    def queue_narrations(self, narrations: list[Any]) -> None:
        """Queue the demo narrations not rendered yet: a worker (``make run``) records them
        with espeak-ng. The seed itself needs neither espeak-ng nor a running worker."""
        for narration in narrations:
            status = narration_status(narration)
            if status not in ("pending", "failed"):
                self.stdout.write(f"Narration {narration.pk}: {status}.")
                continue
            try:
                narration_enqueue(narration_id=narration.pk)
            except Exception as exc:  # noqa: BLE001 - no broker: say so, the data stays
                self.stdout.write(
                    f"Narration {narration.pk}: not queued ({exc}); run seed_demo again "
                    "with the broker up to queue it."
                )
                continue
            self.stdout.write(
                f"Narration {narration.pk}: queued; a worker renders its audio with espeak-ng."
            )
            if shutil.which("espeak-ng") is None:
                self.stdout.write(
                    "  note: espeak-ng is not installed here (`make tts`); a worker without "
                    "it marks the narration failed, and the next seed_demo queues it again."
                )
