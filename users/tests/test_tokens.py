"""API tokens from the command line: ``manage.py create_token``."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from users.models import ApiToken
from users.services import token_authenticate

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def test_create_token_prints_the_secret_once_and_stores_its_hash(user):
    out, err = io.StringIO(), io.StringIO()

    call_command("create_token", "ALICE@example.test", "--name", "ci", stdout=out, stderr=err)

    raw = out.getvalue().strip()
    assert out.getvalue().count("\n") == 1
    token = ApiToken.objects.get()
    assert (token.user_id, token.name, token.is_service) == (user.pk, "ci", False)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in err.getvalue()
    assert token_authenticate(raw).pk == token.pk


def test_service_flag_makes_a_service_token(user):
    call_command(
        "create_token",
        user.email,
        "--name",
        "backend",
        "--service",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    assert ApiToken.objects.get().is_service is True


def test_unknown_user_is_an_error_and_creates_nothing(db):
    with pytest.raises(CommandError, match="USER_NOT_FOUND: no user with email 'nobody@x.test'"):
        call_command("create_token", "nobody@x.test", "--name", "ci")

    assert ApiToken.objects.count() == 0


def test_unknown_user_exits_non_zero_with_one_line(db):
    """As a user runs it: a real process against the test database."""
    db = settings.DATABASES["default"]  # at test time: pytest-django's test database
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }

    result = subprocess.run(
        [sys.executable, str(MANAGE), "create_token", "nobody@x.test", "--name", "ci"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "CommandError: USER_NOT_FOUND: no user with email 'nobody@x.test'"
    ]
