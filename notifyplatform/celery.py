"""The Celery application.

Reliability first: a task is acknowledged only after it ran (``acks_late``) and is
requeued when the worker process dies (``task_reject_on_worker_lost``), so a
SIGKILLed worker never loses a delivery. Every send is idempotent in the database,
so a redelivered message cannot send twice.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")

app = Celery("notifyplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json":
    # Celery replaces the root logger's handlers with its own text format unless a
    # receiver of setup_logging configures logging: then settings.LOGGING applies here too.
    @signals.setup_logging.connect
    def _settings_logging(**_kwargs: object) -> None:
        from logging.config import dictConfig

        from django.conf import settings

        dictConfig(settings.LOGGING)
