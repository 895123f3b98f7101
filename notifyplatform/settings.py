"""Settings, twelve-factor style: everything that differs between machines is an
environment variable, and every default is the safe one (DEBUG off, loopback hosts).

Environment variables (all optional; the README lists them with examples):
    DATABASE_URL   postgres://user:pass@host:port/name  (default: the launcher's, else local)
    REDIS_URL      redis://host:port/db                  (default: the launcher's, else local)
    SECRET_KEY     signing key; required (make run's local/embedded modes and the tests
                   use one generated once into .run/secret_key)
    DEBUG          "1"/"true" turns debug on (default off)
    ALLOWED_HOSTS  comma-separated (default "127.0.0.1,localhost,[::1]")
    CSRF_TRUSTED_ORIGINS, TIME_ZONE, LOG_LEVEL, NP_* feature settings below and in
                   notifyplatform/conf/ (api, queues, security, pipeline, realtime, sources).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dj_database_url

from notifyplatform.conf.env import env_bool, env_int, env_list

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
    # a NUL byte in a query parameter is a 400 here, not a PostgreSQL DataError (500)
    "notifyplatform.querystring.RejectNulQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "notifyplatform.urls"
WSGI_APPLICATION = "notifyplatform.wsgi.application"
ASGI_APPLICATION = "notifyplatform.asgi.application"

TEMPLATES: list[dict[str, Any]] = [
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

# Each Redis role its own URL (notifyplatform/conf/stores.py; Sentinel URLs accepted).
from notifyplatform.conf import stores as _stores  # noqa: E402

CACHES = {"default": _stores.cache_config(REDIS_URL)}
CHANNEL_LAYER_REDIS_URL = os.environ.get("CHANNEL_LAYER_REDIS_URL") or REDIS_URL
# providers' shared counters (rate limits, circuits, spend caps); empty: REDIS_URL. It may
# also be a Redis Cluster (redis+cluster://node:port).
LIMITS_REDIS_URL = os.environ.get("LIMITS_REDIS_URL", "")

# redis-py caps an asyncio pool at 100 connections by default; with hundreds of
# websocket clients joining at once that fails with "Too many connections", so the
# layer's host is a dict with a larger pool.
CHANNEL_LAYERS: dict[str, Any] = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                _stores.channel_layer_host(
                    CHANNEL_LAYER_REDIS_URL, env_int("NP_CHANNEL_LAYER_MAX_CONNECTIONS", 2000)
                )
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
# CELERY_BROKER_URL: redis://, a sentinel URL, or amqp:// (RabbitMQ: quorum queues and
# publisher confirms); the queues and transport options follow the broker.
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
from notifyplatform.conf.queues import *  # noqa: E402, F403  (queues, routes)
from notifyplatform.conf.queues import NP_QUEUES  # noqa: E402

CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_TASK_QUEUES = _stores.celery_broker(
    os.environ.get("CELERY_BROKER_URL") or REDIS_URL,
    visibility_timeout=env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    queue_names=NP_QUEUES,
)

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
from notifyplatform.conf.api import *  # noqa: E402, F403  (REST_FRAMEWORK, SPECTACULAR_SETTINGS)

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

# --- media: files the platform makes (news narrations' audio) --------------------------
# Served by the app at MEDIA_URL (invitations.media_urls); put a shared volume here when
# web and worker containers run apart.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("NP_MEDIA_ROOT", str(BASE_DIR / "media")))
NP_NARRATION_AUDIO_DIR = Path(
    os.environ.get("NP_NARRATION_AUDIO_DIR", str(MEDIA_ROOT / "narrations"))
)
NP_ESPEAK_BINARY = os.environ.get("NP_ESPEAK_BINARY", "/usr/bin/espeak-ng")

# --- security ----------------------------------------------------------------------
from notifyplatform.conf.security import *  # noqa: E402, F403  (headers, HTTPS, CSP, lockouts)
from notifyplatform.conf.security import csp_enabled  # noqa: E402

if csp_enabled:
    INSTALLED_APPS.append("csp")
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "csp.middleware.CSPMiddleware",
    )

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
# Tracked links (/c/<signed token>/, deliveries/services/clicks.py) stop working after this many
# days (then 404).
NP_CLICK_LINK_MAX_AGE_DAYS = int(os.environ.get("NP_CLICK_LINK_MAX_AGE_DAYS", "365"))
# Links inside bodies (the notification's own action/rich-content URLs) become tracked links at
# send time; a template's track_links can turn it off for that template (README "Tracked links").
NP_TRACK_LINKS = os.environ.get("NP_TRACK_LINKS", "true").strip().lower() not in {"0", "false"}
# rich_content limits (templates/rich/schema.py)
NP_RICH_MAX_BUTTONS = int(os.environ.get("NP_RICH_MAX_BUTTONS", "3"))
NP_RICH_MAX_HTML_BYTES = int(os.environ.get("NP_RICH_MAX_HTML_BYTES", "16384"))
NP_RICH_MAX_TEXT_CHARS = int(os.environ.get("NP_RICH_MAX_TEXT_CHARS", "2000"))
# One-click unsubscribe (RFC 8058, deliveries/unsubscribe.py): emails of these categories carry
# List-Unsubscribe (+ a mailto: when an address is given) and List-Unsubscribe-Post.
NP_UNSUBSCRIBE_CATEGORIES = frozenset(
    c.strip()
    for c in os.environ.get("NP_UNSUBSCRIBE_CATEGORIES", "marketing").split(",")
    if c.strip()
)
NP_UNSUBSCRIBE_MAILTO = os.environ.get("NP_UNSUBSCRIBE_MAILTO", "").strip()
from notifyplatform.conf.pipeline import *  # noqa: E402, F403  (providers, deliveries)
from notifyplatform.conf.pipeline import (  # noqa: E402
    NP_DISPATCH_INTERVAL_SECONDS,
    NP_SWEEP_INTERVAL_SECONDS,
)
from notifyplatform.conf.realtime import *  # noqa: E402, F403
from notifyplatform.conf.sources import *  # noqa: E402, F403  (auctions, invitations)

# --- beat schedule of the apps ---------------------------------------------------------
CELERY_BEAT_SCHEDULE.update(
    {
        "auctions-start": {"task": "auctions.start_auctions", "schedule": 10.0},
        "auctions-ending-notices": {
            "task": "auctions.send_auction_ending_notices",
            "schedule": 10.0,
        },
        "auctions-close": {"task": "auctions.close_auctions", "schedule": 5.0},
        # Dutch/Japanese ticks and candle ends: auction_rule_states.clock_due_at
        "auctions-clocks": {"task": "auctions.run_clocks", "schedule": 1.0},
    }
)
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
        "providers-check-health": {
            "task": "providers.tasks.check_provider_health",
            "schedule": float(env_int("NP_PROVIDER_HEALTH_INTERVAL", 60)),
        },
    }
)
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
        # workflows' due steps (campaigns.services.workflows.dispatch), on the same beat
        "campaigns-dispatch-workflow-steps": {
            "task": "campaigns.dispatch_workflow_steps",
            "schedule": NP_DISPATCH_INTERVAL_SECONDS,
            "options": {"expires": max(2 * NP_DISPATCH_INTERVAL_SECONDS, 1.0)},
        },
    }
)

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
NP_THROTTLE_RATES = {
    "user": os.environ.get("NP_THROTTLE_USER", "1000/min"),
    "token": os.environ.get("NP_THROTTLE_TOKEN", "1000/min"),
    "anon": os.environ.get("NP_THROTTLE_ANON", "100/min"),
}
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (NP_MAX_REQUEST_BYTES) get a JSON 413 under /api/.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware"),
    "notifyplatform.api_errors.RequestSizeLimitMiddleware",
)
# Swagger UI assets come from the drf-spectacular-sidecar package (no CDN).
INSTALLED_APPS.append("drf_spectacular_sidecar")
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
# Strict JSON bodies (REST_FRAMEWORK parser, conf/api.py) nest at most this deep.
NP_JSON_MAX_DEPTH = env_int("NP_JSON_MAX_DEPTH", 32)
# API Idempotency-Keys are scoped to the caller and remembered this long (then free again).
NP_IDEMPOTENCY_KEY_TTL_HOURS = env_int("NP_IDEMPOTENCY_KEY_TTL_HOURS", 24)
# Signed receipts: a signed timestamp further than this from now is refused (replays).
NP_RECEIPT_TOLERANCE_SECONDS = env_int("NP_RECEIPT_TOLERANCE_SECONDS", 300)

CELERY_BEAT_SCHEDULE.update(
    {
        "resume-stalled-batches": {
            "task": "deliveries.resume_stalled_batches",
            "schedule": float(env_int("NP_BATCH_STALL_CHECK_SECONDS", 60)),
        },
        # scheduled broadcasts whose time has come start their job
        "start-due-broadcasts": {
            "task": "campaigns.start_due_broadcasts",
            "schedule": float(env_int("NP_BROADCAST_DISPATCH_SECONDS", 10)),
        },
    }
)
NP_BROADCAST_CHUNK_SIZE = env_int("NP_BROADCAST_CHUNK_SIZE", 1000)
CELERY_BEAT_SCHEDULE.update(
    {
        "deliveries-retention": {
            "task": "deliveries.apply_retention",
            "schedule": float(env_int("NP_RETENTION_INTERVAL_SECONDS", 3600)),
        }
    }
)
