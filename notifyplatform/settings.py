"""Settings, twelve-factor style: everything that differs between machines is an
environment variable, and every default is the safe one (DEBUG off, loopback hosts).

Environment variables (all optional; the README lists them with examples):
    DATABASE_URL   postgres://user:pass@host:port/name  (default: the launcher's, else local)
    REDIS_URL      redis://host:port/db                  (default: the launcher's, else local)
    SECRET_KEY     signing key; required (make run's local/embedded modes and the tests
                   use one generated once into .run/secret_key)
    DEBUG          "1"/"true" turns debug on (default off)
    ALLOWED_HOSTS  comma-separated (default "127.0.0.1,localhost,[::1]")
    CSRF_TRUSTED_ORIGINS, TIME_ZONE, LOG_LEVEL, NP_* feature settings below.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from kombu import Exchange as _Exchange
from kombu import Queue as _Queue

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("NP_RUN_DIR", BASE_DIR / ".run"))


def _launcher_services() -> dict[str, str]:
    """The services the launcher chose (``make run`` writes DATABASE_URL and REDIS_URL to
    <run dir>/services.env; a SECRET_KEY line there is read too): a ``manage.py`` command
    typed in a second shell then uses the same PostgreSQL and Redis, embedded ones
    included. The environment wins."""
    try:
        text = (RUN_DIR / "services.env").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and value.strip():
            found[key] = value.strip()
    return found


for _key, _value in _launcher_services().items():
    # into the environment too, so processes this one starts use the same services
    os.environ.setdefault(_key, _value)


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
    """SECRET_KEY from the environment; required.

    Every process of every host of one installation (daphne, workers, beat, manage.py)
    must share the key: sessions, invitation tokens and webhook secrets are signed with
    it, so a key generated per host would break them across hosts. ``make run`` in its
    local/embedded modes passes its own generated key (``.run/secret_key``) to what it
    starts; the test suite (pytest) falls back to that file and hands it on through the
    environment to the workers and servers it starts. Anything else refuses to start.
    """
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if "pytest" in sys.modules:
        from notifyplatform.launcher.services import generated_secret_key

        key = generated_secret_key(RUN_DIR)
        os.environ["SECRET_KEY"] = key  # the processes the tests start share it
        return key
    raise SystemExit(
        "error: SECRET_KEY is not set; set it to the same long random value on every host"
        " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )


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
    "campaigns",
    "realtime",
    "auctions",
    "demo",
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
# Connections are bounded per process by psycopg 3's pool (Django's OPTIONS["pool"]),
# in daphne and in the workers alike: a thread takes a connection for a request or a
# task and gives it back at its end, so NP_DB_POOL_MAX_SIZE caps what one process holds
# however many threads it runs (daphne runs a thread per concurrent request; with
# persistent connections each thread kept its own). A thread that finds the pool empty
# waits up to NP_DB_POOL_TIMEOUT seconds. The pool needs CONN_MAX_AGE = 0 (the pool, not
# Django, keeps connections open). NP_DB_POOL=0 turns it off: a connection per request
# or task (DB_CONN_MAX_AGE, default 0), e.g. behind PgBouncer if you prefer that.
NP_DB_POOL = env_bool("NP_DB_POOL", True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=0 if NP_DB_POOL else env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=not NP_DB_POOL,  # the pool checks a connection before lending it
    )
}
if NP_DB_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("NP_DB_POOL_MIN_SIZE", 1),
        "max_size": env_int("NP_DB_POOL_MAX_SIZE", 10),
        "timeout": float(os.environ.get("NP_DB_POOL_TIMEOUT") or 30),
        "max_idle": float(os.environ.get("NP_DB_POOL_MAX_IDLE") or 300),
    }
# Behind PgBouncer in transaction mode a cursor WITH HOLD (Django's server-side cursors,
# QuerySet.iterator()) cannot outlive its transaction: set NP_DB_PGBOUNCER=1 there.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("NP_DB_PGBOUNCER", False)
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
# three are bound to the default "control" exchange and key in the broker)
CELERY_TASK_QUEUES = [_Queue(name, _Exchange(name), routing_key=name) for name in NP_QUEUES]
CELERY_TASK_DEFAULT_QUEUE = NP_QUEUE_CONTROL
CELERY_TASK_ROUTES = {
    "deliveries.send_delivery": {"queue": NP_QUEUE_SEND},
    "deliveries.send_deliveries": {"queue": NP_QUEUE_SEND},
    "deliveries.run_batch_chunk": {"queue": NP_QUEUE_BATCH},
    # the rest (beat's tasks) go to the default queue, control
}

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

# HTTPS deployment: NP_HTTPS=1 marks cookies Secure, redirects HTTP to HTTPS (except the
# probes, which load balancers and Prometheus call on the inside) and sends HSTS.
# NP_BEHIND_PROXY=1 trusts the proxy's X-Forwarded-Proto (only behind a proxy that sets
# it and strips a client's; or run daphne with --proxy-headers instead).
NP_HTTPS = env_bool("NP_HTTPS", False)
if NP_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("NP_HSTS_SECONDS", 365 * 86400)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("NP_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("NP_HSTS_PRELOAD", True)
if env_bool("NP_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy on every response (django-csp): scripts from this site only,
# inline ones only with the response's nonce; no plugins, frames or foreign forms. Inline
# style attributes stay allowed (admin badges, the dashboard's SVG). NP_CSP=0 turns it off.
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE  # noqa: E402

if env_bool("NP_CSP", True):
    INSTALLED_APPS.append("csp")
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "csp.middleware.CSPMiddleware",
    )
    CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF, NONCE],
            "style-src": [SELF, UNSAFE_INLINE],
            "img-src": [SELF, "data:"],
            "font-src": [SELF, "data:"],
            "connect-src": [SELF],  # includes ws(s):// to this host (CSP level 3)
            "object-src": [NONE],
            "base-uri": [SELF],
            "form-action": [SELF],
            "frame-ancestors": [NONE],
            **({"upgrade-insecure-requests": True} if NP_HTTPS else {}),
        }
    }

# --- email (the SMTP provider's defaults) -----------------------------------------
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "notifyplatform <noreply@localhost>")
# The Maildir of `make run`'s local SMTP sink (notifyplatform.mailsink), shown in the admin
# at /admin/mail/; the launcher sets it. Empty: no sink.
NP_MAIL_SINK_DIR = os.environ.get("NP_MAIL_SINK_DIR", "")

# --- logging -----------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, and the
# notification_id / delivery_id of the delivery being sent) from every process, Celery's
# included (notifyplatform/celery.py). plain (default): text lines.
from notifyplatform.logs import logging_config  # noqa: E402

LOG_FORMAT = (os.environ.get("LOG_FORMAT") or "plain").strip().lower()
LOGGING = logging_config(log_format=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO"))

# --- platform settings -------------------------------------------------------------
NP_PUBLIC_BASE_URL = os.environ.get("NP_PUBLIC_BASE_URL", "http://127.0.0.1:8000")

# --- auctions & invitations (event sources) ---
# Watchers and bidders are warned once, this many seconds before an auction ends.
NP_AUCTION_ENDING_NOTICE_SECONDS = env_int("NP_AUCTION_ENDING_NOTICE_SECONDS", 300)
# Invitations neither viewed nor answered after this long get a reminder (on beat, and by
# reminder batch jobs).
from datetime import timedelta as _timedelta  # noqa: E402

NP_INVITATION_REMINDER_AFTER = _timedelta(
    seconds=env_int("NP_INVITATION_REMINDER_AFTER_SECONDS", 3 * 86400)
)
NP_INVITATION_MAX_REMINDERS = env_int("NP_INVITATION_MAX_REMINDERS", 2)
# Beat reminds due invitations and expires overdue ones (invitations.tasks), this many
# rows per run at most; the rest wait for the next run.
NP_INVITATION_BEAT_BATCH_SIZE = env_int("NP_INVITATION_BEAT_BATCH_SIZE", 1000)
CELERY_BEAT_SCHEDULE.update(
    {
        "invitations-remind": {
            "task": "invitations.remind_invitations",
            "schedule": float(env_int("NP_INVITATION_REMINDER_INTERVAL_SECONDS", 300)),
        },
        "invitations-expire": {
            "task": "invitations.expire_invitations",
            "schedule": float(env_int("NP_INVITATION_EXPIRY_INTERVAL_SECONDS", 60)),
        },
    }
)
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
# What provider rows may point at (providers/policy.py): credential variables must start
# with their adapter's prefix (TWILIO_, MAILGUN_, ...) or match one of these names or
# "PREFIX*" patterns; servers that receive credentials (api_base_url, token_url, SMTP host)
# must be the provider's own or one of these hosts ("host" or "host:port").
NP_PROVIDER_CREDENTIAL_ENV_ALLOWED = env_list("NP_PROVIDER_CREDENTIAL_ENV_ALLOWED", "")
NP_PROVIDER_ALLOWED_HOSTS = env_list("NP_PROVIDER_ALLOWED_HOSTS", "")
# The local provider sandbox (`make run` sets it); its host:port is allowed as above.
NP_SANDBOX_URL = os.environ.get("NP_SANDBOX_URL", "")
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
# Dispatcher: every INTERVAL seconds, due pending rows (retries, scheduled sends, quiet
# hours ending, rows whose enqueue was lost with the broker) untouched for the sweep grace
# go to the send queue, up to BATCH_SIZE rows a run and while the send queue holds fewer
# than MAX_QUEUED rows' worth of messages (it keeps the workers fed, never floods Redis).
NP_DISPATCH_INTERVAL_SECONDS = float(os.environ.get("NP_DISPATCH_INTERVAL_SECONDS") or 1)
NP_DISPATCH_BATCH_SIZE = env_int("NP_DISPATCH_BATCH_SIZE", 10_000)
NP_DISPATCH_MAX_QUEUED = env_int("NP_DISPATCH_MAX_QUEUED", 20_000)
CELERY_BEAT_SCHEDULE.update(
    {
        "deliveries-sweep": {
            "task": "deliveries.sweep_deliveries",
            "schedule": float(NP_SWEEP_INTERVAL_SECONDS),
        },
        "deliveries-dispatch-due": {
            "task": "deliveries.dispatch_due",
            "schedule": NP_DISPATCH_INTERVAL_SECONDS,
            # a run that waited longer than two intervals is stale: the next one is coming
            "options": {"expires": max(2 * NP_DISPATCH_INTERVAL_SECONDS, 1.0)},
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
# Pages (origins: scheme://host[:port], comma-separated) allowed to open websockets,
# besides this server's own origin and NP_PUBLIC_BASE_URL's (see realtime/origin.py).
NP_WS_ALLOWED_ORIGINS = env_list("NP_WS_ALLOWED_ORIGINS", "")
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
# Client addresses are REMOTE_ADDR, never a client-sent X-Forwarded-For (DRF trusts the
# header when NUM_PROXIES is unset); behind a proxy run daphne with --proxy-headers.
REST_FRAMEWORK["NUM_PROXIES"] = 0
# Failed API-token authentications per client address: past the limit within the window,
# token requests from that address get 429 with Retry-After (users/lockout.py).
NP_TOKEN_FAILURE_LIMIT = env_int("NP_TOKEN_FAILURE_LIMIT", 20)
NP_TOKEN_FAILURE_WINDOW_SECONDS = env_int("NP_TOKEN_FAILURE_WINDOW_SECONDS", 900)
# Admin logins (django-axes): an account, and separately an address, with
# NP_LOGIN_FAILURE_LIMIT failed logins is locked out (429) for NP_LOGIN_COOLOFF_MINUTES.
INSTALLED_APPS.append("axes")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out accounts/addresses first
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AXES_FAILURE_LIMIT = env_int("NP_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = _timedelta(minutes=env_int("NP_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # each on its own, not the pair
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "users.lockout.client_address"
AXES_USERNAME_CALLABLE = "users.lockout.login_username"
AXES_USERNAME_FORM_FIELD = "username"  # the admin login form's field (accounts use email)
AXES_HTTP_RESPONSE_CODE = 429
# Abuse limits on invitations to new external recipients (addresses and numbers that are
# no user's and that the inviter never invited before), per inviter and fixed window, SMS
# stricter; and how many invitations one address or number may get a day from everyone
# (invitations.limits). 0 refuses every such invitation.
NP_INVITE_NEW_EMAIL_PER_HOUR = env_int("NP_INVITE_NEW_EMAIL_PER_HOUR", 20)
NP_INVITE_NEW_EMAIL_PER_DAY = env_int("NP_INVITE_NEW_EMAIL_PER_DAY", 50)
NP_INVITE_NEW_SMS_PER_HOUR = env_int("NP_INVITE_NEW_SMS_PER_HOUR", 5)
NP_INVITE_NEW_SMS_PER_DAY = env_int("NP_INVITE_NEW_SMS_PER_DAY", 10)
NP_INVITE_PER_DESTINATION_PER_DAY = env_int("NP_INVITE_PER_DESTINATION_PER_DAY", 3)
# Daily spend cap per provider (providers.spendcap), in the unit of its cost_per_message;
# a provider row's configuration.daily_spend_cap overrides it; empty: no cap. Sends past
# it are deferred to the next window (or re-checked every NP_SPEND_CAP_RECHECK_SECONDS).
NP_PROVIDER_DAILY_SPEND_CAP = os.environ.get("NP_PROVIDER_DAILY_SPEND_CAP", "100")
NP_SPEND_CAP_WINDOW_SECONDS = env_int("NP_SPEND_CAP_WINDOW_SECONDS", 86400)
NP_SPEND_CAP_RECHECK_SECONDS = env_int("NP_SPEND_CAP_RECHECK_SECONDS", 900)
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
            # without it `check --deploy` warns (drf_spectacular.W001: "status" collision)
            "InvitationStatusEnum": "invitations.models.InvitationStatus",
            "PriorityEnum": "notifyplatform.choices.Priority",
            "EventPriorityEnum": "realtime.models.EventPriority",
        },
    }
)
# /metrics needs "Authorization: Bearer <NP_METRICS_TOKEN>" or a staff session. Only in a
# local run (NP_LOCAL_RUN=1, set by `make run` when PostgreSQL and Redis are local or
# embedded) may a loopback client read it without either.
NP_METRICS_TOKEN = os.environ.get("NP_METRICS_TOKEN", "")
# np_deliveries counts the deliveries created in this many seconds before a scrape.
NP_METRICS_WINDOW_SECONDS = env_int("NP_METRICS_WINDOW_SECONDS", 3600)
NP_LOCAL_RUN = env_bool("NP_LOCAL_RUN", False)
# The send-latency histogram covers deliveries sent in this many seconds before a scrape.
NP_METRICS_LATENCY_WINDOW_SECONDS = env_int("NP_METRICS_LATENCY_WINDOW_SECONDS", 3600)
# Celery queues whose depth /metrics reports (Redis list lengths).
NP_METRICS_QUEUES = env_list("NP_METRICS_QUEUES", ",".join(NP_QUEUES))

# --- admin console ---
# notifyplatform/ is not an installed app (it holds no models); its admin templates
# (dashboard, preview, index link) and console CSS are found through these two lists.
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "notifyplatform" / "templates"]
STATICFILES_DIRS = [*globals().get("STATICFILES_DIRS", []), BASE_DIR / "notifyplatform" / "static"]
# The API speaks JSON only (no form or multipart bodies: one input format to validate).
# Strict JSON: a depth limit, no duplicate keys, no inf/NaN; any bad body is a 400.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["notifyplatform.jsonparse.StrictJSONParser"]
NP_JSON_MAX_DEPTH = env_int("NP_JSON_MAX_DEPTH", 32)
# API Idempotency-Keys are scoped to the caller and remembered this long (then free again).
NP_IDEMPOTENCY_KEY_TTL_HOURS = env_int("NP_IDEMPOTENCY_KEY_TTL_HOURS", 24)
# Signed receipts: a signed timestamp further than this from now is refused (replays).
NP_RECEIPT_TOLERANCE_SECONDS = env_int("NP_RECEIPT_TOLERANCE_SECONDS", 300)
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

# --- realtime per-connection preferences and client info (realtime.preferences, .client_info)
NP_WS_MAX_HELD_EVENTS = env_int("NP_WS_MAX_HELD_EVENTS", 10_000)  # held by a rate limit, at most
NP_WS_COMPRESSION = env_bool("NP_WS_COMPRESSION", True)  # permessage-deflate when offered
NP_WS_COMPRESSION_WINDOW_BITS = env_int("NP_WS_COMPRESSION_WINDOW_BITS", 13)  # 9-15
NP_WS_COMPRESSION_MEM_LEVEL = env_int("NP_WS_COMPRESSION_MEM_LEVEL", 6)  # 1-9
NP_WS_GEO_HEADER = os.environ.get("NP_WS_GEO_HEADER", "")  # e.g. CF-IPCountry; empty: off
NP_WS_TRUSTED_PROXIES = env_list("NP_WS_TRUSTED_PROXIES")  # addresses/CIDRs sending it
NP_WS_BANDWIDTH_MINUTES = env_int("NP_WS_BANDWIDTH_MINUTES", 60)  # per-minute history kept

# --- batch jobs (campaigns) ---
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

# --- retention (deliveries.retention): finished rows older than N days are deleted in
# batches on beat; 0 keeps a table forever. Undelivered rows (pending, sending, scheduled)
# are never deleted. real_time_events expire by their own NP_RT_RETENTION_*_DAYS.
NP_RETENTION_NOTIFICATIONS_DAYS = env_int("NP_RETENTION_NOTIFICATIONS_DAYS", 90)
NP_RETENTION_DELIVERIES_DAYS = env_int("NP_RETENTION_DELIVERIES_DAYS", 90)
NP_RETENTION_CONNECTIONS_DAYS = env_int("NP_RETENTION_CONNECTIONS_DAYS", 30)
NP_RETENTION_BATCH_SIZE = env_int("NP_RETENTION_BATCH_SIZE", 5000)  # rows per transaction
NP_RETENTION_MAX_SECONDS = env_int("NP_RETENTION_MAX_SECONDS", 60)  # per table and run
CELERY_BEAT_SCHEDULE.update(
    {
        "deliveries-retention": {
            "task": "deliveries.apply_retention",
            "schedule": float(env_int("NP_RETENTION_INTERVAL_SECONDS", 3600)),
        }
    }
)
