"""Settings, twelve-factor style: everything that differs between machines is an
environment variable, and every default is the safe one (DEBUG off, loopback hosts).

Environment variables (all optional; the README lists them with examples):
    DATABASE_URL   postgres://user:pass@host:port/name  (default: local PostgreSQL)
    REDIS_URL      redis://host:port/db                  (default: local Redis)
    SECRET_KEY     signing key; without it a key is generated once into .run/secret_key
    DEBUG          "1"/"true" turns debug on (default off)
    ALLOWED_HOSTS  comma-separated (default "127.0.0.1,localhost,[::1]")
    CSRF_TRUSTED_ORIGINS, TIME_ZONE, LOG_LEVEL, NP_* feature settings below.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("NP_RUN_DIR", BASE_DIR / ".run"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under .run/.

    Every process of one installation (daphne, workers, beat, manage.py) must share
    the key: sessions, invitation tokens and webhook secrets are signed with it.
    """
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = RUN_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
    except FileExistsError:  # pragma: no cover - lost a race with another process
        return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "users",
    "templates",
    "providers",
    "deliveries",
    "invitations",
    "realtime",
    "auctions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "notifyplatform.urls"
WSGI_APPLICATION = "notifyplatform.wsgi.application"
ASGI_APPLICATION = "notifyplatform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- data stores -------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notifyplatform")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # the seeds' SERIAL ids are integers

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER.startswith("gw") and not os.environ.get("NP_REDIS_DB_ISOLATED"):
    # Parallel test processes share one Redis server: give each its own database so
    # their Celery queues, channel layers and rate-limit counters never meet. The
    # result goes back into the environment (with a marker) so that workers and
    # servers the tests start inherit the same database instead of shifting again.
    from urllib.parse import urlsplit, urlunsplit

    _parts = urlsplit(REDIS_URL)
    _db = int((_parts.path or "/0").lstrip("/") or 0) + 1 + int(_XDIST_WORKER[2:])
    REDIS_URL = urlunsplit(_parts._replace(path=f"/{_db}"))
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["NP_REDIS_DB_ISOLATED"] = "1"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "np",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# redis-py caps an asyncio pool at 100 connections by default; with hundreds of
# websocket clients joining at once that fails with "Too many connections", so the
# layer's host is a dict with a larger pool.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "max_connections": env_int("NP_CHANNEL_LAYER_MAX_CONNECTIONS", 2000),
                }
            ],
            "capacity": env_int("NP_CHANNEL_LAYER_CAPACITY", 1000),
            "expiry": 60,
            # a server process's membership lapses this long after its last refresh
            # (NP_RT_HUB_REFRESH_SECONDS), so a dead process stops costing sends
            "group_expiry": env_int("NP_CHANNEL_LAYER_GROUP_EXPIRY", 60),
            "prefix": os.environ.get("NP_CHANNEL_LAYER_PREFIX", "np-asgi"),
        },
    }
}

# --- Celery ------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # a message claimed by a worker that vanished comes back after this long; the
    # database sweeper re-enqueues anything older anyway
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- auth --------------------------------------------------------------------------
AUTH_USER_MODEL = "users.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

# --- REST API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "users.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "notifyplatform.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "notifyplatform API",
    "DESCRIPTION": "Provider-agnostic notifications: send, track, prefer, stream.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("NP_MAX_REQUEST_BYTES", 256 * 1024)

# --- i18n / time -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- static ------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise warns at every start when STATIC_ROOT is missing; `collectstatic` is optional
# here (files are served from the apps' folders), so an empty folder is enough.
STATIC_ROOT.mkdir(exist_ok=True)
# Serve straight from the apps' static folders: no collectstatic step for `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- security ----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- email (the SMTP provider's defaults) -----------------------------------------
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "notifyplatform <noreply@localhost>")

# --- logging -----------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# --- platform settings -------------------------------------------------------------
NP_PUBLIC_BASE_URL = os.environ.get("NP_PUBLIC_BASE_URL", "http://127.0.0.1:8000")

