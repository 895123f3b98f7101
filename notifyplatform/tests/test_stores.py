"""Redis roles and the Celery broker from their URLs: the settings a process builds (read
in a fresh subprocess, the way every server and worker reads them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifyplatform.conf.stores import StoreURLError, celery_broker, parse_sentinel

BASE_DIR = Path(__file__).resolve().parents[2]

_DUMP = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "cache": s.CACHES["default"],
    "layer": s.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
    "broker": s.CELERY_BROKER_URL,
    "transport": s.CELERY_BROKER_TRANSPORT_OPTIONS,
    "queues": [[q.name, q.queue_arguments] for q in s.CELERY_TASK_QUEUES],
    "exchanges": sorted({q.exchange.type for q in s.CELERY_TASK_QUEUES}),
}))
"""


def _settings(**env: str) -> dict:
    child = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CHANNEL_LAYER_REDIS_URL", "CELERY_BROKER_URL", "PYTEST_XDIST_WORKER"}
    }
    child.update(DJANGO_SETTINGS_MODULE="notifyplatform.settings", SECRET_KEY="x", **env)
    out = subprocess.run(
        [sys.executable, "-c", _DUMP],
        cwd=BASE_DIR,
        env=child,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_each_redis_role_has_its_own_url():
    got = _settings(
        REDIS_URL="redis://cache-host:6379/1",
        CHANNEL_LAYER_REDIS_URL="redis://layer-host:6379/2",
        CELERY_BROKER_URL="redis://broker-host:6379/3",
    )
    assert got["cache"]["LOCATION"] == "redis://cache-host:6379/1"
    assert [h["address"] for h in got["layer"]] == ["redis://layer-host:6379/2"]
    assert got["broker"] == "redis://broker-host:6379/3"
    assert got["transport"]["visibility_timeout"] == 600
    assert got["queues"] == [["send", None], ["batch", None], ["control", None]]
    assert got["exchanges"] == ["direct"]


def test_unset_roles_fall_back_to_redis_url():
    got = _settings(REDIS_URL="redis://one:6379/4")
    assert [h["address"] for h in got["layer"]] == ["redis://one:6379/4"]
    assert got["broker"] == "redis://one:6379/4"


def test_rabbitmq_broker_gets_quorum_queues_and_publisher_confirms():
    got = _settings(CELERY_BROKER_URL="amqp://guest:guest@rabbit:5672//")
    assert got["broker"] == "amqp://guest:guest@rabbit:5672//"
    assert got["transport"]["confirm_publish"] is True
    assert "visibility_timeout" not in got["transport"]
    assert got["queues"] == [
        ["send", {"x-queue-type": "quorum"}],
        ["batch", {"x-queue-type": "quorum"}],
        ["control", {"x-queue-type": "quorum"}],
    ]
    # Celery's native delayed delivery (countdowns waiting in the broker) binds only to
    # topic exchanges
    assert got["exchanges"] == ["topic"]


def test_sentinel_urls_for_every_role():
    sentinel = "redis+sentinel://:s3cret@s1:26379,s2:26380/mymaster/5"
    got = _settings(
        REDIS_URL=sentinel,
        CHANNEL_LAYER_REDIS_URL="sentinel://s1:26379,s2:26380/layer/6",
        CELERY_BROKER_URL=sentinel,
    )
    # the cache: Django's Redis cache on redis-py's Sentinel pool
    assert got["cache"]["LOCATION"] == sentinel
    assert got["cache"]["OPTIONS"]["pool_class"] == "notifyplatform.redis_pool.SentinelPool"
    # the channel layer: channels_redis' own sentinel host form
    [host] = got["layer"]
    assert host["sentinels"] == [["s1", 26379], ["s2", 26380]]
    assert (host["master_name"], host["db"]) == ("layer", 6)
    assert "address" not in host
    # Celery: its sentinel:// form, the service as master_name
    assert got["broker"] == "sentinel://s1:26379/5;sentinel://s2:26380/5"
    assert got["transport"]["master_name"] == "mymaster"
    assert got["transport"]["password"] == "s3cret"


def test_parse_sentinel_forms_and_errors(monkeypatch):
    monkeypatch.delenv("NP_REDIS_SENTINEL_SERVICE", raising=False)
    parsed = parse_sentinel("sentinel://a:1;sentinel://b:2/3", service="svc")
    assert (parsed.hosts, parsed.service, parsed.db) == ((("a", 1), ("b", 2)), "svc", 3)
    with pytest.raises(StoreURLError, match="names no service"):
        parse_sentinel("sentinel://a:1/0")
    with pytest.raises(StoreURLError, match="not host:port"):
        parse_sentinel("redis+sentinel://a:x/svc")
    with pytest.raises(StoreURLError, match="expected amqp"):
        celery_broker("kafka://k:9092", visibility_timeout=1, queue_names=["send"])


def test_a_bad_broker_url_stops_the_process_with_the_reason():
    child = {**os.environ, "SECRET_KEY": "x", "CELERY_BROKER_URL": "kafka://k:9092"}
    child["DJANGO_SETTINGS_MODULE"] = "notifyplatform.settings"
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=child,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "CELERY_BROKER_URL 'kafka://k:9092': expected amqp://" in out.stderr


def test_send_tasks_land_in_a_quorum_queue_whose_depth_metrics_read(settings):
    """On RabbitMQ a send task is published (confirmed) to the send queue, declared as a
    quorum queue, and the dispatcher's and /metrics' queue depth reads it there."""
    from notifyplatform.broker import queue_depths
    from notifyplatform.celery import app
    from notifyplatform.testing_broker import RabbitBroker

    rabbit = RabbitBroker(settings).start()
    try:
        send = rabbit.queues["NP_QUEUE_SEND"]
        app.send_task("deliveries.send_deliveries", args=([1, 2],))
        app.send_task("deliveries.send_deliveries", args=([3],))
        assert rabbit.is_quorum(send)
        assert queue_depths([send, rabbit.queues["NP_QUEUE_BATCH"]]) == {
            send: 2,
            rabbit.queues["NP_QUEUE_BATCH"]: 0,
        }
    finally:
        rabbit.restore()
    assert app.conf.broker_url == settings.CELERY_BROKER_URL  # put back
