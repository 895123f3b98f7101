"""compose.yaml, checked without docker (not runnable here): it parses, its services are
the ones the README promises, every command names a real module, manage.py command or
Celery app and queue, and every environment variable it sets is one settings.py reads —
with those values, settings come out as a container expects."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
QUEUES = {"send", "batch", "control"}  # DESIGN.md: the Celery queues, one worker each


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} with nothing set: the default, or a value
    standing in for a variable the user must set."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if op == ":-":
            return rest
        return f"required-{name.lower()}-value"

    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)([^}]*)\}", one, value)


def app_environment() -> dict[str, str]:
    [environment] = {json.dumps(s["environment"], sort_keys=True) for s in APP_SERVICES.values()}
    return {k: interpolate(str(v)) for k, v in json.loads(environment).items()}


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_services_the_readme_promises():
    assert set(SERVICES) == {
        "postgres", "redis", "migrate", "web", "worker-send", "worker-batch",
        "worker-control", "beat",
    }  # fmt: skip
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert set(APP_SERVICES) == set(SERVICES) - {"postgres", "redis"}
    # every app container: one image, the same settings
    assert len({json.dumps(s["environment"], sort_keys=True) for s in APP_SERVICES.values()}) == 1
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, (name, dependency)
    # the schema is migrated before anything else starts, and only once
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in set(APP_SERVICES) - {"migrate"}:
        condition = APP_SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    assert (ROOT / "Dockerfile").exists()


def test_every_command_names_something_real():
    from django.core.management import get_commands

    for name, service in APP_SERVICES.items():
        command = service["command"]
        assert command[0] == "python", name
        if command[1] == "manage.py":
            assert command[2] in get_commands(), (name, command)
            continue
        assert command[1] == "-m", (name, command)
        assert importlib.util.find_spec(command[2]) is not None, (name, command[2])
    web = SERVICES["web"]["command"]
    assert web[2] == "daphne" and flag(web, "-b") == "0.0.0.0"
    assert SERVICES["web"]["ports"] == [f"{flag(web, '-p')}:{flag(web, '-p')}"]
    module, attribute = web[-1].split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_a_worker_per_queue_and_every_task_reaches_one():
    from notifyplatform.celery import app

    app.loader.import_default_modules()
    celery = {n: s["command"] for n, s in APP_SERVICES.items() if s["command"][2] == "celery"}
    assert {flag(c, "-A") for c in celery.values()} == {app.main}
    assert sorted(c[c.index("-A") + 2] for c in celery.values()) == ["beat", *["worker"] * 3]
    consumed = {
        name: set(flag(command, "-Q").split(","))
        for name, command in celery.items()
        if "worker" in command
    }
    # one worker per queue: sends piling up never hold back a batch or beat's tasks
    assert {f"worker-{q}" for q in QUEUES} == set(consumed)
    assert all(f"worker-{q}" in consumed and q in consumed[f"worker-{q}"] for q in QUEUES)
    # and every task the app has is routed to a queue some worker consumes
    every_queue = set().union(*consumed.values())
    tasks = [name for name in app.tasks if not name.startswith("celery.")]
    assert tasks
    for task in tasks:
        queue = app.amqp.router.route({}, task, (), {})["queue"].name
        assert queue in every_queue, (task, queue)


@pytest.fixture(scope="module")
def settings_read_in_a_container() -> dict:
    """settings.py imported with exactly compose's environment (plus what python needs),
    recording every variable it reads."""
    probe = r"""
import json, os
read = set()
class Recording(type(os.environ)):
    def __getitem__(self, key):
        read.add(key)
        return super().__getitem__(key)
    def __contains__(self, key):
        read.add(key)
        return super().__contains__(key)
os.environ.__class__ = Recording
from notifyplatform import settings as s
print(json.dumps({
    "read": sorted(read),
    "db": {k: s.DATABASES["default"][k] for k in ("HOST", "PORT", "NAME", "USER")},
    "redis": s.REDIS_URL, "log_format": s.LOG_FORMAT, "hosts": s.ALLOWED_HOSTS,
    "secret": s.SECRET_KEY, "email": [s.EMAIL_HOST, s.EMAIL_PORT],
}))
"""
    env = {"PATH": os.environ["PATH"], **app_environment()}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_variable_compose_sets_is_one_settings_reads(settings_read_in_a_container):
    unread = set(app_environment()) - set(settings_read_in_a_container["read"])
    assert unread == set()


def test_settings_come_out_as_a_container_expects(settings_read_in_a_container):
    got = settings_read_in_a_container
    assert got["db"] == {
        "HOST": "postgres", "PORT": 5432, "NAME": "notifyplatform", "USER": "notifyplatform",
    }  # fmt: skip
    assert got["redis"] == "redis://redis:6379/0"
    assert got["log_format"] == "json"
    assert got["secret"] == "required-secret_key-value"  # from the environment, not a file
    assert got["hosts"] == ["localhost", "127.0.0.1"]
    assert got["email"] == ["localhost", 25]
