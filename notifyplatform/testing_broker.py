"""Tests on either Celery broker: Redis (the default) or RabbitMQ.

``use_rabbitmq()`` points this process's Celery app, its settings and the environment
that worker subprocesses inherit at RabbitMQ (``NP_TEST_AMQP_URL``, default
``amqp://guest:guest@127.0.0.1:5672//``) with queue names of its own, so that parallel
test processes sharing one RabbitMQ never meet; ``restore()`` deletes those queues and
puts everything back. RabbitMQ down is a clear failure, never a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from notifyplatform.celery import app
from notifyplatform.conf.stores import celery_broker

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
_QUEUE_SETTINGS = ("NP_QUEUE_SEND", "NP_QUEUE_BATCH", "NP_QUEUE_CONTROL")
_CONF_KEYS = (
    "broker_url",
    "broker_transport_options",
    "task_queues",
    "task_routes",
    "task_default_queue",
)


def amqp_url() -> str:
    return os.environ.get("NP_TEST_AMQP_URL") or DEFAULT_AMQP_URL


def require_rabbitmq(url: str) -> None:
    """Fail with the reason when RabbitMQ does not accept connections."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        raise AssertionError(
            f"RabbitMQ is not reachable at {host}:{port} ({exc}); the broker-parametrised"
            " end-to-end tests need it: start rabbitmq-server (or set NP_TEST_AMQP_URL)"
        ) from None


def _reset_app_pools() -> None:
    """Drop the app's cached connections, producers, queues and router so the next
    publish uses the current configuration."""
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
        for cached in ("queues", "router", "producer_pool"):
            amqp.__dict__.pop(cached, None)


@dataclass
class RabbitBroker:
    """One test's RabbitMQ setup (see module docstring)."""

    settings: Any
    url: str = field(default_factory=amqp_url)
    queues: dict[str, str] = field(default_factory=dict)
    _saved_conf: dict[str, Any] = field(default_factory=dict)
    _saved_settings: dict[str, Any] = field(default_factory=dict)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def start(self) -> RabbitBroker:
        require_rabbitmq(self.url)
        tag = uuid.uuid4().hex[:10]
        self.queues = {name: f"t{tag}-{name.split('_')[-1].lower()}" for name in _QUEUE_SETTINGS}
        names = list(self.queues.values())
        url, options, task_queues = celery_broker(
            self.url, visibility_timeout=600, queue_names=names
        )
        send, batch, control = names
        routes = {
            "deliveries.send_delivery": {"queue": send},
            "deliveries.send_deliveries": {"queue": send},
            "deliveries.run_batch_chunk": {"queue": batch},
        }
        self._saved_conf = {key: app.conf[key] for key in _CONF_KEYS}
        app.conf.update(
            broker_url=url,
            broker_transport_options=options,
            task_queues=task_queues,
            task_routes=routes,
            task_default_queue=control,
        )
        _reset_app_pools()
        new_settings = {
            "CELERY_BROKER_URL": url,
            "CELERY_BROKER_TRANSPORT_OPTIONS": options,
            "NP_QUEUES": names,
            "NP_METRICS_QUEUES": names,
            **self.queues,
        }
        for key, value in new_settings.items():
            self._saved_settings[key] = getattr(self.settings, key, None)
            setattr(self.settings, key, value)
        for key, value in {"CELERY_BROKER_URL": url, **self.queues}.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value  # the worker subprocesses inherit it
        return self

    def depth(self, name: str) -> int:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.queue_declare(queue=name, passive=True).message_count)

    def is_quorum(self, name: str) -> bool:
        """Whether ``name`` exists as a quorum queue: declaring it again as a classic queue
        is refused (406 PRECONDITION_FAILED) exactly when its type differs."""
        from amqp.exceptions import PreconditionFailed

        self.depth(name)  # it exists (a passive declare raises NotFound otherwise)
        with app.connection_for_write() as conn:
            channel = conn.channel()
            try:
                channel.queue_declare(queue=name, durable=True, auto_delete=False)
            except PreconditionFailed as exc:
                return "x-queue-type" in str(exc)
            channel.close()
            return False

    def restore(self) -> None:
        try:
            with app.connection_for_write() as conn:
                for name in self.queues.values():
                    channel = conn.channel()
                    try:
                        channel.queue_delete(name)
                        channel.exchange_delete(name)
                    finally:
                        channel.close()
        finally:
            app.conf.update(**self._saved_conf)
            _reset_app_pools()
            for key, value in self._saved_settings.items():
                setattr(self.settings, key, value)
            for key, env_value in self._saved_env.items():
                if env_value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = env_value
