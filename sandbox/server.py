"""The sandbox HTTP server: provider endpoints, control API and the in-process runner."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .common import Provider, Runtime, json_response
from .config import PROVIDERS, RECEIPT_PROVIDERS, ConfigError, check_provider
from .hooks import WebhookReceiver
from .mailgun import Mailgun
from .postmark import Postmark
from .push import FCM, WebPush
from .sendgrid import SendGrid
from .signing import sendgrid_public_key_b64, sendgrid_public_key_pem
from .state import DEFAULT_MAX_MESSAGES, SandboxState
from .twilio import Twilio
from .vonage import Vonage

logger = logging.getLogger("sandbox")

PROVIDER_CLASSES: tuple[type[Provider], ...] = (
    Twilio,
    Vonage,
    Mailgun,
    SendGrid,
    Postmark,
    FCM,
    WebPush,
    WebhookReceiver,
)
RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("sandbox_runtime", Runtime)
PROVIDERS_KEY: web.AppKey[dict[str, Provider]] = web.AppKey("sandbox_providers", dict)
MAX_BODY = 20 * 1024 * 1024


class ControlAPI:
    """``/_sandbox/*``: configure, inspect and reset the sandbox."""

    def __init__(self, runtime: Runtime, providers: Mapping[str, Provider]) -> None:
        self.rt = runtime
        self.state = runtime.state
        self.providers = providers

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/_sandbox/config", self.get_config),
            web.post("/_sandbox/config", self.set_config),
            web.post("/_sandbox/reset", self.reset),
            web.get("/_sandbox/messages", self.messages),
            web.get("/_sandbox/receipts", self.receipts),
            web.get("/_sandbox/stats", self.stats),
            web.get("/_sandbox/keys", self.keys),
            web.get("/_sandbox/health", self.health),
            web.get("/_sandbox/health/{provider}", self.provider_health),
        ]

    @staticmethod
    def bad_request(message: str) -> web.Response:
        return json_response({"error": message}, 400)

    async def index(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "service": "notifyplatform provider sandbox",
                "providers": list(PROVIDERS),
                "control": [r.path for r in self.routes() if r.path.startswith("/_sandbox")],
            }
        )

    async def get_config(self, request: web.Request) -> web.Response:
        try:
            return json_response(self.state.get_config(request.query.get("provider")))
        except ConfigError as exc:
            return self.bad_request(str(exc))

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self.bad_request("body must be a JSON object")
        if not isinstance(body, dict):
            return self.bad_request("body must be a JSON object")
        try:
            return json_response(apply_config(self.state, body))
        except ConfigError as exc:
            return self.bad_request(str(exc))

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return json_response({"ok": True})

    async def messages(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            items = self.state.messages(query.get("provider"))
        except ConfigError as exc:
            return self.bad_request(str(exc))
        for key in ("outcome", "recipient", "message_id", "idempotency_key"):
            if key in query:
                items = [m for m in items if str(m.get(key)) == query[key]]
        if "limit" in query and query["limit"].isdigit():
            items = items[-int(query["limit"]) :]
        return json_response(items)

    async def receipts(self, request: web.Request) -> web.Response:
        provider = request.query.get("provider")
        if provider is not None and provider not in PROVIDERS:
            return self.bad_request(f"unknown provider {provider!r}")
        return json_response(self.state.receipts(provider))

    async def stats(self, request: web.Request) -> web.Response:
        data = self.state.stats()
        data["receipts_pending"] = len(self.rt.tasks)
        return json_response(data)

    async def keys(self, request: web.Request) -> web.Response:
        return json_response(public_keys(self.state, self.providers))

    async def health(self, request: web.Request) -> web.Response:
        summary = {}
        for name in PROVIDERS:
            failure = self.state.health_failure(name)
            summary[name] = (
                "ok"
                if failure is None
                else ("timeout" if failure.kind == "timeout" else str(failure.status))
            )
        return json_response({"status": "ok", "providers": summary})

    async def provider_health(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["provider"]
        try:
            check_provider(name)
        except ConfigError as exc:
            return json_response({"error": str(exc)}, 404)
        failure = self.state.health_failure(name)
        if failure is None:
            return json_response({"status": "ok", "provider": name})
        if failure.kind == "timeout":
            await self.rt.hang(self.state.config(name).hang_seconds)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        provider = self.providers[name]
        if failure.kind == "error_code" and failure.error_code is not None:
            return provider.error_code_response(failure.error_code)
        return provider.error_response(failure.status)


def apply_config(state: SandboxState, body: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a control-API config body; returns the resulting config.

    ``{"provider": "twilio", ...options}`` configures one provider ("*" or no provider: all);
    ``{"providers": {"twilio": {...}, "mailgun": {...}}}`` configures several at once.
    """
    body = dict(body)
    if "providers" in body:
        providers = body.pop("providers")
        if not isinstance(providers, Mapping):
            raise ConfigError("providers must be an object of provider -> options")
        for name in providers:
            check_provider(name)
        with state.lock:
            if body:
                state.configure(None, body)
            for name, opts in providers.items():
                if not isinstance(opts, Mapping):
                    raise ConfigError(f"options for {name!r} must be an object")
                state.configure(name, opts)
        return state.get_config()
    provider = body.pop("provider", None)
    return state.configure(provider, body)


def public_keys(state: SandboxState, providers: Mapping[str, Provider]) -> dict[str, Any]:
    """Everything a receiver needs to verify the sandbox's receipts."""
    sendgrid = providers["sendgrid"]
    assert isinstance(sendgrid, SendGrid)
    private_key = sendgrid.private_key()
    creds = {name: state.config(name).credentials for name in PROVIDERS}
    return {
        "twilio": {
            "account_sid": creds["twilio"].get("account_sid"),
            "auth_token": creds["twilio"].get("auth_token"),
        },
        "vonage": {
            "signature_secret": creds["vonage"].get("signature_secret"),
            "signature_method": creds["vonage"].get("signature_method"),
        },
        "mailgun": {"webhook_signing_key": creds["mailgun"].get("webhook_signing_key")},
        "sendgrid": {
            "public_key": sendgrid_public_key_b64(private_key),
            "public_key_pem": sendgrid_public_key_pem(private_key),
        },
        "postmark": {
            "webhook_username": creds["postmark"].get("webhook_username"),
            "webhook_password": creds["postmark"].get("webhook_password"),
        },
        "webhook": {"secrets": dict(state.config("webhook").secrets)},
    }


def create_app(runtime: Runtime) -> web.Application:
    """The aiohttp application serving every provider and the control API."""
    app = web.Application(client_max_size=MAX_BODY)
    app[RUNTIME_KEY] = runtime
    providers: dict[str, Provider] = {cls.name: cls(runtime) for cls in PROVIDER_CLASSES}
    app[PROVIDERS_KEY] = providers
    for provider in providers.values():
        app.router.add_routes(provider.routes())
    app.router.add_routes(ControlAPI(runtime, providers).routes())

    async def on_startup(app: web.Application) -> None:
        await runtime.startup()

    async def on_shutdown(app: web.Application) -> None:
        await runtime.shutdown()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def start_site(
    runtime: Runtime, host: str, port: int, *, shutdown_timeout: float = 1.0
) -> tuple[web.AppRunner, str]:
    """Start serving; returns the runner and the base URL actually bound."""
    app = create_app(runtime)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0]
    bound_host, bound_port = bound[0], bound[1]
    if ":" in bound_host:
        bound_host = f"[{bound_host}]"
    runtime.base_url = f"http://{bound_host}:{bound_port}"
    return runner, runtime.base_url


class SandboxServer:
    """The sandbox in a daemon thread with its own event loop (for tests and scripts).

    ``config`` takes per-provider option dicts keyed by provider name, plus options for every
    provider at the top level or under ``"*"``, e.g.
    ``{"receipt_url": "http://127.0.0.1:8000", "twilio": {"latency_ms": 20}}``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: Mapping[str, Any] | None = None,
        *,
        log_requests: bool = False,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.state = SandboxState(config, max_messages=max_messages, seed=seed)
        self.runtime = Runtime(self.state, log_requests=log_requests)
        self.url = ""
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._providers: dict[str, Provider] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Start listening; returns once the port is bound (raises on failure)."""
        if self._thread is not None:
            raise RuntimeError("sandbox already started")
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                runner, url = loop.run_until_complete(
                    start_site(self.runtime, self.host, self.requested_port)
                )
            except BaseException as exc:  # reported to start()
                errors.append(exc)
                ready.set()
                loop.close()
                return
            self._runner = runner
            self._providers = runner.app[PROVIDERS_KEY]
            self.url = url
            self.port = int(url.rsplit(":", 1)[1])
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="provider-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("sandbox did not start in time")
        if errors:
            self._thread = None
            raise errors[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: pending hangs end at once, pending receipts are dropped."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    def configure(self, provider: str | None = None, **opts: Any) -> dict[str, Any]:
        """Merge options into a provider's config (all providers when None); thread-safe."""
        return self.state.configure(provider, opts)

    def get_config(self, provider: str | None = None) -> dict[str, Any]:
        return self.state.get_config(provider)

    def messages(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded requests, oldest first."""
        return self.state.messages(provider)

    def receipts(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Copies of the receipt deliveries attempted, oldest first."""
        return self.state.receipts(provider)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def reset(self) -> None:
        self.state.reset()

    def keys(self) -> dict[str, Any]:
        """The secrets / public keys that receipts are signed with (as GET /_sandbox/keys)."""
        if not self._providers:
            raise RuntimeError("sandbox not started")
        return public_keys(self.state, self._providers)

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01
    ) -> Any:
        """Poll ``predicate`` until it returns something truthy; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout:.1f}s")
            time.sleep(interval)

    def wait_for_messages(
        self, count: int, provider: str | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            items = self.messages(provider)
            return items if len(items) >= count else None

        return self.wait_for(check, timeout)

    def wait_for_receipts(
        self, count: int, provider: str | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            items = self.receipts(provider)
            return items if len(items) >= count else None

        return self.wait_for(check, timeout)


async def serve(
    host: str,
    port: int,
    config: Mapping[str, Any] | None = None,
    *,
    log_requests: bool = False,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the sandbox in the current event loop until ``stop`` is set."""
    state = SandboxState(config, max_messages=max_messages)
    runtime = Runtime(state, log_requests=log_requests)
    runner, url = await start_site(runtime, host, port)
    receipts_to = state.config("twilio").receipt_url
    logger.info(
        "provider sandbox listening on %s (providers: %s; receipts to %s)",
        url,
        ", ".join(PROVIDERS),
        receipts_to or "nowhere",
    )
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


__all__ = [
    "PROVIDERS",
    "RECEIPT_PROVIDERS",
    "ControlAPI",
    "SandboxServer",
    "apply_config",
    "create_app",
    "serve",
    "start_site",
]
