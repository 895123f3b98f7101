"""The Celery application.

Reliability first: a task is acknowledged only after it ran (``acks_late``) and is
requeued when the worker process dies (``task_reject_on_worker_lost``), so a
SIGKILLed worker never loses a delivery. Every send is idempotent in the database,
so a redelivered message cannot send twice.
"""

import os

from celery import Celery, bootsteps, signals

from notifyplatform.gcfreeze import freeze_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")

app = Celery("notifyplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class PromptShutdown(bootsteps.StartStopStep):
    """A worker leaves within about a second of SIGTERM, on every broker.

    The signal only sets a flag that the event loop reads between polls, and the loop
    polls until its next timer: up to 10 s on RabbitMQ without worker heartbeats
    (``--without-heartbeat``; their timer fires every 2 s), as the amqp transport keeps
    no timer of its own (Redis' fires every second). A one-second tick bounds the wait.
    """

    requires = {"celery.worker.components:Hub"}

    def start(self, worker: object) -> None:
        hub = getattr(worker, "hub", None)
        if hub is not None:  # None for the solo pool, which has no event loop
            hub.call_repeatedly(1.0, _tick)


def _tick() -> None:
    """Nothing: the loop wakes and sees the shutdown flag."""


app.steps["worker"].add(PromptShutdown)


@signals.setup_logging.connect
def _settings_logging(loglevel: int | str | None = None, **_kwargs: object) -> None:
    """Workers and beat log like every other process: settings.LOGGING (LOG_FORMAT, and the
    delivery ids on pipeline lines) instead of Celery's own text format, which it installs
    only when nothing receives this signal. The level: LOG_LEVEL when set, else the
    command line's ``--loglevel``."""
    import logging
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel and not os.environ.get("LOG_LEVEL"):
        logging.getLogger().setLevel(loglevel)


@signals.worker_ready.connect
@signals.worker_process_init.connect
def _tune_collector(**_kwargs: object) -> None:
    """Once the worker is up: its startup heap out of the cyclic collector's reach and a
    higher young-generation threshold (notifyplatform.gcfreeze; measured there).
    ``worker_ready``: the threads and solo pools' one process; ``worker_process_init``:
    each prefork child."""
    freeze_heap()