# --- auctions & invitations (event sources) ---
# Watchers and bidders are warned once, this many seconds before an auction ends.
NP_AUCTION_ENDING_NOTICE_SECONDS = env_int("NP_AUCTION_ENDING_NOTICE_SECONDS", 300)
# Invitations neither viewed nor answered after this long get a reminder (batch issue).
from datetime import timedelta as _timedelta  # noqa: E402

NP_INVITATION_REMINDER_AFTER = _timedelta(
    seconds=env_int("NP_INVITATION_REMINDER_AFTER_SECONDS", 3 * 86400)
)
NP_INVITATION_MAX_REMINDERS = env_int("NP_INVITATION_MAX_REMINDERS", 2)
CELERY_BEAT_SCHEDULE.update(
    {
        "auctions-start": {"task": "auctions.start_auctions", "schedule": 10.0},
        "auctions-ending-notices": {
            "task": "auctions.send_auction_ending_notices",
            "schedule": 10.0,
        },
        "auctions-close": {"task": "auctions.close_auctions", "schedule": 5.0},
    }
)

# --- providers ---------------------------------------------------------------------
# Webhook/push targets on private, loopback or link-local addresses are refused unless
# their host or IP matches one of these (host names, IPs or CIDRs, comma-separated).
NP_WEBHOOK_ALLOWED_HOSTS = env_list("NP_WEBHOOK_ALLOWED_HOSTS", "")
NP_PROVIDERS_REDIS_PREFIX = os.environ.get("NP_PROVIDERS_REDIS_PREFIX", "np:prov")
# Circuit breaker (per provider, over 5 minutes): open at >= MIN_ERRORS errors that are
# >= ERROR_RATE of the calls, or after CONSECUTIVE failures in a row.
NP_CIRCUIT_MIN_ERRORS = env_int("NP_CIRCUIT_MIN_ERRORS", 100)
NP_CIRCUIT_ERROR_RATE = float(os.environ.get("NP_CIRCUIT_ERROR_RATE", "0.35"))
NP_CIRCUIT_CONSECUTIVE = env_int("NP_CIRCUIT_CONSECUTIVE", 20)
NP_CIRCUIT_COOLDOWN = env_int("NP_CIRCUIT_COOLDOWN", 120)
CELERY_BEAT_SCHEDULE.update(
    {
        "providers-check-health": {
            "task": "providers.tasks.check_provider_health",
            "schedule": float(env_int("NP_PROVIDER_HEALTH_INTERVAL", 60)),
        },
    }
)

# --- deliveries (the pipeline) -----------------------------------------------------
# notify(): largest JSON size of context / metadata / message accepted (PAYLOAD_TOO_LARGE).
NP_NOTIFY_MAX_PAYLOAD_BYTES = env_int("NP_NOTIFY_MAX_PAYLOAD_BYTES", 64 * 1024)
NP_DELIVERY_MAX_RETRIES = env_int("NP_DELIVERY_MAX_RETRIES", 3)
# Retry backoff: uniform(0, min(CAP, BASE * 2**retry_count)) seconds ("full jitter").
NP_DELIVERY_RETRY_BASE_SECONDS = env_int("NP_DELIVERY_RETRY_BASE_SECONDS", 30)
NP_DELIVERY_RETRY_CAP_SECONDS = env_int("NP_DELIVERY_RETRY_CAP_SECONDS", 3600)
# A delivery in "sending" whose worker vanished is re-queued after this lease; keep it
# above the slowest provider timeout times the number of failover candidates.
NP_DELIVERY_LEASE_SECONDS = env_int("NP_DELIVERY_LEASE_SECONDS", 120)
# Sweeper: rows untouched for GRACE seconds and due are re-enqueued, BATCH_SIZE per run.
NP_SWEEP_INTERVAL_SECONDS = env_int("NP_SWEEP_INTERVAL_SECONDS", 15)
NP_SWEEP_GRACE_SECONDS = env_int("NP_SWEEP_GRACE_SECONDS", 30)
NP_SWEEP_BATCH_SIZE = env_int("NP_SWEEP_BATCH_SIZE", 5000)
# After a failed publish, stop trying the broker for this long (rows wait for the sweeper).
NP_BROKER_BACKOFF_SECONDS = env_int("NP_BROKER_BACKOFF_SECONDS", 5)
CELERY_BEAT_SCHEDULE.update(
    {
        "deliveries-sweep": {
            "task": "deliveries.sweep_deliveries",
            "schedule": float(NP_SWEEP_INTERVAL_SECONDS),
        },
    }
)

