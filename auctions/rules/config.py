"""Checking a type's settings (``AuctionRuleState.config``) against its declared fields.

Each rules class declares ``config_fields``: name → (kind, default). Kinds: ``money``
(> 0), ``money0`` (>= 0), ``seconds`` (whole seconds >= 1), ``seconds0`` (>= 0),
``bool``. A default of ``REQUIRED`` makes the setting mandatory; a callable default is
asked the auction. Money is stored as a string with two decimals (JSON has no decimal).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..errors import AuctionError
from ..models import Auction
from .amounts import parse_amount

REQUIRED = object()
CONFIG_INVALID = "AUCTION_CONFIG_INVALID"


def config_error(name: str, reason: str) -> AuctionError:
    return AuctionError(CONFIG_INVALID, f"{name} {reason}", field=f"config.{name}")


def _value(kind: str, name: str, raw: Any) -> Any:
    if kind == "bool":
        if not isinstance(raw, bool):
            raise config_error(name, "must be true or false")
        return raw
    if kind in ("seconds", "seconds0"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise config_error(name, "must be a whole number of seconds")
        low = 1 if kind == "seconds" else 0
        if raw < low or raw > 31_536_000:
            raise config_error(name, f"must be between {low} and 31536000")
        return raw
    if kind in ("money", "money0"):
        if kind == "money0" and raw in (0, "0", "0.00", "0.0"):
            return "0.00"
        try:
            amount = parse_amount(raw, name=name)
        except AuctionError as exc:
            raise config_error(name, exc.message.removeprefix(f"{name} ")) from None
        return f"{amount:.2f}"
    raise ValueError(kind)  # pragma: no cover - a programming error in config_fields


def clean_config(rules: Any, auction: Auction, config: dict[str, Any] | None) -> dict[str, Any]:
    config = dict(config or {})
    if not isinstance(config, dict):
        raise AuctionError(CONFIG_INVALID, "config must be an object", field="config")
    unknown = sorted(set(config) - set(rules.config_fields))
    if unknown:
        allowed = ", ".join(sorted(rules.config_fields)) or "none"
        raise config_error(unknown[0], f"is not a setting of {rules.auction_type} auctions "
                                       f"(settings: {allowed})")
    cleaned: dict[str, Any] = {}
    for name, (kind, default) in rules.config_fields.items():
        if name in config and config[name] is not None:
            cleaned[name] = _value(kind, name, config[name])
            continue
        if default is REQUIRED:
            raise config_error(name, f"is required for {rules.auction_type} auctions")
        value = default(auction) if isinstance(default, Callable) else default  # type: ignore[arg-type]
        cleaned[name] = None if value is None else _value(kind, name, value)
    return cleaned


def money(config: dict[str, Any], name: str) -> Decimal:
    return Decimal(str(config[name]))
