"""``manage.py seed_demo``: a small, realistic data set for the admin, the API and demos.

Safe to run any number of times: a second run creates nothing (see ``demo.seed``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from demo.seed import DEMO_PASSWORD, seed_demo


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