# --- realtime ----------------------------------------------------------------------
NP_WS_HEARTBEAT_INTERVAL = env_int("NP_WS_HEARTBEAT_INTERVAL", 30)  # seconds between pings
NP_WS_HEARTBEAT_MIN = env_int("NP_WS_HEARTBEAT_MIN", 5)  # bounds for a client's ?heartbeat=N
NP_WS_HEARTBEAT_MAX = env_int("NP_WS_HEARTBEAT_MAX", 300)
NP_WS_HEARTBEAT_GRACE = env_int("NP_WS_HEARTBEAT_GRACE", 5)  # slack for the stale sweep
NP_WS_FLUSH_MESSAGES = env_int("NP_WS_FLUSH_MESSAGES", 100)  # counters written every N msgs
NP_WS_FLUSH_SECONDS = env_int("NP_WS_FLUSH_SECONDS", 10)  # ... or every S seconds
NP_WS_MAX_TOPICS = env_int("NP_WS_MAX_TOPICS", 200)
NP_WS_MAX_MESSAGE_BYTES = env_int("NP_WS_MAX_MESSAGE_BYTES", 64 * 1024)
# past this a client frame closes the connection with 1009 (between the two: an error frame)
NP_WS_MAX_FRAME_BYTES = env_int("NP_WS_MAX_FRAME_BYTES", 1024 * 1024)
NP_REPLAY_MAX_EVENTS = env_int("NP_REPLAY_MAX_EVENTS", 10_000)  # more → recovery_failed
NP_RT_RETENTION_DAYS = {
    "short": env_int("NP_RT_RETENTION_SHORT_DAYS", 1),
    "standard": env_int("NP_RT_RETENTION_STANDARD_DAYS", 7),
    "long": env_int("NP_RT_RETENTION_LONG_DAYS", 30),
}
NP_RT_ORDERED_COMMIT = env_bool("NP_RT_ORDERED_COMMIT", True)
# redis-py 8 gives every connection a 5 s socket timeout, the same 5 s channels_redis
# blocks in BZPOPMIN waiting for a message: a consumer idle for 5 s then dies with
# "Timeout reading from redis" (close 1011). Read timeouts must outlast that wait.
for _host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:
    _host.setdefault("socket_timeout", env_int("NP_CHANNEL_LAYER_SOCKET_TIMEOUT", 30))
    _host.setdefault("socket_connect_timeout", 5)
CELERY_BEAT_SCHEDULE.update(
    {
        "realtime-expire-stale-connections": {
            "task": "realtime.expire_stale_connections",
            "schedule": float(env_int("NP_WS_STALE_SWEEP_SECONDS", 30)),
        },
        "realtime-purge-expired-events": {
            "task": "realtime.purge_expired_events",
            "schedule": float(env_int("NP_RT_PURGE_SECONDS", 3600)),
        },
    }
)

