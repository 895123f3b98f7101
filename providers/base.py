"""The adapter interface (one module per provider behind one base class) and the HTTP
base that owns the client, the timeouts and the mapping of HTTP failures to codes.

Credentials never come from the database: ``Provider.credentials_required`` names
environment variables, and an adapter reads them with :meth:`BaseAdapter.env`. Which
variables a row may name, and which servers may receive them, is ``providers.policy``;
the adapter checks it again before it reads a variable or builds a URL.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from notifyplatform import jsonparse
from providers import errors, policy
from providers.errors import ProviderError
from providers.types import HealthResult, OutboundMessage, Receipt, SendResult

if TYPE_CHECKING:
    from django.http import HttpRequest

    from providers.models import Provider


class ReceiptSignatureError(Exception):
    """A status callback whose signature does not verify (the endpoint answers 403)."""


class ReceiptMalformedError(Exception):
    """A status callback whose body is not strict JSON (the endpoint answers 400)."""


def receipt_json(request: HttpRequest) -> Any:
    """The callback's JSON body, parsed strictly (depth limit, no duplicate keys, no inf):
    a crafted body is a 400, never a RecursionError."""
    try:
        return jsonparse.loads(request.body)
    except jsonparse.MalformedJSONError as exc:
        raise ReceiptMalformedError(str(exc)) from None


class BaseAdapter:
    kind: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    # Environment variables an adapter needs whatever the row says (besides
    # ``credentials_required``), by role; a row may rename them in
    # ``configuration["credential_env"] = {"auth_token": "MY_TWILIO_TOKEN"}``.
    credential_env: ClassVar[dict[str, str]] = {}
    required_credentials: ClassVar[tuple[str, ...]] = ()

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.config: dict[str, Any] = dict(provider.configuration or {})
        # one-time receipt tokens this adapter claimed (``providers.replay``): released
        # again when the receipt could not be applied, so the provider's retry is accepted
        self.claimed_nonces: list[tuple[str, str]] = []

    @property
    def name(self) -> str:
        return self.provider.provider_name

    # -- credentials -------------------------------------------------------------
    def configuration_refused(self) -> list[str]:
        """What this row names that ``providers.policy`` refuses (empty when fine): the
        variables whose values it reads and the servers it sends to. (Names that are only
        checked for presence, ``credentials_required``, are validated by the form.)"""
        problems = policy.configuration_problems(
            provider_class=self.kind or self.provider.provider_class,
            configuration=self.config,
            webhook_config=self.provider.webhook_config,
        )
        return [f"{field}: {msg}" for field, msgs in problems.items() for msg in msgs]

    def refused(self, problem: str) -> ProviderError:
        return errors.permanent(
            f"provider {self.name} configuration refused: {problem}", errors.UNCONFIGURED
        )

    def env_name(self, role: str) -> str:
        overrides = self.config.get("credential_env") or {}
        override = overrides.get(role) if isinstance(overrides, dict) else None
        return str(override or self.credential_env[role])

    def env(self, role: str) -> str:
        """The credential for ``role`` from the environment ('' when unset)."""
        name = self.env_name(role)
        if name == self.credential_env[role]:  # the adapter's own default, not the row's
            return os.environ.get(name, "")
        return self.env_var(name)

    def env_var(self, name: str) -> str:
        """The value of the variable ``name``, if ``providers.policy`` lets this adapter
        read it: a row edited in the database directly must not make it send
        ``SECRET_KEY`` as an API key. (Presence checks need no value and skip this.)"""
        problem = policy.env_name_problem(self.kind, name)
        if problem:
            raise self.refused(problem)
        return os.environ.get(name, "")

    def missing_credentials(self) -> list[str]:
        """Names of the environment variables this provider needs and does not have."""
        names = list(self.provider.credentials_required or [])
        names += [self.env_name(role) for role in self.required_credentials]
        missing: list[str] = []
        for name in names:
            if name and not os.environ.get(name) and name not in missing:
                missing.append(name)
        return missing

    # -- the interface -----------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError

    async def asend(self, message: OutboundMessage) -> SendResult:
        """The batch sender's coroutine send (on ``providers.aio``'s loop). By default the
        blocking :meth:`send` in a thread; adapters that can do without override it."""
        from providers import aio

        return await aio.to_thread(self.send, message)

    def check_health(self) -> HealthResult:
        return HealthResult(ok=True, checked=False)

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        """Verify and normalise a status callback; raise ReceiptSignatureError if forged."""
        raise ReceiptSignatureError(f"provider {self.name} does not accept receipts")

    # -- helpers -----------------------------------------------------------------
    def unconfigured(self) -> ProviderError:
        missing = ", ".join(self.missing_credentials())
        return errors.permanent(
            f"provider {self.name} unconfigured: missing env {missing}", errors.UNCONFIGURED
        )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def response_summary(response: httpx.Response, limit: int = 2000) -> dict[str, Any]:
    """A JSON-safe record of a provider response for ``provider_response``."""
    summary: dict[str, Any] = {"status_code": response.status_code}
    try:
        summary["body"] = response.json()
    except (json.JSONDecodeError, ValueError):
        summary["body"] = response.text[:limit]
    request_id = response.headers.get("x-request-id")
    if request_id:
        summary["request_id"] = request_id
    return summary


# httpx logs every request at INFO: at thousands of sends per second that line costs more
# than the request (each attempt is recorded on the delivery row anyway). An explicit level
# in LOGGING still wins: only an unset (NOTSET) level is raised to WARNING.
_httpx_logger = logging.getLogger("httpx")
if _httpx_logger.level == logging.NOTSET:
    _httpx_logger.setLevel(logging.WARNING)


def _send_concurrency() -> int:
    from django.conf import settings

    return int(getattr(settings, "NP_SEND_CONCURRENCY", 32))


_clients: dict[tuple[int, str], httpx.Client] = {}
_clients_lock = threading.Lock()


def shared_client(key: str, timeout: httpx.Timeout) -> httpx.Client:
    """One pooled keep-alive client per process and adapter kind.

    Adapters are built per send, so the pool lives here; the pid is in the key because
    a Celery prefork child must not reuse sockets inherited from its parent.
    """
    cache_key = (os.getpid(), key)
    client = _clients.get(cache_key)
    if client is None:
        with _clients_lock:
            client = _clients.get(cache_key)
            if client is None:
                # keep-alive for every connection the batch sender's threads may hold at
                # once (NP_SEND_CONCURRENCY): a smaller keep-alive pool closes and reopens
                # TCP connections under load instead of reusing them
                pool = max(20, _send_concurrency())
                client = httpx.Client(
                    timeout=timeout,
                    limits=httpx.Limits(
                        max_connections=max(100, pool), max_keepalive_connections=pool
                    ),
                    follow_redirects=False,
                    headers={"User-Agent": "notifyplatform/1.0"},
                )
                _clients[cache_key] = client
    return client


class HttpAdapter(BaseAdapter):
    """Base of adapters that talk HTTP to a provider API.

    ``configuration["api_base_url"]`` overrides ``default_base_url`` (the sandbox, a
    regional endpoint); ``configuration["timeout"]`` overrides the read timeout.
    """

    default_base_url: ClassVar[str] = ""
    idempotency_header: ClassVar[str | None] = "Idempotency-Key"
    connect_timeout: ClassVar[float] = 5.0
    read_timeout: ClassVar[float] = 10.0
    # A 404 from most APIs is a wrong URL (our bug or theirs), not a bad address;
    # adapters whose 404 means "no such recipient" (FCM, Web Push) set this.
    not_found_is_invalid_recipient: ClassVar[bool] = False

    @property
    def base_url(self) -> str:
        configured = self.config.get("api_base_url")
        if not configured:
            return self.default_base_url.rstrip("/")
        problem = policy.url_problem(self.kind, "api_base_url", configured)
        if problem:
            raise self.refused(problem)
        return str(configured).rstrip("/")

    @property
    def timeout(self) -> httpx.Timeout:
        read = float(self.config.get("timeout") or self.read_timeout)
        return httpx.Timeout(read, connect=min(self.connect_timeout, read))

    @property
    def client(self) -> httpx.Client:
        return shared_client(self.kind or type(self).__name__, self.timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; transport failures become ProviderError, the response is
        returned as is (call :meth:`raise_for_status` or check it yourself)."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        headers = dict(headers or {})
        if idempotency_key and self.idempotency_header:
            headers[self.idempotency_header] = idempotency_key
        try:
            return self.client.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.transient(
                f"{self.name}: timed out ({type(exc).__name__})", errors.TIMEOUT
            ) from exc
        except httpx.TransportError as exc:
            raise errors.transient(
                f"{self.name}: connection failed ({exc.__class__.__name__}: {exc})"
            ) from exc

    async def arequest(
        self,
        method: str,
        url: str,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        server_hostname: str | None = None,
    ) -> httpx.Response:
        """:meth:`request` for coroutine sends: the same headers, timeouts and error mapping,
        over the sender loop's pooled aiohttp session. The answer comes back as an
        ``httpx.Response`` so every response check of the adapters serves both paths."""
        import aiohttp

        from providers import aio

        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        headers = dict(headers or {})
        if idempotency_key and self.idempotency_header:
            headers[self.idempotency_header] = idempotency_key
        limits = self.timeout
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect, sock_read=limits.read
        )
        try:
            async with aio.session().request(
                method,
                url,
                data=content,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                server_hostname=server_hostname,
            ) as answer:
                body = await answer.read()
        except TimeoutError as exc:
            raise errors.transient(
                f"{self.name}: timed out ({type(exc).__name__})", errors.TIMEOUT
            ) from exc
        except aiohttp.ClientError as exc:
            raise errors.transient(
                f"{self.name}: connection failed ({exc.__class__.__name__}: {exc})"
            ) from exc
        return httpx.Response(answer.status, headers=list(answer.raw_headers), content=body)

    def error_for_response(self, response: httpx.Response) -> ProviderError | None:
        """The ProviderError an error response means, or None for a success.

        Subclasses refine ``provider_error_code`` for codes in the body (Twilio 21211 is
        an invalid number, Postmark 406 an inactive recipient).
        """
        if response.status_code < 400:
            return None
        summary = response_summary(response)
        status = response.status_code
        detail = self.error_detail(summary)
        message = f"{self.name}: HTTP {status}" + (f" {detail}" if detail else "")
        code = self.provider_error_code(response, summary)
        if status == 429:
            return errors.transient(
                message,
                errors.RATE_LIMITED,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                response=summary,
            )
        if status >= 500:
            return errors.transient(
                message,
                code or errors.PROVIDER_UNAVAILABLE,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                response=summary,
            )
        if status in (401, 403):
            return errors.permanent(message, code or errors.AUTH_FAILED, summary)
        if status in (404, 410) and self.not_found_is_invalid_recipient:
            return errors.permanent(message, code or errors.INVALID_RECIPIENT, summary)
        if status == 408:
            return errors.transient(message, errors.TIMEOUT, response=summary)
        return errors.permanent(message, code or errors.REJECTED, summary)

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        return None

    @staticmethod
    def error_detail(summary: dict[str, Any]) -> str:
        body = summary.get("body")
        if isinstance(body, dict):
            for key in ("message", "Message", "error", "error_text", "detail"):
                value = body.get(key)
                if isinstance(value, str):
                    return value[:300]
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return str(value["message"])[:300]
            errors_list = body.get("errors")
            if isinstance(errors_list, list) and errors_list and isinstance(errors_list[0], dict):
                return str(errors_list[0].get("message", ""))[:300]
        if isinstance(body, str):
            return body[:300]
        return ""

    def raise_for_status(self, response: httpx.Response) -> dict[str, Any]:
        error = self.error_for_response(response)
        if error is not None:
            raise error
        return response_summary(response)

    def check_health(self) -> HealthResult:
        """GET ``health_check_url`` when the row has one; any 2xx/3xx is healthy."""
        url = self.provider.health_check_url
        if not url:
            return HealthResult(ok=True, checked=False)
        started = time.monotonic()
        try:
            response = self.request("GET", url)
        except ProviderError as exc:
            return HealthResult(
                ok=False,
                response_time_ms=int((time.monotonic() - started) * 1000),
                error_code=exc.error_code,
                error_message=exc.message,
            )
        elapsed = int((time.monotonic() - started) * 1000)
        error = self.error_for_response(response)
        if error is not None:
            return HealthResult(
                ok=False,
                response_time_ms=elapsed,
                error_code=error.error_code,
                error_message=error.message,
            )
        return HealthResult(ok=True, response_time_ms=elapsed)
