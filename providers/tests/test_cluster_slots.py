"""The rate limiter and the circuit breaker on a real three-node Redis Cluster: every key of
one script or MULTI shares a hash slot, so they run there as on one server (a cross-slot
script or MULTI is refused by the cluster with CROSSSLOT)."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from notifyplatform.testing import port_is_free
from providers import circuit, kv, ratelimit
from providers.models import Provider

pytestmark = pytest.mark.django_db


def _cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free too, both under 65536."""
    for _ in range(200):
        port = random.randint(20000, 50000)
        if port_is_free(port) and port_is_free(port + 10000):
            return port
    raise AssertionError("no free port pair for a Redis Cluster node")


def _cluster_ok(port: int) -> bool:
    info = redis.Redis(host="127.0.0.1", port=port, decode_responses=True).cluster("info")
    return bool(info.get("cluster_state") == "ok")


class Cluster:
    """Three redis-server processes in cluster mode on free loopback ports, all slots
    assigned by ``redis-cli --cluster create`` (no replicas)."""

    def __init__(self, workdir: Path) -> None:
        self.ports: list[int] = []
        while len(self.ports) < 3:
            port = _cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        for port in self.ports:
            node_dir = self.workdir / str(port)
            node_dir.mkdir()
            self.processes.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--save", "", "--appendonly", "no", "--dir", str(node_dir)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(host="127.0.0.1", port=port).ping())
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        for port in self.ports:
            self._wait(lambda port=port: _cluster_ok(port))

    @staticmethod
    def _wait(check, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("redis cluster did not come up")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(20)


@pytest.fixture(scope="module")
def cluster_servers(tmp_path_factory) -> Iterator[Cluster]:
    assert shutil.which("redis-server") and shutil.which("redis-cli"), "redis tools missing"
    server = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(cluster_servers, settings) -> Cluster:
    """The cluster, empty, as this test's LIMITS_REDIS_URL."""
    for port in cluster_servers.ports:
        redis.Redis(host="127.0.0.1", port=port).flushall()
    settings.LIMITS_REDIS_URL = cluster_servers.url
    return cluster_servers


@pytest.fixture
def limited(db) -> Provider:
    return Provider.objects.create(
        provider_name="clustered-hook",
        provider_type="webhook",
        provider_class="webhook",
        priority=1,
        rate_limit_per_minute=2,
        rate_limit_per_hour=100,
        rate_limit_per_day=1000,
    )


def test_the_client_talks_to_a_cluster(cluster):
    assert isinstance(kv.client(), RedisCluster)
    assert len(kv.client().get_nodes()) == 3


def test_rate_limit_keys_share_one_slot_and_the_script_runs_on_the_cluster(cluster, limited):
    keys = [limit.key for limit in ratelimit.limits(limited)]
    assert len(keys) == 3
    assert len({key_slot(key.encode()) for key in keys}) == 1
    # the same keys without their hash tag would be spread over slots: the tag is needed
    untagged = [key.replace("{", "").replace("}", "") for key in keys]
    assert len({key_slot(key.encode()) for key in untagged}) > 1
    # two tokens a minute: the third acquire is refused by the minute period
    assert ratelimit.acquire(limited) is None
    assert ratelimit.acquire(limited) is None
    exhausted = ratelimit.acquire(limited)
    assert exhausted is not None and exhausted.period == "minute"
    assert ratelimit.available(limited) is not None
    assert ratelimit.remaining(limited)[0] == 0


def test_a_cross_slot_script_is_refused_by_the_cluster(cluster):
    # what the limiter's script would meet without hash tags
    with pytest.raises(redis.RedisClusterException):
        kv.client().eval("return redis.call('GET', KEYS[1])", 2, "np:a:1", "np:b:2")


def test_circuit_breaker_opens_and_closes_on_the_cluster(cluster, limited, settings):
    settings.NP_CIRCUIT_CONSECUTIVE = 3
    buckets, consecutive = circuit._keys(limited.provider_name, time.time())
    keys = [
        *buckets,
        consecutive,
        circuit.opened_at_key("clustered-hook"),
        circuit.trial_key("clustered-hook"),
    ]  # noqa: E501
    assert len({key_slot(key.encode()) for key in keys}) == 1
    circuit.record_successes(limited, 5)
    assert circuit.record_failure(limited) is False
    assert circuit.record_failure(limited) is False
    assert circuit.record_failure(limited) is True  # three in a row: opened
    limited.refresh_from_db()
    assert limited.is_healthy is False
    got = circuit.state(limited)
    assert (got["state"], got["ok"], got["errors"], got["consecutive"]) == ("open", 5, 3, 3)
    circuit.close_circuit(limited, reason="test")
    assert circuit.state(limited)["state"] == "closed"
    assert kv.client().exists(*keys) == 0
