"""Helpers shared by the test suites (and the benchmarks) that start real processes:
free loopback ports, the database URL a child process must use, and Chromium's flags.

Kept out of any ``tests`` package so ``bench/`` scripts can import it too.
"""

from __future__ import annotations

from notifyplatform.launcher.services import free_port

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "child_database_url", "free_port"]

# Debian's Chromium, driven by Playwright; never a downloaded browser. Without the
# background-networking flags Chromium keeps dialling out, which this machine refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def child_database_url() -> str:
    """The URL of the database this process uses (the test database under pytest-django),
    for a worker or server started as a subprocess. A unix-socket host (the embedded
    PostgreSQL) is percent-encoded, as the launcher writes it."""
    from urllib.parse import quote

    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    if host.startswith("/"):
        return f"postgres://{auth}@{quote(host, safe='')}/{db['NAME']}"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"
