"""Shared helpers of the batch job tests (no tests here): bulk users, an article, running
``manage.py`` in a real subprocess against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[2]


def bulk_users(count: int, *, region: str = "", prefix: str | None = None) -> list[Any]:
    """``count`` active users in one bulk insert (no password hashing: unusable passwords)."""
    from users.models import User

    prefix = prefix or uuid.uuid4().hex[:8]
    users = [
        User(email=f"{prefix}-{n}@batch.test", region=region, password="!")
        for n in range(count)
    ]
    return User.objects.bulk_create(users, batch_size=5000)


def make_article(title: str = "City opens new library") -> Any:
    from invitations.services import article_create

    return article_create(
        title=title, summary="The new library opens on Monday.",
        full_content=f"The city's new library opens on Monday. {uuid.uuid4().hex}",
    )


def database_url() -> str:
    db = settings.DATABASES["default"]
    password = db.get("PASSWORD") or ""
    auth = f"{db['USER']}:{password}" if password else db["USER"]
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def manage(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` in a real subprocess on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "DB_CONN_MAX_AGE": "0",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=timeout,
    )
