"""The pipeline's fixtures (template catalogue, provider counters, real Celery workers, the
SMTP sink and providers pointing at it), shared with the batch and workflow tests."""

from deliveries.tests.conftest import (  # noqa: F401 - fixtures, registered by import
    _provider_counters,
    catalogue,
    pipeline_providers,
    purge_queue,
    smtp_server,
    start_worker,
    webhook_receiver,
)
