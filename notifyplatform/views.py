"""Process probes: /healthz says the process is up, /readyz that its dependencies answer.

/readyz is anonymous (load balancers and orchestrators call it), so it answers a status
and one short reason code per failed check, never the exception text (which names
hosts, ports and database names); the text goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT = 2.0


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    from notifyplatform.redis_pool import sync_client

    client = sync_client(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _check_channel_layer() -> None:
    """Round-trip one message through the channel layer (what websockets fan out through).

    The probe uses an ordinary channel name, not a process-local one from
    ``new_channel()``: channels_redis serialises every process-local receive of a process
    behind one lock, and the realtime hub holds that lock for as long as it waits on its
    own channel (i.e. for ever on an idle server), so a process-local probe never got a
    turn and /readyz answered 503 under daphne as soon as one websocket had connected.
    """
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def roundtrip() -> None:
        channel = f"readyz.{uuid.uuid4().hex}"
        await layer.send(channel, {"type": "readyz.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=CHANNEL_LAYER_TIMEOUT)
        if message.get("type") != "readyz.ping":
            raise RuntimeError(f"unexpected message {message!r}")

    async_to_sync(roundtrip)()


CHECKS = (
    ("database", _check_database, "DATABASE_UNAVAILABLE"),
    ("redis", _check_redis, "REDIS_UNAVAILABLE"),
    ("channel_layer", _check_channel_layer, "CHANNEL_LAYER_UNAVAILABLE"),
)


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    reasons: list[str] = []
    for name, check, reason in CHECKS:
        started = time.perf_counter()
        try:
            check()
            checks[name] = {"ok": True}
        except Exception as exc:  # a probe reports every failure, whatever its type
            code = (
                f"{reason.removesuffix('_UNAVAILABLE')}_TIMEOUT"
                if isinstance(exc, TimeoutError)
                else reason
            )
            logger.warning("readyz: %s failed (%s): %s: %s", name, code, type(exc).__name__, exc)
            checks[name] = {"ok": False, "reason": code}
            reasons.append(code)
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    body: dict[str, object] = {"status": "unavailable" if reasons else "ok", "checks": checks}
    if reasons:
        body["reason"] = reasons[0]
    return JsonResponse(body, status=503 if reasons else 200)
