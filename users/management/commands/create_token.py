"""``manage.py create_token <email> --name NAME [--service]``: print a new API token once.

The secret is printed to stdout and nowhere else (only its SHA-256 is stored), so the
output can be piped straight into a secret store: ``create_token ... > token.txt``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from users.models import User
from users.services import token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print its secret (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="The token's user")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'ci'")
        parser.add_argument(
            "--service",
            action="store_true",
            help="A service token may send notifications to any user (server-to-server)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"USER_NOT_FOUND: no user with email {email!r}")
        name = options["name"].strip()
        if not name:
            raise CommandError("INVALID_NAME: --name must not be empty")
        token, raw = token_create(user=user, name=name, is_service=options["service"])
        kind = "service token" if token.is_service else "token"
        self.stderr.write(
            f"Created {kind} {token.name!r} for {user.email} (id {token.pk}). "
            "The secret below is not stored and will not be shown again:"
        )
        self.stdout.write(raw)
