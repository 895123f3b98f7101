"""A lean Standard Webhooks receiver for throughput benchmarks.

    python -m sandbox.fasthooks --port 8026 --config sandbox.json

The full sandbox (``python -m sandbox``) records every request with its headers
and body, applies failure scenarios and serves the control API; per request that costs
more CPU than the sender being measured, and on a 2-core machine it shares the cores with
that sender. This receiver keeps only what a throughput check needs and does it on a bare
``asyncio.Protocol`` (HTTP/1.1 keep-alive, ``Content-Length`` bodies):

* ``POST /hooks/<name>``: the signature is verified exactly as the full sandbox does it
  (``webhook-id``/``webhook-timestamp``/``webhook-signature``, the hook's secret from the
  same config file, the same timestamp tolerance); a forged or unsigned request gets 401
  and is counted as ``unverified``. A verified one is counted, its ``webhook-id`` kept to
  count ``duplicates``; 200 ``{"ok": true}``.
* ``GET /_sandbox/hooks``: the counters per hook name as JSON
  (``received``, ``verified``, ``unverified``, ``unique``, ``duplicates``).
* ``POST /_sandbox/reset``: forget them.

Anything else is 404. Only loopback use is intended (it binds 127.0.0.1 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

from .signing import verify_standard_webhooks_signature

OK = b'{"ok": true}'
MAX_HEADER = 64 * 1024
MAX_BODY = 20 * 1024 * 1024


class HookCounters:
    """Per hook name: what arrived, what verified, which webhook-ids were seen."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.seen: dict[str, set[str]] = {}

    def count(self, name: str, key: str) -> None:
        counts = self.counts.setdefault(
            name, {"received": 0, "verified": 0, "unverified": 0, "unique": 0, "duplicates": 0}
        )
        counts[key] += 1

    def accept(self, name: str, webhook_id: str) -> None:
        seen = self.seen.setdefault(name, set())
        if webhook_id in seen:
            self.count(name, "duplicates")
        else:
            seen.add(webhook_id)
            self.count(name, "unique")

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {name: dict(counts) for name, counts in self.counts.items()}

    def reset(self) -> None:
        self.counts.clear()
        self.seen.clear()


def _response(status: int, reason: str, body: bytes, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode("latin-1") + body


def _error(status: int, reason: str, message: str) -> bytes:
    return _response(status, reason, json.dumps({"error": message}).encode())


class HookProtocol(asyncio.Protocol):
    def __init__(self, server: FastHookServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self._close(out, _error(431, "Request Header Fields Too Large", "headers"))
                    return
                break
            head = bytes(self.buffer[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _version = lines[0].split(" ", 2)
            except ValueError:
                self._close(out, _error(400, "Bad Request", "bad request line"))
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._close(out, _error(411, "Length Required", "chunked bodies unsupported"))
                return
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self._close(out, _error(400, "Bad Request", "bad Content-Length"))
                return
            if len(self.buffer) < end + 4 + length:
                break
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            out.append(self.server.handle(method, target, headers, body))
            if headers.get("connection", "").lower() == "close":
                self._close(out, None)
                return
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _close(self, out: list[bytes], last: bytes | None) -> None:
        if self.transport is None:
            return
        if last is not None:
            out.append(last)
        self.transport.write(b"".join(out))
        self.transport.close()


class FastHookServer:
    def __init__(self, secrets: dict[str, str], tolerance: float = 300) -> None:
        self.secrets = secrets
        self.tolerance = tolerance
        self.counters = HookCounters()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        path = target.split("?", 1)[0]
        if method == "POST" and path.startswith("/hooks/"):
            return self.receive(path[len("/hooks/") :], headers, body)
        if method == "GET" and path == "/_sandbox/hooks":
            return _response(200, "OK", json.dumps(self.counters.snapshot()).encode())
        if method == "POST" and path == "/_sandbox/reset":
            self.counters.reset()
            return _response(200, "OK", OK)
        return _error(404, "Not Found", f"no route {method} {path}")

    def receive(self, name: str, headers: dict[str, str], body: bytes) -> bytes:
        self.counters.count(name, "received")
        webhook_id = headers.get("webhook-id")
        secret = self.secrets.get(name)
        if secret is not None:
            reason = self.verify(secret, body, headers)
            if reason is not None:
                self.counters.count(name, "unverified")
                return _error(401, "Unauthorized", reason)
            self.counters.count(name, "verified")
        if webhook_id:
            self.counters.accept(name, webhook_id)
        return _response(200, "OK", OK)

    def verify(self, secret: str, body: bytes, headers: dict[str, str]) -> str | None:
        """None when the request is signed by ``secret``, else why not (as the sandbox)."""
        msg_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
        if not msg_id or not timestamp or not signature:
            return "missing webhook-id, webhook-timestamp or webhook-signature header"
        try:
            ts = int(timestamp)
        except ValueError:
            return "invalid webhook-timestamp"
        if abs(time.time() - ts) > self.tolerance:
            return "webhook-timestamp outside the tolerance"
        if not verify_standard_webhooks_signature(secret, msg_id, timestamp, body, signature):
            return "invalid signature"
        return None


def secrets_from_config(config: dict[str, Any]) -> tuple[dict[str, str], float]:
    """Hook secrets and tolerance from a sandbox config file's ``webhook`` section
    (``{"name": ..., "secret": ...}`` and/or ``{"secrets": {name: secret}}``)."""
    hook = config.get("webhook") or {}
    secrets = {str(k): str(v) for k, v in (hook.get("secrets") or {}).items()}
    if hook.get("name") and hook.get("secret"):
        secrets[str(hook["name"])] = str(hook["secret"])
    return secrets, float(hook.get("tolerance_seconds", 300))


async def serve(host: str, port: int, server: FastHookServer, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: HookProtocol(server), host, port, backlog=4096, reuse_address=True
    )
    bound = listener.sockets[0].getsockname()
    print(f"fasthooks listening on http://{bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
    async with listener:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.fasthooks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--config", help="sandbox JSON config (its webhook section is used)")
    args = parser.parse_args(argv)
    config: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            config = json.load(fh)
    secrets, tolerance = secrets_from_config(config)
    server = FastHookServer(secrets, tolerance)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, server, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
