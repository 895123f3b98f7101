"""Database connections are bounded by configuration, not by traffic (issue 14, point 1).

A real daphne serves 500 concurrent API requests and 2,000 signed delivery receipts while
a monitor samples ``pg_stat_activity`` for the server's connections to the test database:
they never exceed the pool's ``NP_DB_POOL_MAX_SIZE``, and no request gets a 5xx. (With
``conn_max_age`` 60 every request thread kept a connection of its own: dozens of idle
connections and, at PostgreSQL's limit, 500s.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import psycopg
import pytest
from django.conf import settings

from deliveries.tests.rows import insert_deliveries
from notifyplatform.testing import child_database_url, free_port, stop_process, wait_listening

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("db_connections"),
    pytest.mark.django_db(transaction=True),
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POOL_MAX = 6
API_REQUESTS = 500
RECEIPTS = 2000


class ConnectionMonitor:
    """Samples the connections of one application name to the test database."""

    def __init__(self, dbname: str, application_name: str) -> None:
        self.dbname = dbname
        self.application_name = application_name
        self.samples: list[tuple[int, int]] = []  # (the server's, the whole database's)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(child_database_url(), autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE application_name = %s), count(*)"
                    " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.application_name, self.dbname],
                ).fetchone()
                self.samples.append((row[0], row[1]))
                self._stop.wait(0.01)

    def __enter__(self) -> ConnectionMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def load_daphne(tmp_path):
    """daphne against the test database, its connections named ``application_name``."""
    port = free_port()
    application_name = f"np-load-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        NP_RUN_DIR=str(tmp_path),
        PGAPPNAME=application_name,  # libpq names every connection the server opens
        NP_DB_POOL_MIN_SIZE="1",
        NP_DB_POOL_MAX_SIZE=str(POOL_MAX),
        NP_THROTTLE_USER="100000/min",
        NP_THROTTLE_TOKEN="100000/min",
        POSTMARK_SERVER_TOKEN="pm-server-token",
        POSTMARK_WEBHOOK_USERNAME="pm-hook",
        POSTMARK_WEBHOOK_PASSWORD="pm-hook-password",
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "daphne.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["notifyplatform.asgi:application"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_listening(port, proc=proc, log=lambda: (tmp_path / "daphne.log").read_text())
        yield f"http://127.0.0.1:{port}", application_name
    finally:
        stop_process(proc)
        log.close()


async def _drive(base: str, token: str, message_ids: list[str]) -> Counter[int]:
    auth = "Basic " + base64.b64encode(b"pm-hook:pm-hook-password").decode()
    statuses: Counter[int] = Counter()
    receipt_slots = asyncio.Semaphore(500)

    async def me(session: aiohttp.ClientSession) -> None:
        async with session.get(
            f"{base}/api/v1/me/", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            await response.read()
            statuses[response.status] += 1

    async def receipt(session: aiohttp.ClientSession, message_id: str) -> None:
        body = json.dumps(
            {"RecordType": "Delivery", "MessageID": message_id, "Recipient": "a@example.test"}
        )
        async with (
            receipt_slots,
            session.post(
                f"{base}/api/v1/providers/load-postmark/events/",
                data=body,
                headers={"Authorization": auth, "Content-Type": "application/json"},
            ) as response,
        ):
            await response.read()
            statuses[response.status] += 1

    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)  # really concurrent: no client-side queue
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(
            *(me(session) for _ in range(API_REQUESTS)),
            *(receipt(session, mid) for mid in message_ids),
        )
    return statuses


def test_connections_stay_within_the_pool_under_concurrent_requests_and_receipts(
    load_daphne, make_user
):
    from deliveries.models import NotificationDelivery
    from providers.models import Provider
    from users.services import token_create

    base, application_name = load_daphne
    user = make_user(email="load@example.test", is_staff=True)
    _token, raw = token_create(user=user, name="load", is_service=True)
    Provider.objects.create(
        provider_name="load-postmark",
        provider_type="email",
        provider_class="postmark",
        priority=10,
    )
    ids = insert_deliveries(
        user_id=user.pk,
        count=RECEIPTS,
        status="sent",
        provider_name="load-postmark",
        message_id_prefix="pm",
    )
    dbname = settings.DATABASES["default"]["NAME"]

    with psycopg.connect(child_database_url(), autocommit=True) as conn:
        others = conn.execute(  # this test process's own (pooled) connections, before the load
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND application_name <> %s",
            [dbname, application_name],
        ).fetchone()[0]

    with ConnectionMonitor(dbname, application_name) as monitor:
        statuses = asyncio.run(_drive(base, raw, [f"pm-{n}" for n in range(1, RECEIPTS + 1)]))

    assert statuses == Counter({200: API_REQUESTS + RECEIPTS}), statuses
    assert NotificationDelivery.objects.filter(id__in=ids, status="delivered").count() == RECEIPTS
    server_peak = max(s[0] for s in monitor.samples)
    database_peak = max(s[1] for s in monitor.samples)
    assert len(monitor.samples) > 20
    assert 1 <= server_peak <= POOL_MAX, server_peak
    # and nothing else on the test database grew: the rest are this process's own
    assert database_peak <= others + POOL_MAX, (database_peak, others)
