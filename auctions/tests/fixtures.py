"""Fixtures shared by the event-source tests (auctions and invitations): providers in
the registry and a real SMTP server on loopback. Imported by both apps' conftest."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest


class _SmtpHandler:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on a free loopback port."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.host = "127.0.0.1"
        self.handler = _SmtpHandler()
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=policy.default)
            for e in self.handler.envelopes
        ]

    def messages_to(self, address: str) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=policy.default)
            for e in self.handler.envelopes
            if address in e.rcpt_tos
        ]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def channel_providers(db, smtp_server):
    """One enabled provider per channel the event sources use: in-app (local), email
    through the loopback SMTP server. No push provider: users here have no device."""
    from providers.models import Provider

    in_app = Provider.objects.create(
        provider_name="in-app-test", provider_type="in_app", provider_class="in_app", priority=1
    )
    smtp = Provider.objects.create(
        provider_name="smtp-test", provider_type="email", provider_class="smtp", priority=1,
        configuration={
            "host": smtp_server.host, "port": smtp_server.port,
            "from_email": "notifyplatform <noreply@notify.test>",
        },
    )
    return {"in_app": in_app, "email": smtp}


@pytest.fixture(autouse=True)
def template_catalogue(request):
    """The shipped template catalogue, present in every database test.

    It is data from a migration, and a ``transactional_db`` test's flush deletes it
    for every test after it (and, with ``--reuse-db``, for later runs too).
    """
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db"} & set(request.fixturenames)
    )
    if not uses_db:
        return
    request.getfixturevalue("_django_db_helper")
    from templates.catalog import catalogue_rows
    from templates.models import NotificationTemplate

    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**row) for row in catalogue_rows() if row["template_key"] not in existing]
    )


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Test users need no real password hashing (PBKDF2 costs ~1 s per user)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
