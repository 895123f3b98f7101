"""Thread-safe in-memory state of the sandbox: configuration, received requests, stats."""

from __future__ import annotations

import copy
import itertools
import random
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .config import (
    PROVIDERS,
    ConfigError,
    ProviderConfig,
    apply_options,
    check_provider,
    default_config,
)

DEFAULT_MAX_MESSAGES = 100_000
MAX_IDEMPOTENCY_KEYS = 100_000
MAX_RECEIPTS = 20_000


@dataclass(slots=True)
class Failure:
    """A failure decided for one request."""

    kind: str  # "timeout" | "status" | "error_code" | "random" | "quota"
    status: int
    error_code: str | int | None = None


@dataclass(slots=True)
class CachedResponse:
    """A response remembered for idempotency-key replays."""

    status: int
    body: bytes
    headers: dict[str, str]
    message_id: str | None


def split_config(config: Mapping[str, Any] | None) -> list[tuple[str | None, dict[str, Any]]]:
    """Turn ``{"receipt_url": ..., "twilio": {...}}`` into ordered (provider, options) pairs.

    Keys naming a provider hold that provider's options; ``"*"`` holds options for all
    providers, and so do any other top-level keys.  Options for all providers apply first.
    """
    if not config:
        return []
    if not isinstance(config, Mapping):
        raise ConfigError("config must be an object")
    common: dict[str, Any] = {}
    per_provider: list[tuple[str | None, dict[str, Any]]] = []
    for key, value in config.items():
        if key in PROVIDERS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"options for {key!r} must be an object")
            per_provider.append((key, dict(value)))
        elif key == "*":
            if not isinstance(value, Mapping):
                raise ConfigError("options for '*' must be an object")
            common.update(value)
        else:
            common[key] = value
    return ([(None, common)] if common else []) + per_provider


