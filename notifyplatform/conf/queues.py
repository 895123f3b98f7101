"""Celery: serialisation, acknowledgement, the three queues and their routes."""

from __future__ import annotations

import os

from notifyplatform.conf.env import env_int

CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# CELERY_BROKER_TRANSPORT_OPTIONS and CELERY_TASK_QUEUES depend on the broker: settings.py
# builds them with notifyplatform.conf.stores.celery_broker (visibility timeout for Redis,
# publisher confirms and quorum queues for RabbitMQ).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
# Three queues, so that no kind of work waits behind another's backlog: "send" (the
# deliveries' send tasks, which can pile up by the hundred thousand), "batch" (batch-job
# chunks: the fan-out) and "control" (everything beat schedules: auctions closing, the
# due-row dispatcher, the sweeper, health checks, retention). Run a worker for each (or
# one worker with -Q send,batch,control on a small install); a worker started without
# -Q consumes all three.
NP_QUEUE_SEND = os.environ.get("NP_QUEUE_SEND", "send")
NP_QUEUE_BATCH = os.environ.get("NP_QUEUE_BATCH", "batch")
NP_QUEUE_CONTROL = os.environ.get("NP_QUEUE_CONTROL", "control")
NP_QUEUES = [NP_QUEUE_SEND, NP_QUEUE_BATCH, NP_QUEUE_CONTROL]
# each queue its own direct exchange and routing key, declared explicitly (left out, all
# three are bound to the default "control" exchange and key in the broker): see stores.py
CELERY_TASK_DEFAULT_QUEUE = NP_QUEUE_CONTROL
CELERY_TASK_ROUTES = {
    "deliveries.send_delivery": {"queue": NP_QUEUE_SEND},
    "deliveries.send_deliveries": {"queue": NP_QUEUE_SEND},
    "deliveries.run_batch_chunk": {"queue": NP_QUEUE_BATCH},
    "campaigns.run_workflow_steps": {"queue": NP_QUEUE_BATCH},
    # the rest (beat's tasks) go to the default queue, control
}
