"""Invitation test fixtures: content to invite to, the template catalogue, a real SMTP
server and a real Celery worker subprocess sending through the pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from auctions.tests.fixtures import (  # noqa: F401 - fixtures
    channel_providers,
    fast_password_hashing,
    smtp_server,
    template_catalogue,
)
from notifyplatform.testing import child_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inviter(make_user):
    return make_user(email="ivy@example.test", display_name="Ivy")


@pytest.fixture
def story(inviter):
    from invitations.models import Story

    return Story.objects.create(title="The Lighthouse Keeper", owner=inviter)


@pytest.fixture
def article():
    from invitations.services import article_create

    return article_create(
        title="City opens new library",
        summary="The new library opens on Monday.",
        full_content="The city's new library opens on Monday with 40,000 books.",
        category="local",
    )


@pytest.fixture
def roleplay(story, inviter):
    from invitations.models import RoleplayCharacterRole, RoleplayTemplate

    template = RoleplayTemplate.objects.create(
        story=story,
        template_name="Mutiny on the Starlight",
        total_characters=2,
        created_by=inviter,
    )
    captain = RoleplayCharacterRole.objects.create(
        roleplay_template=template, role_name="Captain Reyes"
    )
    mate = RoleplayCharacterRole.objects.create(roleplay_template=template, role_name="First Mate")
    return template, captain, mate


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` on this test run's database and Redis database."""
    import redis

    # Tasks left in this run's Redis database by earlier tests point at rows that no
    # longer exist; start from an empty queue.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "DB_CONN_MAX_AGE": "0",
    }
    # A file, not a pipe: nobody reads the worker's output while it runs, and a full
    # pipe would block it.
    log = open(tmp_path / "celery-worker.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "notifyplatform",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    log.close()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy (a real worker works at its own pace)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
