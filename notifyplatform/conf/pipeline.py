"""The pipeline: providers (policy, circuit breaker, spend cap) and deliveries (retries,
sweeper, dispatcher, bulk fan-out, batch jobs, retention)."""

from __future__ import annotations

import os

from notifyplatform.conf.env import env_bool, env_int, env_list

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

# Daily spend cap per provider (providers.spendcap), in the unit of its cost_per_message;
# a provider row's configuration.daily_spend_cap overrides it; empty: no cap. Sends past
# it are deferred to the next window (or re-checked every NP_SPEND_CAP_RECHECK_SECONDS).
NP_PROVIDER_DAILY_SPEND_CAP = os.environ.get("NP_PROVIDER_DAILY_SPEND_CAP", "100")
NP_SPEND_CAP_WINDOW_SECONDS = env_int("NP_SPEND_CAP_WINDOW_SECONDS", 86400)
NP_SPEND_CAP_RECHECK_SECONDS = env_int("NP_SPEND_CAP_RECHECK_SECONDS", 900)

# --- deliveries (the pipeline) -----------------------------------------------------
# notify(): largest JSON size of context / metadata / message accepted (PAYLOAD_TOO_LARGE).
NP_NOTIFY_MAX_PAYLOAD_BYTES = env_int("NP_NOTIFY_MAX_PAYLOAD_BYTES", 64 * 1024)
NP_DELIVERY_MAX_RETRIES = env_int("NP_DELIVERY_MAX_RETRIES", 3)
# Retry backoff: uniform(0, min(CAP, BASE * 2**retry_count)) seconds ("full jitter").
NP_DELIVERY_RETRY_BASE_SECONDS = env_int("NP_DELIVERY_RETRY_BASE_SECONDS", 30)
NP_DELIVERY_RETRY_CAP_SECONDS = env_int("NP_DELIVERY_RETRY_CAP_SECONDS", 3600)
# A delivery in "sending" whose worker vanished is re-queued after this lease. A live
# worker renews the leases of its sends in flight every third of it (however slow the
# provider or long the failover), for at most LEASE_MAX seconds after the claim: a send
# stuck longer is given up on and may be re-queued (deliveries.services.sending.lease).
NP_DELIVERY_LEASE_SECONDS = env_int("NP_DELIVERY_LEASE_SECONDS", 120)
NP_DELIVERY_LEASE_MAX_SECONDS = env_int("NP_DELIVERY_LEASE_MAX_SECONDS", 3600)
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
# Workflows (campaigns.services.workflows): due steps per dispatcher run, how long a handed-out
# step stays leased before it is due again, and how many runs a trigger runs at once itself
# (more go to the batch queue).
NP_WORKFLOW_DISPATCH_BATCH_SIZE = env_int("NP_WORKFLOW_DISPATCH_BATCH_SIZE", 5000)
NP_WORKFLOW_LEASE_SECONDS = env_int("NP_WORKFLOW_LEASE_SECONDS", 30)
NP_WORKFLOW_INLINE_MAX = env_int("NP_WORKFLOW_INLINE_MAX", 100)
NP_DISPATCH_BATCH_SIZE = env_int("NP_DISPATCH_BATCH_SIZE", 10_000)
NP_DISPATCH_MAX_QUEUED = env_int("NP_DISPATCH_MAX_QUEUED", 20_000)

# --- delivery pipeline performance (bulk fan-out, batch sending) ---
NP_NOTIFY_BULK_CHUNK = env_int("NP_NOTIFY_BULK_CHUNK", 10_000)  # recipients per COPY round
NP_NOTIFY_BULK_ENQUEUE_CHUNK = env_int("NP_NOTIFY_BULK_ENQUEUE_CHUNK", 500)  # ids per task
NP_SEND_BATCH_SIZE = env_int("NP_SEND_BATCH_SIZE", 256)  # claimed at once, <= in flight
# Celery workers: the startup heap frozen out of the cyclic collector's reach, and its
# young-generation threshold (Python's is 700; 0 keeps it). notifyplatform/gcfreeze.py.
NP_GC_THRESHOLD = env_int("NP_GC_THRESHOLD", 50_000)
NP_SEND_ASYNC_CONCURRENCY = env_int("NP_SEND_ASYNC_CONCURRENCY", 256)  # in flight per process
NP_SEND_CONCURRENCY = env_int("NP_SEND_CONCURRENCY", 32)  # threads for blocking adapters (SMTP)


# --- batch jobs (deliveries.batch) ---
# A running job with no progress for this long has its unfinished chunks re-enqueued.
NP_BATCH_STALL_SECONDS = env_int("NP_BATCH_STALL_SECONDS", 300)
NP_BATCH_CHUNK_MAX_ATTEMPTS = env_int("NP_BATCH_CHUNK_MAX_ATTEMPTS", 3)
# The inviter of batches started without --inviter (an inactive account, created on demand).
NP_BATCH_INVITER_EMAIL = os.environ.get("NP_BATCH_INVITER_EMAIL", "batch@notifyplatform.invalid")

# --- retention (deliveries.retention): finished rows older than N days are deleted in
# batches on beat; 0 keeps a table forever. Undelivered rows (pending, sending, scheduled)
# are never deleted. real_time_events expire by their own NP_RT_RETENTION_*_DAYS.
NP_RETENTION_NOTIFICATIONS_DAYS = env_int("NP_RETENTION_NOTIFICATIONS_DAYS", 90)
NP_RETENTION_DELIVERIES_DAYS = env_int("NP_RETENTION_DELIVERIES_DAYS", 90)
NP_RETENTION_CONNECTIONS_DAYS = env_int("NP_RETENTION_CONNECTIONS_DAYS", 30)
NP_RETENTION_BATCH_SIZE = env_int("NP_RETENTION_BATCH_SIZE", 5000)  # rows per transaction
NP_RETENTION_MAX_SECONDS = env_int("NP_RETENTION_MAX_SECONDS", 60)  # per table and run

# --- the end-user preference page (deliveries/preference_links.py): every email to a user
# carries a signed link to /p/<token>/ in its footer; the link works this many days.
NP_PREFERENCE_LINK_MAX_AGE_DAYS = env_int("NP_PREFERENCE_LINK_MAX_AGE_DAYS", 90)
# --- the in-app fast path (deliveries/services/notify/inapp_sent.py): a due
# in-app delivery is written as sent in the fan-out's transaction, its event published
# after commit in groups of NP_INAPP_PUBLISH_GROUP; 0 sends every row through the queue.
NP_INAPP_FAST_PATH = env_bool("NP_INAPP_FAST_PATH", True)
# A group holds the platform's event-ordering lock for its insert (~50 µs an event on the
# 2-core bench machine): 250 keeps every other publish's p99 under 50 ms while 10,000
# in-app events go out (1,000: 95 ms; bench/auction_close_stall.py).
NP_INAPP_PUBLISH_GROUP = env_int("NP_INAPP_PUBLISH_GROUP", 250)
