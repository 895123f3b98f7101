"""Real-time: websockets (heartbeats, limits, origins, compression), event retention and
the per-process fan-out hub."""

from __future__ import annotations

import os

from notifyplatform.conf.env import env_bool, env_int, env_list

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
