"""Security settings and limits of issue 15 that need no server process: /metrics access,
login and token brute-force limits, deploy-grade settings."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_need_a_token_or_staff_unless_this_is_a_local_run(client, settings, staff_user):
    settings.NP_METRICS_TOKEN = ""
    settings.NP_LOCAL_RUN = False
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    settings.NP_LOCAL_RUN = True  # `make run` with local or embedded services
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403

    settings.NP_LOCAL_RUN = False
    settings.NP_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cre").status_code == 403
    # a non-ASCII token is a refusal, not a TypeError in compare_digest (a 500)
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer sécret").status_code == 403
    client.force_login(staff_user)
    assert client.get("/metrics").status_code == 200


# --- brute force: admin logins (django-axes) and API tokens ------------------------


def _login(client, email, password, address):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": email, "password": password},
        REMOTE_ADDR=address,
    )


def _logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_60_wrong_admin_passwords_then_the_right_one_does_not_log_in(client, staff_user):
    for _ in range(60):
        response = _login(client, staff_user.email, "wrong-password", "198.51.100.10")
        assert response.status_code in (200, 429)  # the form again, then locked out
    assert response.status_code == 429

    response = _login(client, staff_user.email, "pw-for-tests-1", "198.51.100.10")

    assert response.status_code == 429
    assert not _logged_in(client)


def test_an_account_is_locked_whatever_the_address(client, staff_user, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        login = staff_user.email.upper() if n % 2 else staff_user.email  # case is no escape
        _login(client, login, "wrong-password", f"198.51.100.{20 + n}")
    response = _login(client, staff_user.email, "pw-for-tests-1", "203.0.113.50")
    assert response.status_code == 429
    assert not _logged_in(client)


def test_an_address_is_locked_whatever_the_account(client, make_user, settings):
    victim = make_user(is_staff=True)
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"guess{n}@example.test", "wrong-password", "198.51.100.30")
    assert _login(client, victim.email, "pw-for-tests-1", "198.51.100.30").status_code == 429
    assert not _logged_in(client)
    # the same account from another address is fine
    assert _login(client, victim.email, "pw-for-tests-1", "198.51.100.31").status_code == 302
    assert _logged_in(client)


def test_a_few_wrong_passwords_do_not_lock_anyone_out(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, staff_user.email, "nope", "198.51.100.40").status_code == 200
    assert _login(client, staff_user.email, "pw-for-tests-1", "198.51.100.40").status_code == 302


def test_token_brute_force_from_one_address_gets_429_with_retry_after(api_client, user, settings):
    from django.core.cache import cache

    from users.lockout import KEY
    from users.services import token_create

    settings.NP_TOKEN_FAILURE_LIMIT = 20
    settings.NP_TOKEN_FAILURE_WINDOW_SECONDS = 900
    good = token_create(user=user, name="t")[1]
    address = "198.51.100.77"
    try:
        for n in range(20):
            response = api_client.get(
                "/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer np_guess{n:04d}", REMOTE_ADDR=address
            )
            assert response.status_code == 401, n
        guessed = api_client.get(
            "/api/v1/me/", HTTP_AUTHORIZATION="Bearer np_guess9999", REMOTE_ADDR=address
        )
        assert guessed.status_code == 429
        assert guessed.json()["error"]["code"] == "THROTTLED"
        assert 800 <= int(guessed["Retry-After"]) <= 900
        # even the right token: the guesser learns nothing from this address now
        right = api_client.get(
            "/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {good}", REMOTE_ADDR=address
        )
        assert right.status_code == 429
        # others are not affected, and X-Forwarded-For does not make a new address
        elsewhere = api_client.get(
            "/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {good}", REMOTE_ADDR="198.51.100.78"
        )
        assert elsewhere.status_code == 200
        spoofed = api_client.get(
            "/api/v1/me/",
            HTTP_AUTHORIZATION=f"Bearer {good}",
            REMOTE_ADDR=address,
            HTTP_X_FORWARDED_FOR="192.0.2.1",
        )
        assert spoofed.status_code == 429
    finally:
        cache.delete_many([KEY.format(address), f"{KEY.format(address)}:since"])


# --- deploy-grade settings ---------------------------------------------------------


def _check_deploy(**env: str):
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    child = {k: v for k, v in os.environ.items() if not k.startswith(("NP_HTTPS", "DEBUG"))}
    child.pop("PYTEST_XDIST_WORKER", None)
    child.update(SECRET_KEY=secrets.token_urlsafe(50), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parents[2],
        env=child,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.e2e
def test_check_deploy_is_clean_with_np_https_and_warns_without():
    with_https = _check_deploy(NP_HTTPS="1")
    assert with_https.returncode == 0, with_https.stdout + with_https.stderr
    assert "System check identified no issues" in with_https.stdout

    without = _check_deploy()
    assert without.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in without.stderr + without.stdout


def test_pages_carry_a_content_security_policy_with_a_per_response_nonce(client, staff_user):
    import re

    demo = client.get("/realtime/demo/")
    policy = demo["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
    nonce = re.search(r"'nonce-([^']+)'", directives["script-src"]).group(1)
    assert directives["script-src"] == f"'self' 'nonce-{nonce}'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    # the demo's scripts carry this response's nonce; the next response has another
    assert f'<script nonce="{nonce}" src="/static/demo/board.js">' in demo.content.decode()
    assert nonce not in client.get("/realtime/demo/")["Content-Security-Policy"]

    client.force_login(staff_user)
    for path in ("/admin/", "/admin/dashboard/", "/api/v1/docs/", "/i/nope/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert re.search(r"script-src 'self'( 'nonce-[^']+')?(;|$)", policy), (path, policy)
        assert "unsafe" not in policy.split("script-src")[1].split(";")[0]
    docs = client.get("/api/v1/docs/").content.decode()
    assert "<script>" not in docs  # Swagger UI starts from a script file, not inline


def test_the_launcher_marks_only_local_and_embedded_runs(tmp_path, monkeypatch):
    from notifyplatform.launcher.appenv import child_env
    from notifyplatform.launcher.services import ServiceSet

    monkeypatch.delenv("NP_LOCAL_RUN", raising=False)
    local = ServiceSet(modes={"database": "local", "redis": "embedded"}, urls={}, rundir=tmp_path)
    assert child_env(local, 8000)["NP_LOCAL_RUN"] == "1"
    configured = ServiceSet(
        modes={"database": "configured", "redis": "local"},
        urls={"DATABASE_URL": "postgres://db.internal/prod"},
        rundir=tmp_path,
    )
    assert "NP_LOCAL_RUN" not in child_env(configured, 8000)
