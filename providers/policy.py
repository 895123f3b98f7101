"""What a provider row may point at: which environment variables its adapter may read as
credentials, and which servers it may send them to.

A provider row is edited by staff in the admin (or its ``configuration`` through the
API), but the credentials live in the process environment next to ``SECRET_KEY`` and
``DATABASE_URL``. Without a rule, whoever may edit providers could set
``configuration.credential_env = {"api_key": "SECRET_KEY"}`` and
``api_base_url = "https://attacker.example"`` and the platform would send the secret there
as an API key. The rules:

1. **Credential variable names** (``configuration.credential_env`` values, every
   ``*_env`` value of ``configuration`` and ``webhook_config``, ``credentials_required``)
   must start with the prefix of the row's adapter kind (``TWILIO_`` for twilio,
   ``MAILGUN_``, ``SENDGRID_``, ``POSTMARK_``, ``VONAGE_``, ``FCM_``, ``WEBPUSH_``,
   ``WEBHOOK_``; ``SMTP_`` or ``EMAIL_HOST_`` for smtp), or match an entry of
   ``NP_PROVIDER_CREDENTIAL_ENV_ALLOWED`` (names, or prefixes ending in ``*``).
2. **Servers** that receive credentials (``api_base_url``, FCM's ``token_url``, the SMTP
   ``host``) must be the provider's own (https on its known API hosts; the SMTP host of
   ``EMAIL_HOST``) or match an entry of ``NP_PROVIDER_ALLOWED_HOSTS`` (``host`` or
   ``host:port``). The provider sandbox at ``NP_SANDBOX_URL`` (set by ``make run``) is
   allowed too.

They are checked when a row is validated (admin form, API: a field error) and again in
the adapter before a credential is read or a request is made (a row edited in the
database directly is refused at send time with ``UNCONFIGURED``, and routing skips it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

# Adapter kind -> prefixes its credential variables must start with.
CREDENTIAL_PREFIXES: dict[str, tuple[str, ...]] = {
    "smtp": ("SMTP_", "EMAIL_HOST_"),
    "mailgun": ("MAILGUN_",),
    "sendgrid": ("SENDGRID_",),
    "postmark": ("POSTMARK_",),
    "twilio": ("TWILIO_",),
    "vonage": ("VONAGE_",),
    "fcm": ("FCM_",),
    "webpush": ("WEBPUSH_",),
    "webhook": ("WEBHOOK_",),
    "anymail": ("ANYMAIL_",),
}

# Adapter kind -> configuration key -> the provider's own hosts (https only).
KNOWN_HOSTS: dict[str, dict[str, tuple[str, ...]]] = {
    "mailgun": {"api_base_url": ("api.mailgun.net", "api.eu.mailgun.net")},
    "sendgrid": {"api_base_url": ("api.sendgrid.com", "api.eu.sendgrid.com")},
    "postmark": {"api_base_url": ("api.postmarkapp.com",)},
    "twilio": {"api_base_url": ("api.twilio.com",)},
    "vonage": {"api_base_url": ("rest.nexmo.com", "api.nexmo.com")},
    "fcm": {"api_base_url": ("fcm.googleapis.com",), "token_url": ("oauth2.googleapis.com",)},
}
URL_KEYS = ("api_base_url", "token_url")

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


class ConfigurationRefusedError(ValueError):
    """A provider row names a variable or a server it may not (field -> reasons)."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in problems.items())
        )


# --- credential variable names ------------------------------------------------------


def _allowed_patterns() -> list[str]:
    return list(getattr(settings, "NP_PROVIDER_CREDENTIAL_ENV_ALLOWED", []) or [])


def env_name_problem(kind: str, name: Any) -> str | None:
    """Why ``name`` may not be a credential variable of a ``kind`` provider, or None."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        return f"{name!r} is not an environment variable name (A-Z, 0-9, _)."
    for pattern in _allowed_patterns():
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return None
    prefixes = CREDENTIAL_PREFIXES.get(kind, ())
    if any(name.startswith(prefix) for prefix in prefixes):
        return None
    wanted = " or ".join(prefixes) if prefixes else "no prefix (custom adapter)"
    return (
        f"{name} is not a {kind} credential: names must start with {wanted} "
        "or be listed in NP_PROVIDER_CREDENTIAL_ENV_ALLOWED."
    )


def env_names(configuration: Any, webhook_config: Any = None) -> dict[str, list[Any]]:
    """Every variable name a row's JSON names, by the field it is in."""
    found: dict[str, list[Any]] = {}
    for field, document in (("configuration", configuration), ("webhook_config", webhook_config)):
        if not isinstance(document, dict):
            continue
        overrides = document.get("credential_env")
        if overrides is not None:
            if isinstance(overrides, dict):
                found.setdefault(field, []).extend(overrides.values())
            else:
                found.setdefault(field, []).append(overrides)
        for key, value in document.items():
            if key == "credential_env" or not key.endswith("_env") or value in (None, ""):
                continue
            if isinstance(value, dict):  # a role → name map (anymail's webhook_credential_env)
                found.setdefault(field, []).extend(value.values())
            else:
                found.setdefault(field, []).append(value)
    return found


# --- servers ------------------------------------------------------------------------


def _allowed_hosts() -> list[str]:
    entries = list(getattr(settings, "NP_PROVIDER_ALLOWED_HOSTS", []) or [])
    sandbox = getattr(settings, "NP_SANDBOX_URL", "")
    if sandbox:
        parts = urlsplit(sandbox)
        if parts.hostname:
            entries.append(f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname)
    return entries


