"""Adapter kinds → classes (``providers.kinds``, imported lazily) and adapter instances
for provider rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from providers.kinds import ADAPTERS, UnknownAdapterError, load_adapter

if TYPE_CHECKING:
    from providers.base import BaseAdapter
    from providers.models import Provider

__all__ = ["ADAPTERS", "UnknownAdapterError", "adapter_class", "get_adapter"]


def adapter_class(kind: str) -> type[BaseAdapter]:
    """The adapter class for a kind ("smtp") or a dotted path ("myapp.adapters.Foo")
    (``kinds.load_adapter``: cached, lazily imported)."""
    return cast("type[BaseAdapter]", load_adapter(kind))


def get_adapter(provider: Provider) -> BaseAdapter:
    return adapter_class(provider.provider_class)(provider)
