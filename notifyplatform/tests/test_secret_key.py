"""SECRET_KEY: required outside `make run`'s local/embedded modes and the tests (issue 14).

A key generated per host breaks sessions, invitation tokens and signatures across hosts,
so a server, worker or command started without SECRET_KEY refuses with one line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from notifyplatform.launcher.services import ServiceSet
from notifyplatform.testing import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MISSING = "error: SECRET_KEY is not set"


def _env_without_key(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PYTEST_VERSION")}
    env.update(
        NP_RUN_DIR=str(tmp_path / "run"),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/np_never_used",
        REDIS_URL="redis://127.0.0.1:6399/0",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "notifyplatform.asgi:application"],
        ["-m", "celery", "-A", "notifyplatform", "worker", "--pool=solo"],
        ["-m", "celery", "-A", "notifyplatform", "beat"],
        ["manage.py", "migrate", "--noinput"],
    ],
    ids=["daphne", "celery-worker", "celery-beat", "manage.py"],
)
def test_processes_refuse_to_start_without_secret_key_in_one_line(tmp_path, argv):
    port = free_port()
    command = [sys.executable, *(a.replace("{port}", str(port)) for a in argv)]
    out = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=_env_without_key(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(MISSING), out.stderr
    # nothing generated a per-host key on the side
    assert not (tmp_path / "run" / "secret_key").exists()


def _free_port_pair() -> int:
    """A port whose successor is free too (`run` wants PORT and PORT+1, the sandbox's)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def test_make_run_with_configured_services_refuses_without_secret_key(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "notifyplatform.launcher", "run"],
        cwd=PROJECT_ROOT,
        env=_env_without_key(tmp_path, NP_SERVICES="configured", PORT=str(_free_port_pair())),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    errors = [line for line in out.stdout.splitlines() if "error" in line]
    assert errors == [
        "launcher | error: SECRET_KEY is not set; with configured services"
        " (DATABASE_URL/REDIS_URL) set it to the same long random value on every host"
    ], out.stdout
    assert "migrate" not in out.stdout and "daphne" not in out.stdout


def _services(tmp_path: Path, mode: str) -> ServiceSet:
    urls = {"DATABASE_URL": "postgres://u@db/x", "REDIS_URL": "redis://r:6379/0"}
    return ServiceSet(modes={"database": mode, "redis": mode}, urls=urls, rundir=tmp_path / mode)


@pytest.mark.parametrize("mode", ["local", "embedded"])
def test_development_modes_hand_every_process_the_run_dirs_generated_key(
    tmp_path, monkeypatch, mode
):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = _services(tmp_path, mode).env()["SECRET_KEY"]
    again = _services(tmp_path, mode).env()["SECRET_KEY"]
    assert len(first) >= 50 and first == again
    key_file = tmp_path / mode / "secret_key"
    assert key_file.read_text() == first and key_file.stat().st_mode & 0o077 == 0

    # a key of your own wins
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert "SECRET_KEY" not in _services(tmp_path, mode).env()


def test_configured_services_get_no_generated_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert "SECRET_KEY" not in _services(tmp_path, "configured").env()
    assert not (tmp_path / "configured" / "secret_key").exists()
