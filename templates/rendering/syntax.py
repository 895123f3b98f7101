"""Parsing: split a template source into literal text and ``{{ name }}`` variables.

Tag (``{% %}``) and comment (``{# #}``) syntax is rejected with a line/column error; a lone
``{#`` and stray ``}}``/``%}`` are literal text because HTML e-mail CSS contains them.
"""

from __future__ import annotations

import re

from .errors import TemplateSyntaxError

VARIABLE_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
# ``digest.count``: dict-key lookups, one name per level (never attribute access: values.lookup)
DOTTED_NAME_PATTERN = rf"{VARIABLE_NAME_PATTERN}(?:\.{VARIABLE_NAME_PATTERN})*"
_TAG_RE = re.compile(rf"\s*({DOTTED_NAME_PATTERN})\s*")  # used with fullmatch(pos, endpos)
# Earliest of the three openers; at one position "{{" wins because it is tried first.
_OPENER_RE = re.compile(r"\{\{|\{%|\{#")


def _line_col(source: str, position: int) -> tuple[int, int]:
    """1-based line and column (in code points) of ``position`` for human-readable errors."""
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1) + 1
    return line, column


def _syntax_error(source: str, position: int, what: str, detail: str = "") -> TemplateSyntaxError:
    """Build a syntax error whose message reads ``<what> at line L, column C[; <detail>]``."""
    line, column = _line_col(source, position)
    return TemplateSyntaxError(
        f"{what} at line {line}, column {column}{'; ' + detail if detail else ''}",
        position=position,
        line=line,
        column=column,
    )


def _shorten(text: str, limit: int = 40) -> str:
    """Keep quoted template excerpts in messages readable."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad_tag_error(source: str, start: int, close: int) -> TemplateSyntaxError:
    """Explain why the text between ``{{`` and ``}}`` is not a plain variable name."""
    inner = source[start + 2 : close].strip()
    tag = _shorten(source[start : close + 2])
    if not inner:
        return _syntax_error(source, start, f"empty variable tag '{tag}'")
    if "." in inner and "|" not in inner:
        return _syntax_error(
            source,
            start,
            f"invalid dotted name in '{tag}'",
            f"names are keys joined by dots, each matching {VARIABLE_NAME_PATTERN}",
        )
    if "|" in inner:
        return _syntax_error(source, start, f"filters in '{tag}' are not supported")
    return _syntax_error(
        source,
        start,
        f"invalid variable name in '{tag}'",
        f"names must match {VARIABLE_NAME_PATTERN}",
    )


def tokenize(source: str) -> list[tuple[bool, str]]:
    """Split ``source`` into ``(is_variable, text)`` pieces or raise TemplateSyntaxError."""
    pieces: list[tuple[bool, str]] = []
    literal_start = pos = 0
    while (match := _OPENER_RE.search(source, pos)) is not None:
        start, opener = match.start(), match.group()
        if opener == "{%":
            raise _tag_error(source, start)
        if opener == "{#":
            _reject_comment(source, start)
            pos = start + 2  # a lone "{#" is literal text (minified CSS)
            continue
        name, close = _variable_at(source, start)
        if start > literal_start:
            pieces.append((False, source[literal_start:start]))
        pieces.append((True, name))
        pos = literal_start = close + 2
    if literal_start < len(source):
        pieces.append((False, source[literal_start:]))
    return pieces


def _tag_error(source: str, start: int) -> TemplateSyntaxError:
    return _syntax_error(
        source,
        start,
        "template tag '{%' is not supported",
        "only {{ variable }} substitution is available",
    )


def _reject_comment(source: str, start: int) -> None:
    """A ``{#`` closed by ``#}`` on the same line is a Django comment, which is refused."""
    line_end = source.find("\n", start)
    if source.find("#}", start + 2, len(source) if line_end == -1 else line_end) != -1:
        raise _syntax_error(source, start, "comment '{# ... #}' is not supported")


def _variable_at(source: str, start: int) -> tuple[str, int]:
    """The name inside the ``{{`` at ``start`` and the offset of its closing ``}}``."""
    close = source.find("}}", start + 2)
    nested = source.find("{{", start + 2, close) if close != -1 else -1
    if close == -1 or nested != -1:
        raise _syntax_error(source, start, "unclosed '{{'")
    tag = _TAG_RE.fullmatch(source, start + 2, close)
    if tag is None:
        raise _bad_tag_error(source, start, close)
    return tag.group(1), close
