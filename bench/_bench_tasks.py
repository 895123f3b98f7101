"""A Celery task that does nothing but count itself (the "empty task" baseline); loaded into
the benchmark's workers with ``--include _bench_tasks`` (``bench/`` on PYTHONPATH)."""

from __future__ import annotations

import os

import redis
from celery import shared_task

_conn = redis.Redis.from_url(os.environ["REDIS_URL"])


@shared_task(name="bench.noop", ignore_result=True)
def noop() -> None:
    _conn.incr("bench:noop")
