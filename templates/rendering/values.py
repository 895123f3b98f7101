"""Context values: which ones a template can display, and their text form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeAlias

from .errors import TEMPLATE_VARIABLE_INVALID, TEMPLATE_VARIABLE_MISSING, TemplateRenderError

# What a template can display; SCALAR_TYPES is the same set for isinstance().
Scalar: TypeAlias = str | bool | int | float | Decimal
SCALAR_TYPES = (str, bool, int, float, Decimal)
SCALAR_HINT = "a string, number or boolean"

# The values one recipient's message is rendered with (each must be a Scalar or None).
Context: TypeAlias = Mapping[str, object]
# The stored ``template_variables`` column as rendering reads it (validated at save time).
Declarations: TypeAlias = Mapping[str, object]


def lookup(context: Context, name: str) -> object:
    """The value ``name`` names: a flat key, or for ``a.b`` the key ``b`` of the mapping at
    ``a`` (a literal ``"a.b"`` key wins). Only mappings are walked, by key: a template never
    reaches an object's attributes. None when any level is missing."""
    value = context.get(name)
    if value is not None or "." not in name:
        return value
    current: object = context
    for part in name.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def to_text(name: str, value: object) -> str:
    """Convert one context value to text, rejecting values that cannot sensibly be shown.

    Lists, dicts and arbitrary objects are refused rather than str()-ed: their repr leaking
    into a customer message (``['a', 'b']``, ``<User: 5>``) is always a bug. NaN/infinity are
    refused for the same reason.
    """
    if type(value) is str:
        return value
    if isinstance(value, SCALAR_TYPES):
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(name, f"is {value!r}, not a finite number")
        if isinstance(value, Decimal) and not value.is_finite():
            raise _invalid(name, f"is {value}, not a finite number")
        return str(value)
    raise _invalid(name, f"has unsupported type {type(value).__name__}; expected {SCALAR_HINT}")


def _invalid(name: str, detail: str) -> TemplateRenderError:
    return TemplateRenderError(
        f"template variable '{name}' {detail}", code=TEMPLATE_VARIABLE_INVALID, variable=name
    )


def missing_value(name: str, declarations: Declarations | None) -> str:
    """Value for a variable absent from the context (or None): optional ones fall back to
    their declared default or "", required/undeclared ones are an error."""
    declaration = declarations.get(name) if declarations else None
    if isinstance(declaration, Mapping) and declaration.get("required", True) is False:
        default = declaration.get("default")
        return "" if default is None else to_text(name, default)
    raise TemplateRenderError(
        f"template variable '{name}' is missing", code=TEMPLATE_VARIABLE_MISSING, variable=name
    )


def is_scalar(value: object) -> bool:
    """Whether ``value`` is something a template can display (what to_text accepts)."""
    if not isinstance(value, SCALAR_TYPES):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return True
