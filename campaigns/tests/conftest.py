"""The pipeline's fixtures (template catalogue, provider counters, real Celery workers),
shared with the batch tests that moved here from ``deliveries``."""

from deliveries.tests.conftest import (  # noqa: F401 - fixtures, registered by import
    _provider_counters,
    catalogue,
    purge_queue,
    start_worker,
)
