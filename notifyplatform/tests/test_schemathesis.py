"""Schemathesis against the live API: no server error, no response outside the schema.

A real HTTP server (pytest-django's ``live_server``) on loopback serves ``/api/v1/``; the
``schemathesis`` CLI (pinned in requirements-dev) loads ``/api/v1/schema/`` from it and
runs every check (``--checks all``) as a staff user holding a service token, so staff-only
and sending endpoints are exercised too. ``schemathesis.toml`` next to this file says why
a 400 for a schema-valid but rule-breaking body is accepted.

The token's id is moved far away from the small ids Schemathesis guesses, and revoking the
calling token is refused (TOKEN_IN_USE), so the run cannot lock itself out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# The CLI through this interpreter (no console script looked up next to it: any virtualenv).
SCHEMATHESIS = [
    sys.executable,
    "-c",
    "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
]


@pytest.fixture
def service_token(transactional_db, make_user) -> str:
    from users.models import ApiToken
    from users.services import token_create

    staff = make_user(email="schemathesis@example.test", is_staff=True)
    token, raw = token_create(user=staff, name="schemathesis", is_service=True)
    ApiToken.objects.filter(pk=token.pk).update(id=987_654_321)
    return raw


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server, service_token, settings, tmp_path
):
    # Given the API with throttles high enough for a fuzzing run
    settings.NP_THROTTLE_RATES = {"user": "100000/min", "token": "100000/min", "anon": "100000/min"}
    # ... and the failed-token lockout too: its invalid-credential checks on every operation
    # are not a brute force (test_security.py tests the lockout)
    settings.NP_TOKEN_FAILURE_LIMIT = 100_000
    # When schemathesis runs every check against the schema
    result = subprocess.run(
        [
            *SCHEMATHESIS,
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{live_server.url}/api/v1/schema/",
            "--header",
            f"Authorization: Bearer {service_token}",
            "--checks",
            "all",
            "--max-examples",
            "15",
            # Random fuzzing of every operation, then stateful sequences through links.
            # The deterministic "coverage" phase (every boundary of every parameter) takes
            # several minutes, too long for `make test`; nothing runs it automatically. The
            # README's Testing section shows how to run it by hand against `make run`.
            "--phases",
            "fuzzing,stateful",
            "--workers",
            "4",
            "--seed",
            "8",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    # Then it finds nothing
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "selected /" in result.stdout
