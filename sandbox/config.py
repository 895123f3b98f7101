"""Configuration model of the provider sandbox.

Every provider has one :class:`ProviderConfig`.  The control API
(``POST /_sandbox/config``) and :meth:`SandboxServer.configure` merge options into it; unknown
options are rejected so that typos in tests fail loudly.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

PROVIDERS: tuple[str, ...] = (
    "twilio",
    "vonage",
    "mailgun",
    "sendgrid",
    "postmark",
    "fcm",
    "webpush",
    "webhook",
)

#: Providers that post delivery receipts (FCM, Web Push and plain webhooks have none in reality).
RECEIPT_PROVIDERS: tuple[str, ...] = ("twilio", "vonage", "mailgun", "sendgrid", "postmark")

#: Generic receipt outcomes understood by every receipt-capable provider.  A provider-native
#: value (e.g. Twilio ``undelivered``, Vonage ``expired``) is passed through unchanged.
RECEIPT_STATUSES: tuple[str, ...] = ("delivered", "bounced", "failed", "complained", "none")

#: Default receipt path appended to ``receipt_url`` (the platform's provider event endpoint).
DEFAULT_RECEIPT_PATH = "/api/v1/providers/{provider}/events/"

#: Sandbox secrets.  The ``make run`` demo configures the platform with the same values; every
#: entry can be overridden per provider with ``configure(provider, credentials={...})``.
DEFAULT_CREDENTIALS: dict[str, dict[str, Any]] = {
    "twilio": {
        # HTTP Basic auth: account_sid:auth_token (or api_key_sid:api_key_secret when set).
        # The auth token also signs status callbacks (X-Twilio-Signature).
        "account_sid": "AC00000000000000000000000000000001",
        "auth_token": "sandbox-twilio-auth-token",
        "api_key_sid": None,
        "api_key_secret": None,
    },
    "vonage": {
        # api_key/api_secret in the request (or a ``sig`` made with signature_secret).
        # Delivery receipts carry ``sig`` = HMAC(signature_secret) per Vonage signed messages.
        "api_key": "sandboxkey",
        "api_secret": "sandbox-vonage-api-secret",
        "signature_secret": "sandbox-vonage-signature-secret",
        "signature_method": "sha256",  # md5hash | md5 | sha1 | sha256 | sha512
        "balance": "100.00000000",
    },
    "mailgun": {
        # HTTP Basic auth api:<api_key>; webhooks signed with webhook_signing_key.
        "api_key": "key-sandbox-mailgun-api-key",
        "webhook_signing_key": "sandbox-mailgun-webhook-signing-key",
        "domain": None,  # None: any sending domain is accepted; else others get 404
    },
    "sendgrid": {
        # Bearer <api_key>.  Event webhooks are signed with an ECDSA P-256 key: the PEM in
        # webhook_private_key_pem, else the PEM in $SANDBOX_SENDGRID_PRIVATE_KEY, else a key
        # derived deterministically from webhook_key_seed (stable across runs, so the demo can
        # configure the public key once; fetch it from GET /_sandbox/keys).
        "api_key": "SG.sandbox.sendgrid-api-key",
        "webhook_private_key_pem": None,
        "webhook_key_seed": "notifyplatform-sandbox-sendgrid",
    },
    "postmark": {
        # X-Postmark-Server-Token header; webhooks use HTTP Basic auth with these credentials.
        "server_token": "sandbox-postmark-server-token",
        "webhook_username": "postmark",
        "webhook_password": "sandbox-postmark-webhook-password",
    },
    "fcm": {
        # Bearer token: either access_token or one issued by POST /token.
        "access_token": "sandbox-fcm-access-token",
        "project_id": None,  # None: any project id; else others get 403 PERMISSION_DENIED
    },
    "webpush": {
        # Authorization: vapid t=<ES256 JWT>,k=<public key>; the JWT signature is verified
        # against k.  vapid_public_key pins k when set.
        "require_vapid": True,
        "vapid_public_key": None,
    },
    "webhook": {},
}

SENDGRID_KEY_ENV = "SANDBOX_SENDGRID_PRIVATE_KEY"


class ConfigError(ValueError):
    """Raised for an unknown provider or option, or an invalid value."""


@dataclass
class ProviderConfig:
    """Behaviour of one provider endpoint."""

    #: Added to every request (plus up to ``latency_jitter_ms`` random extra).
    latency_ms: float = 0
    latency_jitter_ms: float = 0
    #: Force failures with this HTTP status in the provider's own error shape (>= 400).
    status: int | None = None
    #: Force a provider-specific error code (Twilio 21211, Vonage "1", Postmark 406,
    #: FCM "UNREGISTERED", ...) with the status the provider uses for it.
    error_code: str | int | None = None
    #: Hold requests open for ``hang_seconds`` then close the connection without a response.
    timeout: bool = False
    hang_seconds: float = 30.0
    #: None: the forced failure (timeout / error_code / status) applies to every request.
    #: N: it applies to the next N requests only (status defaults to 500).
    fail_next: int | None = None
    #: Share of requests failed at random with 500 or 503.
    fail_rate: float = 0.0
    #: Seconds put in Retry-After on 429 (default 1) and, when set, on 503.
    retry_after: float | None = None
    #: Quota: this many more requests are served, then every request gets 429 until changed.
    remaining: int | None = None
    #: Recipients (phone, e-mail, FCM token, push subscription id) treated as permanently
    #: invalid: Twilio 21211, Vonage status 3, Mailgun/SendGrid 400, Postmark 406,
    #: FCM 404 UNREGISTERED, Web Push 410.
    invalid_recipients: list[str] = field(default_factory=list)
    #: Web Push subscription ids answered with 410 Gone / 404 Not Found.
    gone_ids: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)
    #: Receipts: base URL (the provider path is appended), delay and outcome.
    receipt_url: str | None = None
    receipt_path: str = DEFAULT_RECEIPT_PATH
    receipt_delay_ms: float = 100
    receipt_status: str = "delivered"
    #: Per-recipient receipt outcome overrides, e.g. {"+15550001111": "bounced"}.
    receipt_status_by_recipient: dict[str, str] = field(default_factory=dict)
    #: Credentials expected from clients (merged over DEFAULT_CREDENTIALS[provider]).
    credentials: dict[str, Any] = field(default_factory=dict)
    #: Generic webhook receiver: hook name -> Standard Webhooks secret ("whsec_<base64>").
    secrets: dict[str, str] = field(default_factory=dict)
    #: Standard Webhooks timestamp tolerance (seconds).
    tolerance_seconds: float = 300

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


NUMBER_OPTIONS: frozenset[str] = frozenset(
    {"latency_ms", "latency_jitter_ms", "receipt_delay_ms", "hang_seconds", "tolerance_seconds"}
)
OPTION_NAMES: frozenset[str] = frozenset(f.name for f in dataclasses.fields(ProviderConfig))


def default_config(provider: str) -> ProviderConfig:
    cfg = ProviderConfig()
    cfg.credentials = copy.deepcopy(DEFAULT_CREDENTIALS[provider])
    return cfg


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ConfigError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    return provider


def _as_number(name: str, value: Any, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}")
    return value


def _as_optional_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer or null")
    return value


def _as_str_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple | set) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings")
    return list(value)


def apply_options(cfg: ProviderConfig, provider: str, opts: dict[str, Any]) -> None:
    """Validate ``opts`` and merge them into ``cfg`` (in place, all or nothing)."""
    unknown = set(opts) - OPTION_NAMES - {"name", "secret"}
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(sorted(unknown))}")
    new = copy.deepcopy(cfg)
    for key, value in opts.items():
        if key in NUMBER_OPTIONS:
            setattr(new, key, _as_number(key, value))
        elif key == "retry_after":
            new.retry_after = None if value is None else _as_number(key, value)
        elif key == "fail_rate":
            rate = _as_number(key, value)
            if rate > 1:
                raise ConfigError("fail_rate must be between 0 and 1")
            new.fail_rate = rate
        elif key == "status":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599
            ):
                raise ConfigError("status must be an HTTP status code or null")
            new.status = value
        elif key == "error_code":
            if value is not None and not isinstance(value, str | int):
                raise ConfigError("error_code must be a string, an integer or null")
            new.error_code = value
        elif key == "timeout":
            new.timeout = bool(value)
        elif key in ("fail_next", "remaining"):
            setattr(new, key, _as_optional_int(key, value))
        elif key in ("invalid_recipients", "gone_ids", "unknown_ids"):
            setattr(new, key, _as_str_list(key, value))
        elif key == "receipt_url":
            if value is not None and not (
                isinstance(value, str) and value.startswith(("http://", "https://"))
            ):
                raise ConfigError("receipt_url must be an http(s) URL or null")
            new.receipt_url = value.rstrip("/") if value else None
        elif key == "receipt_path":
            if not isinstance(value, str):
                raise ConfigError("receipt_path must be a string")
            new.receipt_path = value
        elif key == "receipt_status":
            if not isinstance(value, str) or not value:
                raise ConfigError("receipt_status must be a string")
            new.receipt_status = value
        elif key == "receipt_status_by_recipient":
            if not isinstance(value, dict):
                raise ConfigError("receipt_status_by_recipient must be an object")
            new.receipt_status_by_recipient = {str(k): str(v) for k, v in value.items()}
        elif key == "credentials":
            if not isinstance(value, dict):
                raise ConfigError("credentials must be an object")
            new.credentials.update(value)
        elif key == "secrets":
            if not isinstance(value, dict):
                raise ConfigError("secrets must be an object of hook name -> secret")
            for name, secret in value.items():
                if secret is None:
                    new.secrets.pop(name, None)
                else:
                    new.secrets[str(name)] = str(secret)
    # Convenience form for the webhook receiver: {"name": "orders", "secret": "whsec_..."}.
    if "secret" in opts:
        if "name" not in opts:
            raise ConfigError("'secret' needs a hook 'name'")
        if opts["secret"] is None:
            new.secrets.pop(str(opts["name"]), None)
        else:
            new.secrets[str(opts["name"])] = str(opts["secret"])
    elif "name" in opts:
        raise ConfigError("'name' is only used together with 'secret'")
    if provider != "webhook" and new.secrets:
        raise ConfigError("secrets are only used by the 'webhook' provider")
    for field_name, field_value in dataclasses.asdict(new).items():
        setattr(cfg, field_name, field_value)


def sendgrid_private_key_pem(credentials: dict[str, Any]) -> str | None:
    """PEM configured for the SendGrid webhook key, from credentials or the environment."""
    pem = credentials.get("webhook_private_key_pem") or os.environ.get(SENDGRID_KEY_ENV)
    return pem or None
