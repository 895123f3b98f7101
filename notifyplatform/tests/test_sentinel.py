"""A Sentinel URL in use: a real redis-server and a real sentinel watching it, the cache
(Django's Redis cache on the Sentinel pool) and the providers' counters (providers.kv)
reach the master through the sentinel."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.cache.backends.redis import RedisCache

from notifyplatform.redis_pool import SentinelPool, sync_client
from notifyplatform.testing import free_port
from providers import kv


def _wait(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("sentinel setup did not come up")
        time.sleep(0.1)


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(master port, sentinel port): a master named ``npmaster`` and one sentinel."""
    master, sentinel_port = free_port(), free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor npmaster 127.0.0.1 {master} 1\n"
    )
    processes = [
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(master),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),  # fmt: skip
        subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),  # fmt: skip
    ]
    try:
        probe = redis.Redis(host="127.0.0.1", port=sentinel_port, decode_responses=True)
        _wait(lambda: probe.sentinel_get_master_addr_by_name("npmaster"))
        yield master, sentinel_port
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)


def test_cache_and_counters_reach_the_master_through_the_sentinel(sentinel, settings):
    master, sentinel_port = sentinel
    url = f"redis+sentinel://127.0.0.1:{sentinel_port}/npmaster/3"
    direct = redis.Redis(host="127.0.0.1", port=master, db=3, decode_responses=True)

    # the providers' counters (LIMITS_REDIS_URL, here a sentinel URL)
    settings.LIMITS_REDIS_URL = url
    kv.client().set("np:test:via-sentinel", "yes")
    assert direct.get("np:test:via-sentinel") == "yes"

    # the cache, configured as settings.py builds it for a sentinel REDIS_URL
    cache = RedisCache(
        url,
        {"KEY_PREFIX": "t", "OPTIONS": {"pool_class": "notifyplatform.redis_pool.SentinelPool"}},
    )
    cache.set("greeting", "hello", 30)
    assert cache.get("greeting") == "hello"
    assert any(key.endswith(":greeting") for key in direct.keys("t:*"))

    # a blocking client from the same URL is bound to the master the sentinel names
    client = sync_client(url)
    assert isinstance(client.connection_pool, SentinelPool)
    assert client.connection_pool.service_name == "npmaster"
    assert client.get("np:test:via-sentinel") == b"yes"
