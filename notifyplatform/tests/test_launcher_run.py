"""`make run` as a newcomer meets it, end to end: ``python -m notifyplatform.launcher run``
on a DATABASE_URL whose database does not exist yet; then, from a "second shell" with no
DATABASE_URL / REDIS_URL, the README's "Try it" (``manage.py create_token`` + a POST);
the demo's email through ``smtp-local`` over real SMTP to the launcher's sink and on the
admin's Caught mail page; Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from notifyplatform.mailsink import caught_mail
from notifyplatform.testing import two_free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("launcher-run")]

ROOT = Path(__file__).resolve().parents[2]


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class Run:
    """The launcher's `run` in a subprocess, its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "notifyplatform.launcher", "run"],
            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            assert self.proc.poll() is None, "\n".join(self.lines[-60:])
            time.sleep(0.1)
        raise AssertionError(f"no line {pattern!r}:\n" + "\n".join(self.lines[-60:]))


@pytest.fixture
def fresh_database_url():
    name = f"np_run_{uuid.uuid4().hex[:12]}"
    url = with_database(os.environ["DATABASE_URL"], name)
    yield url
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def second_shell(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` as typed in another terminal: no service URL in its environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "NP_REDIS_DB_ISOLATED")
        and not k.startswith(("PYTEST_", "DJANGO_"))
    }
    env["NP_RUN_DIR"] = str(run_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_make_run_on_a_new_database_then_try_it_from_a_second_shell(fresh_database_url, tmp_path):
    run_dir = tmp_path / "run"
    port = two_free_ports()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DJANGO_", "EMAIL_")) and k != "NP_REDIS_DB_ISOLATED"
    }
    env.update(
        DATABASE_URL=fresh_database_url,
        NP_RUN_DIR=str(run_dir),
        PORT=str(port),
        NP_ADMIN_PASSWORD="run-test-password-1",
        NP_STOP_TIMEOUT="20",
    )
    run = Run(env)
    try:
        # Given `make run` on a database that does not exist yet: created, migrated, seeded
        name = urlsplit(fresh_database_url).path[1:]
        run.wait_line(rf"services mode: configured .*\[created database {name}\]", 60)
        sink = run.wait_line(r"ready: mail .*SMTP sink on 127\.0\.0\.1:(\d+)", 240)
        run.wait_line(r"Ctrl-C stops everything", 30)

        # When the README's "Try it" runs in a second shell (no DATABASE_URL, no REDIS_URL)
        made = second_shell(
            run_dir, "create_token", "admin@example.com", "--name", "demo", "--service"
        )
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        # (Mailgun, the sandbox's, goes first in the demo: off, so smtp-local takes the mail)
        assert api.patch("/providers/mailgun/", json={"is_enabled": False}).status_code == 200
        sent = api.post(
            "/notifications/",
            json={"email": "guest@example.com", "title": "Hello", "message": "It works",
                  "channels": ["email"]},
        )  # fmt: skip
        assert sent.status_code == 201, sent.text
        [delivery] = sent.json()["deliveries"]

        # Then smtp-local delivered it over SMTP to the launcher's sink...
        deadline = time.monotonic() + 60
        while not (mails := caught_mail(run_dir / "mailbox")):
            assert time.monotonic() < deadline, "\n".join(run.lines[-60:])
            time.sleep(0.2)
        [mail] = mails
        assert (mail.rcpt_to, mail.subject, mail.delivery_id) == (
            "guest@example.com",
            "Hello",
            str(delivery["id"]),
        )
        assert f"SMTP sink on 127.0.0.1:{sink.group(1)}" in "\n".join(run.lines)
        deadline = time.monotonic() + 30
        while (row := api.get(f"/deliveries/{delivery['id']}/").json())["status"] != "sent":
            assert time.monotonic() < deadline, row
            time.sleep(0.2)
        assert row["provider_name"] == "smtp-local"
        # ...and the admin's Caught mail page shows it
        admin = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        login = admin.get("/admin/login/")
        admin.post(
            "/admin/login/?next=/admin/mail/",
            data={
                "username": "admin@example.com",
                "password": "run-test-password-1",
                "csrfmiddlewaretoken": login.cookies["csrftoken"],
            },
            headers={"Referer": f"http://127.0.0.1:{port}/admin/login/"},
        )
        page = admin.get("/admin/mail/")
        assert page.status_code == 200 and f'data-key="{mail.key}"' in page.text
    finally:
        # and Ctrl-C stops everything
        run.proc.send_signal(signal.SIGINT)
        try:
            code = run.proc.wait(60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            raise
    assert code == 0, "\n".join(run.lines[-40:])
    assert "launcher | received SIGINT; stopping" in run.lines
    assert not any("Traceback" in line for line in run.lines), "\n".join(run.lines)