def export(rec: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a record for callers, with ``received_at`` as ISO 8601 text."""
    out = copy.deepcopy(rec)
    received = out.get("received_at")
    if isinstance(received, float):
        out["received_at"] = (
            datetime.fromtimestamp(received, UTC).isoformat().replace("+00:00", "Z")
        )
    return out


class SandboxState:
    """All mutable sandbox state, guarded by one lock (handlers and test threads share it)."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        seed: int | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.max_messages = max_messages
        self.rng = random.Random(seed)
        self._initial = split_config(config)
        self.configs: dict[str, ProviderConfig] = {}
        self._messages: deque[dict[str, Any]] = deque()
        self._by_id: dict[str, dict[str, Any]] = {}
        self._receipts: deque[dict[str, Any]] = deque(maxlen=MAX_RECEIPTS)
        self._stats: dict[str, Counter[str]] = {}
        self._idempotency: dict[str, OrderedDict[str, CachedResponse]] = {}
        self._webhook_ids: dict[str, set[str]] = {}
        self._seq = itertools.count(1)
        #: OAuth access tokens issued by the fake Google token endpoint (kept across resets).
        self.issued_tokens: set[str] = set()
        self.reset()

    # ------------------------------------------------------------------ configuration

    def reset(self) -> None:
        """Forget messages, stats, receipts and idempotency keys; restore the initial config."""
        with self.lock:
            configs = {p: default_config(p) for p in PROVIDERS}
            for provider, opts in self._initial:
                for name in [provider] if provider else PROVIDERS:
                    apply_options(configs[name], name, opts)
            self.configs = configs
            self._messages.clear()
            self._by_id.clear()
            self._receipts.clear()
            self._stats = {p: Counter() for p in PROVIDERS}
            self._idempotency = {p: OrderedDict() for p in PROVIDERS}
            self._webhook_ids = {}
            self._seq = itertools.count(1)

    def configure(self, provider: str | None, opts: Mapping[str, Any]) -> dict[str, Any]:
        """Merge options into one provider's config (or every provider's when None / "*")."""
        opts = dict(opts)
        reset_first = bool(opts.pop("reset", False))
        names = list(PROVIDERS) if provider in (None, "*") else [check_provider(str(provider))]
        with self.lock:
            staged = {}
            for name in names:
                cfg = default_config(name) if reset_first else copy.deepcopy(self.configs[name])
                apply_options(cfg, name, opts)
                staged[name] = cfg
            self.configs.update(staged)
            return self.get_config(provider)

    def get_config(self, provider: str | None = None) -> dict[str, Any]:
        with self.lock:
            if provider in (None, "*"):
                return {name: cfg.to_dict() for name, cfg in self.configs.items()}
            return self.configs[check_provider(str(provider))].to_dict()

    def config(self, provider: str) -> ProviderConfig:
        """The live config object (read-only use by handlers)."""
        return self.configs[provider]

    # ------------------------------------------------------------------ failure decisions

    def decide_failure(self, provider: str) -> Failure | None:
        """Forced failure (timeout / error_code / status, bounded by fail_next) or random one."""
        with self.lock:
            cfg = self.configs[provider]
            forced = (
                cfg.timeout
                or cfg.error_code is not None
                or (cfg.status is not None and cfg.status >= 400)
            )
            if cfg.fail_next is not None:
                if cfg.fail_next > 0:
                    cfg.fail_next -= 1
                    return self._forced(cfg, default_status=500)
            elif forced:
                return self._forced(cfg, default_status=500)
            if cfg.fail_rate and self.rng.random() < cfg.fail_rate:
                return Failure("random", self.rng.choice((500, 503)))
            return None

    @staticmethod
    def _forced(cfg: ProviderConfig, default_status: int) -> Failure:
        status = cfg.status if cfg.status is not None and cfg.status >= 400 else default_status
        if cfg.timeout:
            return Failure("timeout", 0)
        if cfg.error_code is not None:
            return Failure("error_code", status, cfg.error_code)
        return Failure("status", status)

    def health_failure(self, provider: str) -> Failure | None:
        """What a health check sees: a persistent or pending forced failure, not random ones."""
        with self.lock:
            cfg = self.configs[provider]
            forced = (
                cfg.timeout
                or cfg.error_code is not None
                or (cfg.status is not None and cfg.status >= 400)
            )
            if cfg.fail_next is not None:
                return self._forced(cfg, 500) if cfg.fail_next > 0 else None
            if forced:
                return self._forced(cfg, 500)
            if cfg.remaining is not None and cfg.remaining <= 0:
                return Failure("quota", 429)
            return None

    def take_quota(self, provider: str) -> Failure | None:
        """Consume one request of the ``remaining`` quota; 429 once it is used up."""
        with self.lock:
            cfg = self.configs[provider]
            if cfg.remaining is None:
                return None
            if cfg.remaining <= 0:
                return Failure("quota", 429)
            cfg.remaining -= 1
            return None

    def random_choice(self, options: tuple[Any, ...]) -> Any:
        with self.lock:
            return self.rng.choice(options)

    def random_float(self) -> float:
        with self.lock:
            return self.rng.random()

    # ------------------------------------------------------------------ records

    def record(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Store a received request (``rec`` stays live: receipts update it later)."""
        with self.lock:
            rec["seq"] = next(self._seq)
            self._messages.append(rec)
            message_id = rec.get("message_id")
            if message_id:
                self._by_id[message_id] = rec
            if len(self._messages) > self.max_messages:
                old = self._messages.popleft()
                old_id = old.get("message_id")
                if old_id and self._by_id.get(old_id) is old:
                    del self._by_id[old_id]
            self._stats[rec["provider"]][rec["outcome"]] += 1
            return rec

    def count(self, provider: str, key: str, n: int = 1) -> None:
        with self.lock:
            self._stats[provider][key] += n

    def find_message(self, message_id: str) -> dict[str, Any] | None:
        with self.lock:
            rec = self._by_id.get(message_id)
            return export(rec) if rec is not None else None

    def update_message(self, rec: dict[str, Any], **fields: Any) -> None:
        with self.lock:
            rec.update(fields)

    def update_nested(self, rec: dict[str, Any], key: str, **fields: Any) -> None:
        with self.lock:
            rec.setdefault(key, {}).update(fields)

    def append_to_message(self, rec: dict[str, Any], key: str, value: Any) -> None:
        with self.lock:
            rec.setdefault(key, []).append(value)

    def messages(self, provider: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            if provider is not None:
                check_provider(provider)
            return [
                export(m) for m in self._messages if provider is None or m["provider"] == provider
            ]

    def message_count(self, provider: str | None = None, outcome: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for m in self._messages
                if (provider is None or m["provider"] == provider)
                and (outcome is None or m["outcome"] == outcome)
            )

    def stats(self) -> dict[str, Any]:
        with self.lock:
            per_provider = {p: dict(c) for p, c in self._stats.items()}
            totals: Counter[str] = Counter()
            for c in self._stats.values():
                totals.update(c)
            return {"providers": per_provider, "totals": dict(totals)}

    # ------------------------------------------------------------------ idempotency

    def cached_response(self, provider: str, key: str) -> CachedResponse | None:
        with self.lock:
            return self._idempotency[provider].get(key)

    def remember_response(self, provider: str, key: str, response: CachedResponse) -> None:
        with self.lock:
            cache = self._idempotency[provider]
            cache[key] = response
            if len(cache) > MAX_IDEMPOTENCY_KEYS:
                cache.popitem(last=False)

    def seen_webhook_id(self, name: str, webhook_id: str) -> bool:
        """True when this webhook-id was already accepted for hook ``name`` (marks it seen)."""
        with self.lock:
            seen = self._webhook_ids.setdefault(name, set())
            if webhook_id in seen:
                return True
            seen.add(webhook_id)
            return False

    # ------------------------------------------------------------------ receipts

    def record_receipt(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._receipts.append(entry)
            self._stats[entry["provider"]][
                "receipts_sent" if entry["ok"] else "receipts_failed"
            ] += 1

    def receipts(self, provider: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(r)
                for r in self._receipts
                if provider is None or r["provider"] == provider
            ]
