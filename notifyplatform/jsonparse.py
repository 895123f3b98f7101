"""Strict JSON for untrusted bodies: the API's parser, receipts and websocket frames.

``json.loads`` accepts what later breaks us: nesting deep enough to raise ``RecursionError``
(a 500, or a crashed consumer), ``1e400`` as ``inf`` (which PostgreSQL's jsonb refuses), the
non-standard ``NaN``/``Infinity`` literals, and duplicate keys (silently the last one wins,
so two parsers of the same body can disagree). ``loads`` refuses all of them with one
exception, ``MalformedJSONError``, whose message says why; callers answer 400
``MALFORMED_REQUEST`` (or the websocket's ``INVALID_JSON``).

The depth limit is ``NP_JSON_MAX_DEPTH`` (default 32 levels of objects/arrays).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class MalformedJSONError(ValueError):
    """The body is not one strict JSON document within the limits."""


def max_depth() -> int:
    return int(getattr(settings, "NP_JSON_MAX_DEPTH", 32))


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise MalformedJSONError(f"duplicate key {key[:50]!r}")
            seen.add(key)
    return result


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJSONError(f"number {text[:50]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise MalformedJSONError(f"{name} is not a JSON value")


def _check_depth(document: Any, limit: int) -> None:
    """Iteratively (no recursion of our own): the nesting of objects and arrays ≤ limit."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            raise MalformedJSONError(f"nested deeper than {limit} levels")
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def loads(data: bytes | str, *, depth: int | None = None) -> Any:
    """Parse one strict JSON document (UTF-8 when given bytes); raises MalformedJSONError."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSONError(f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(
            data, object_pairs_hook=_pairs, parse_float=_float, parse_constant=_constant
        )
    except MalformedJSONError:
        raise
    except RecursionError:
        # the C decoder recurses once per level: far past any limit we allow
        raise MalformedJSONError(f"nested deeper than {depth or max_depth()} levels") from None
    except ValueError as exc:  # JSONDecodeError, and int() past its digit limit
        raise MalformedJSONError(f"not valid JSON: {exc}") from None
    _check_depth(document, depth or max_depth())
    return document


class StrictJSONParser(JSONParser):
    """DRF's JSON parser on ``loads``: every unparsable or over-deep body is a ParseError
    (400 ``MALFORMED_REQUEST``), never a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return loads(raw)
        except MalformedJSONError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