def _allowlisted(host: str, port: int | None) -> bool:
    for entry in _allowed_hosts():
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry.startswith("[") or entry.count(":") == 1:  # host:port or [v6]:port
            entry_host, _, entry_port = entry.rpartition(":")
            if entry_host.startswith("[") and not entry_host.endswith("]"):
                entry_host, entry_port = entry, ""
            if entry_host.strip("[]") == host and (not entry_port or str(port) == entry_port):
                return True
        elif entry.strip("[]") == host:
            return True
    return False


def url_problem(kind: str, key: str, url: Any) -> str | None:
    """Why ``url`` may not be the ``key`` of a ``kind`` provider, or None."""
    if not isinstance(url, str):
        return f"{key} must be a URL."
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return f"{url!r} is not a URL."
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) URL."
    if parts.username or parts.password:
        return f"{key} may not carry a user name or password."
    known = KNOWN_HOSTS.get(kind, {}).get(key, ())
    if parts.scheme == "https" and host in known and port in (None, 443):
        return None
    if _allowlisted(host, port or (443 if parts.scheme == "https" else 80)):
        return None
    hosts = ", ".join(known) if known else "none"
    return (
        f"{host} is not a {kind} server for {key} (known: {hosts}); "
        "add it to NP_PROVIDER_ALLOWED_HOSTS to allow it."
    )


def smtp_host_problem(host: Any, port: Any) -> str | None:
    if host in (None, ""):
        return None
    host_text = str(host).strip().lower()
    if host_text == str(settings.EMAIL_HOST).lower():
        return None
    try:
        port_number = int(port) if port not in (None, "") else int(settings.EMAIL_PORT)
    except (TypeError, ValueError):
        return f"port {port!r} is not a number."
    if _allowlisted(host_text, port_number):
        return None
    return f"SMTP host {host_text} is neither EMAIL_HOST nor in NP_PROVIDER_ALLOWED_HOSTS."


# --- a whole row --------------------------------------------------------------------


def _kind(provider_class: str) -> str:
    return str(provider_class or "").strip()


def configuration_problems(
    *,
    provider_class: str,
    configuration: Any,
    webhook_config: Any = None,
    credentials_required: Iterable[Any] | None = None,
) -> dict[str, list[str]]:
    """Every rule a row's values break, by field (empty when the row is fine)."""
    kind = _kind(provider_class)
    problems: dict[str, list[str]] = {}

    def add(field: str, problem: str | None) -> None:
        if problem:
            problems.setdefault(field, []).append(problem)

    for field, names in env_names(configuration, webhook_config).items():
        for name in names:
            add(field, env_name_problem(kind, name))
    for name in credentials_required or []:
        add("credentials_required", env_name_problem(kind, name))
    if isinstance(configuration, dict):
        for key in URL_KEYS:
            if configuration.get(key) not in (None, ""):
                add("configuration", url_problem(kind, key, configuration[key]))
        if kind == "smtp":
            add(
                "configuration",
                smtp_host_problem(configuration.get("host"), configuration.get("port")),
            )
        if kind == "anymail":
            for problem in anymail_problems(configuration):
                add("configuration", problem)
    return problems


def anymail_problems(configuration: dict[str, Any]) -> list[str]:
    """An ``anymail`` row: a known ESP; ``options`` without secrets (those come from the
    environment through ``credential_env``); every ``*_url`` option a server we allow."""
    from providers.esps import ESPS, SECRET_WORDS

    problems: list[str] = []
    esp = configuration.get("esp")
    if esp not in ESPS:
        problems.append(f"esp {esp!r} is not one of: {', '.join(sorted(ESPS))}.")
    for key in ("credential_env", "webhook_credential_env", "options"):
        if configuration.get(key) is not None and not isinstance(configuration[key], dict):
            problems.append(f"{key} must be an object.")
    options = configuration.get("options")
    for key, value in options.items() if isinstance(options, dict) else ():
        lowered = str(key).lower()
        if any(word in lowered for word in SECRET_WORDS):
            problems.append(
                f"options.{key} looks like a secret: name its environment variable in"
                " credential_env instead."
            )
        elif lowered.endswith("_url"):
            problem = url_problem("anymail", f"options.{key}", value)
            if problem:
                problems.append(problem)
    return problems


def check_env_name(kind: str, name: str) -> str:
    """``name`` if a ``kind`` adapter may read it, else ConfigurationRefusedError (send time)."""
    problem = env_name_problem(kind, name)
    if problem:
        raise ConfigurationRefusedError({"credential": [problem]})
    return name


def check_url(kind: str, key: str, url: str) -> str:
    """``url`` if a ``kind`` adapter may send to it, else ConfigurationRefusedError."""
    problem = url_problem(kind, key, url)
    if problem:
        raise ConfigurationRefusedError({key: [problem]})
    return url


# --- what changed (for the audit trail) -------------------------------------------


def _sensitive(document: Any, *, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(document, dict):
        return {}
    return {
        key: value
        for key, value in document.items()
        if key == "credential_env" or key.endswith("_env") or key in keys
    }


def sensitive_values(
    *, configuration: Any, webhook_config: Any, credentials_required: Any, provider_class: Any
) -> dict[str, Any]:
    """The values of a row the policy is about, flattened to "field.key" paths."""
    flat: dict[str, Any] = {"provider_class": provider_class}
    keys = (*URL_KEYS, "host", "port", "esp", "options")
    for key, value in _sensitive(configuration, keys=keys).items():
        flat[f"configuration.{key}"] = value
    for key, value in _sensitive(webhook_config).items():
        flat[f"webhook_config.{key}"] = value
    flat["credentials_required"] = list(credentials_required or [])
    return flat


def sensitive_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``["configuration.api_base_url: 'a' -> 'b'", ...]`` for every path that changed."""
    lines = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old != new:
            lines.append(f"{path}: {old!r} -> {new!r}")
    return lines