# --- REST API (issue 8) ----------------------------------------------------------
# Throttles: per user (session or any of its tokens), per API token, per anonymous address.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "notifyplatform.throttling.UserRateThrottle",
    "notifyplatform.throttling.TokenRateThrottle",
    "notifyplatform.throttling.AnonRateThrottle",
]
NP_THROTTLE_RATES = {
    "user": os.environ.get("NP_THROTTLE_USER", "1000/min"),
    "token": os.environ.get("NP_THROTTLE_TOKEN", "1000/min"),
    "anon": os.environ.get("NP_THROTTLE_ANON", "100/min"),
}
# Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (NP_MAX_REQUEST_BYTES) get a JSON 413 under /api/.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware"),
    "notifyplatform.api_errors.RequestSizeLimitMiddleware",
)
# Swagger UI assets come from the drf-spectacular-sidecar package (no CDN).
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "COMPONENT_SPLIT_REQUEST": True,
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "notifyplatform.schema.add_error_responses",
        ],
        "ENUM_NAME_OVERRIDES": {
            "ChannelEnum": "notifyplatform.choices.Channel",
            "DeliveryStatusEnum": "deliveries.models.DeliveryStatus",
            "NotificationStatusEnum": "deliveries.models.NotificationStatus",
        },
    }
)
# /metrics: open when NP_METRICS_TOKEN is empty (bind the server to loopback or keep it
# behind the proxy); otherwise it needs "Authorization: Bearer <NP_METRICS_TOKEN>".
# Staff sessions may always read it.
NP_METRICS_TOKEN = os.environ.get("NP_METRICS_TOKEN", "")
# The send-latency histogram covers deliveries sent in this many seconds before a scrape.
NP_METRICS_LATENCY_WINDOW_SECONDS = env_int("NP_METRICS_LATENCY_WINDOW_SECONDS", 3600)
# Celery queues whose depth /metrics reports (Redis list lengths).
NP_METRICS_QUEUES = env_list("NP_METRICS_QUEUES", "celery")

# --- admin console ---
# notifyplatform/ is not an installed app (it holds no models); its admin templates
# (dashboard, preview, index link) and console CSS are found through these two lists.
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "notifyplatform" / "templates"]
STATICFILES_DIRS = [*globals().get("STATICFILES_DIRS", []), BASE_DIR / "notifyplatform" / "static"]
# The API speaks JSON only (no form or multipart bodies: one input format to validate).
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["rest_framework.parsers.JSONParser"]
REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] = "notifyplatform.pagination.Pagination"
REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"] = [
    "notifyplatform.api_filters.StrictFilterBackend",
    "rest_framework.filters.OrderingFilter",
]

# --- delivery pipeline performance (bulk fan-out, batch sending) ---
NP_NOTIFY_BULK_CHUNK = env_int("NP_NOTIFY_BULK_CHUNK", 10_000)  # recipients per COPY round
NP_NOTIFY_BULK_ENQUEUE_CHUNK = env_int("NP_NOTIFY_BULK_ENQUEUE_CHUNK", 500)  # ids per task
NP_SEND_BATCH_SIZE = env_int("NP_SEND_BATCH_SIZE", 256)  # claimed at once, <= in flight
NP_SEND_ASYNC_CONCURRENCY = env_int("NP_SEND_ASYNC_CONCURRENCY", 256)  # in flight per process
NP_SEND_CONCURRENCY = env_int("NP_SEND_CONCURRENCY", 32)  # threads for blocking adapters (SMTP)

# --- realtime performance (per-process fan-out, coalesced frames) ---
NP_RT_HUB_GATHER_MS = env_int("NP_RT_HUB_GATHER_MS", 20)  # wait for more events when behind
NP_RT_HUB_REFRESH_SECONDS = env_int("NP_RT_HUB_REFRESH_SECONDS", 20)  # re-add group memberships
NP_RT_HUB_SYNC_SECONDS = float(os.environ.get("NP_RT_HUB_SYNC_SECONDS", "1"))  # Redis + gap check
NP_RT_REORDER_WAIT_MS = env_int("NP_RT_REORDER_WAIT_MS", 200)  # wait for a missing event
NP_WS_BATCH_MAX_EVENTS = env_int("NP_WS_BATCH_MAX_EVENTS", 200)  # events per coalesced frame

# --- batch jobs (deliveries.batch) ---
# A running job with no progress for this long has its unfinished chunks re-enqueued.
NP_BATCH_STALL_SECONDS = env_int("NP_BATCH_STALL_SECONDS", 300)
NP_BATCH_CHUNK_MAX_ATTEMPTS = env_int("NP_BATCH_CHUNK_MAX_ATTEMPTS", 3)
# The inviter of batches started without --inviter (an inactive account, created on demand).
NP_BATCH_INVITER_EMAIL = os.environ.get("NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")
CELERY_BEAT_SCHEDULE.update(
    {
        "resume-stalled-batches": {
            "task": "deliveries.resume_stalled_batches",
            "schedule": float(env_int("NP_BATCH_STALL_CHECK_SECONDS", 60)),
        }
    }
)
