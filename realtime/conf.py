"""Real-time settings with their defaults (the settings module may override each)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

_DEFAULTS: dict[str, object] = {
    # seconds between server pings; a client may ask for another value with
    # ?heartbeat=N, clamped to [MIN, MAX]
    "NP_WS_HEARTBEAT_INTERVAL": 30,
    "NP_WS_HEARTBEAT_MIN": 5,
    "NP_WS_HEARTBEAT_MAX": 300,
    # slack the stale-connection sweep allows on top of two missed heartbeats
    "NP_WS_HEARTBEAT_GRACE": 5,
    # counters are written every N messages or S seconds, and at disconnect
    "NP_WS_FLUSH_MESSAGES": 100,
    "NP_WS_FLUSH_SECONDS": 10,
    "NP_WS_MAX_TOPICS": 200,
    "NP_WS_MAX_MESSAGE_BYTES": 64 * 1024,
    # frames up to NP_WS_MAX_MESSAGE_BYTES are read; larger ones up to this get a
    # MESSAGE_TOO_LARGE error frame; past this the server closes with 1009
    "NP_WS_MAX_FRAME_BYTES": 1024 * 1024,
    "NP_WS_MAX_ERRORS": 50,
    "NP_WS_MAX_PENDING_ACKS": 1000,
    "NP_REPLAY_MAX_EVENTS": 10_000,
    "NP_RT_RETENTION_DAYS": {"short": 1, "standard": 7, "long": 30},
    # take a transaction-level advisory lock before drawing a sequence number so
    # events commit in sequence order (see realtime.services.publish)
    "NP_RT_ORDERED_COMMIT": True,
    # per-process fan-out (realtime.hub): under load the dispatcher waits up to this
    # long for more events so they share frames; 0 turns the wait off
    "NP_RT_HUB_GATHER_MS": 20,
    # the hub re-adds its group memberships this often (the layer expires them after
    # its group_expiry, NP_CHANNEL_LAYER_GROUP_EXPIRY)
    "NP_RT_HUB_REFRESH_SECONDS": 20,
    # how often the hub checks that Redis still holds its memberships and moves its
    # ordering horizon to the latest committed event (finding lost messages)
    "NP_RT_HUB_SYNC_SECONDS": 1.0,
    # how long the hub waits for a missing event before reading it from the database
    "NP_RT_REORDER_WAIT_MS": 200,
    # how often (seconds) a server process writes the counters that are due, for all
    # its connections in one statement
    "NP_RT_HUB_FLUSH_TICK": 1.0,
    # most events one coalesced frame carries (clients that asked for ?batch=1)
    "NP_WS_BATCH_MAX_EVENTS": 200,
    # the server process's garbage collector (realtime.hub): when its hub starts, the
    # objects alive then (Django, the imports) are frozen out of collections and these
    # thresholds set; None leaves the collector as Python configures it
    "NP_RT_GC_THRESHOLDS": (20_000, 20, 20),
    # per-connection preferences (realtime.preferences): events a rate-limited
    # connection may hold before they are sent regardless of its rate
    "NP_WS_MAX_HELD_EVENTS": 10_000,
    # permessage-deflate when a client offers it (realtime.client_info); the server's
    # compressor window (9-15 bits) and zlib memory level (1-9) bound its memory
    "NP_WS_COMPRESSION": True,
    "NP_WS_COMPRESSION_WINDOW_BITS": 13,
    "NP_WS_COMPRESSION_MEM_LEVEL": 6,
    # geo_location from this header, only from these proxy addresses/CIDRs (off: empty)
    "NP_WS_GEO_HEADER": "",
    "NP_WS_TRUSTED_PROXIES": [],
    # minutes of bytes-per-minute kept in websocket_connections.bandwidth_usage
    "NP_WS_BANDWIDTH_MINUTES": 60,
}


def get(name: str) -> Any:
    return getattr(settings, name, _DEFAULTS[name])


def retention(policy: str | None) -> timedelta:
    days: dict[str, int] = get("NP_RT_RETENTION_DAYS")
    return timedelta(days=days.get(policy or "standard", days.get("standard", 7)))
