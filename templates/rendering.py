"""Notification template rendering: ``{{ variable }}`` substitution and nothing else.

Templates are written by admins and rendered for every recipient of a fan-out (100k+ users),
so the language is deliberately tiny:

* ``{{ name }}`` (whitespace inside the braces optional) is replaced by the context value.
  Names match ``[A-Za-z_][A-Za-z0-9_]*``. There is no attribute walking (``{{ user.name }}``),
  no filters, no expressions: a template can never reach into objects or run code, and what a
  template needs is fully described by its flat list of variable names.
* Django/Jinja tag syntax (``{% ... %}``) and Django comments (``{# ... #}``) are rejected as
  syntax errors, so nobody ships a template believing ``{% if %}`` works and the tag leaks to
  users verbatim. A lone ``{#`` (as in minified CSS ``@media(...){#header{...}}``) and stray
  ``}}``/``%}`` are ordinary text, because HTML email CSS contains them.
* A referenced variable missing from the context is an error, never an empty string: a message
  saying "Hi ," is worse than a failed delivery that names the missing variable.

Rendering precompiles a template into a ``str.format`` pattern (cached per source string), so
rendering one recipient is a handful of dict lookups plus one C-level format call.

This module is pure Python (no Django imports) so it can be used and tested without settings.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Any

__all__ = [
    "TEMPLATE_SYNTAX_ERROR",
    "TEMPLATE_VALIDATION_ERROR",
    "TEMPLATE_VARIABLE_INVALID",
    "TEMPLATE_VARIABLE_MISSING",
    "VARIABLE_NAME_PATTERN",
    "CompiledTemplate",
    "RenderedMessage",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "TemplateValidationError",
    "compile_template",
    "example_context",
    "render_html",
    "render_message",
    "render_text",
    "select_language",
    "validate_declarations",
    "validate_template",
]

# Error codes (UPPER_SNAKE, stable: API clients and delivery records store them).
TEMPLATE_VARIABLE_MISSING = "TEMPLATE_VARIABLE_MISSING"
TEMPLATE_VARIABLE_INVALID = "TEMPLATE_VARIABLE_INVALID"
TEMPLATE_SYNTAX_ERROR = "TEMPLATE_SYNTAX_ERROR"
TEMPLATE_VALIDATION_ERROR = "TEMPLATE_VALIDATION_ERROR"

VARIABLE_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(rf"\A{VARIABLE_NAME_PATTERN}\Z")
_TAG_RE = re.compile(rf"\s*({VARIABLE_NAME_PATTERN})\s*")  # used with fullmatch(pos, endpos)
# Earliest of the three openers; at one position "{{" wins because it is tried first.
_OPENER_RE = re.compile(r"\{\{|\{%|\{#")
_LINE_BREAKS_RE = re.compile(r"[\r\n]+")

# Declaration keys accepted in the ``template_variables`` JSON column.
DECLARATION_KEYS = frozenset({"required", "description", "example", "default"})

# Model field names used as keys in TemplateValidationError.errors, so the model's clean()
# can hand the dict straight to django.core.exceptions.ValidationError.
SUBJECT_FIELD = "subject_template"
CONTENT_FIELD = "content_template"
HTML_FIELD = "html_template"
VARIABLES_FIELD = "template_variables"

_COMPILE_CACHE_SIZE = 512
_SCALAR_TYPES = (str, bool, int, float, Decimal)
_SCALAR_HINT = "a string, number or boolean"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class TemplateError(Exception):
    """Base of every template failure; carries a machine-readable ``code``.

    ``field`` names the template field (``content_template`` ...) when known, ``variable`` the
    offending variable when there is one, so callers can record precise failure reasons on a
    delivery without parsing the message.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        field: str | None = None,
        variable: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.variable = variable

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__ breaks default exception pickling; Celery pickles exceptions.
        return (_rebuild_error, (type(self), self.__dict__.copy()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for API error bodies and delivery failure records."""
        return {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "variable": self.variable,
        }


def _rebuild_error(cls: type[TemplateError], state: dict[str, Any]) -> TemplateError:
    """Unpickle helper: recreate the exception without calling ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class TemplateRenderError(TemplateError):
    """Rendering failed for a given context (missing or unusable variable value)."""


class TemplateSyntaxError(TemplateError):
    """The template source is malformed; ``position`` is the 0-based offset, ``line`` and
    ``column`` are 1-based and already part of the message."""

    def __init__(
        self,
        message: str,
        *,
        position: int,
        line: int,
        column: int,
        field: str | None = None,
    ) -> None:
        super().__init__(message, code=TEMPLATE_SYNTAX_ERROR, field=field)
        self.position = position
        self.line = line
        self.column = column


class TemplateValidationError(TemplateError):
    """Template/declaration validation failed; ``errors`` maps field name to messages.

    The mapping has the shape Django's ``ValidationError(dict)`` expects.
    """

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors: dict[str, list[str]] = {field: list(msgs) for field, msgs in errors.items()}
        summary = "; ".join(
            f"{field}: {msg}" for field, msgs in self.errors.items() for msg in msgs
        )
        fields = list(self.errors)
        super().__init__(
            f"template validation failed: {summary}" if summary else "template validation failed",
            code=TEMPLATE_VALIDATION_ERROR,
            field=fields[0] if len(fields) == 1 else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Like the base form, plus the per-field messages."""
        data = super().to_dict()
        data["errors"] = self.errors
        return data


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------


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
    if "." in inner:
        suggestion = _shorten(re.sub(r"\s+", "", inner).replace(".", "_"))
        return _syntax_error(
            source,
            start,
            f"attribute access in '{tag}' is not supported",
            f"use a flat variable name such as '{suggestion}'",
        )
    if "|" in inner:
        return _syntax_error(source, start, f"filters in '{tag}' are not supported")
    return _syntax_error(
        source,
        start,
        f"invalid variable name in '{tag}'",
        f"names must match {VARIABLE_NAME_PATTERN}",
    )


def _tokenize(source: str) -> list[tuple[bool, str]]:
    """Split ``source`` into ``(is_variable, text)`` pieces or raise TemplateSyntaxError."""
    pieces: list[tuple[bool, str]] = []
    literal_start = 0
    pos = 0
    while True:
        match = _OPENER_RE.search(source, pos)
        if match is None:
            break
        start = match.start()
        opener = match.group()
        if opener == "{%":
            raise _syntax_error(
                source,
                start,
                "template tag '{%' is not supported",
                "only {{ variable }} substitution is available",
            )
        if opener == "{#":
            line_end = source.find("\n", start)
            if source.find("#}", start + 2, len(source) if line_end == -1 else line_end) != -1:
                raise _syntax_error(source, start, "comment '{# ... #}' is not supported")
            pos = start + 2  # a lone "{#" is literal text (minified CSS)
            continue
        close = source.find("}}", start + 2)
        nested = source.find("{{", start + 2, close) if close != -1 else -1
        if close == -1 or nested != -1:
            raise _syntax_error(source, start, "unclosed '{{'")
        tag = _TAG_RE.fullmatch(source, start + 2, close)
        if tag is None:
            raise _bad_tag_error(source, start, close)
        if start > literal_start:
            pieces.append((False, source[literal_start:start]))
        pieces.append((True, tag.group(1)))
        pos = literal_start = close + 2
    if literal_start < len(source):
        pieces.append((False, source[literal_start:]))
    return pieces


def _to_text(name: str, value: object) -> str:
    """Convert one context value to text, rejecting values that cannot sensibly be shown.

    Lists, dicts and arbitrary objects are refused rather than str()-ed: their repr leaking
    into a customer message (``['a', 'b']``, ``<User: 5>``) is always a bug. NaN/infinity are
    refused for the same reason.
    """
    if type(value) is str:
        return value
    if isinstance(value, _SCALAR_TYPES):
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(name, f"is {value!r}, not a finite number")
        if isinstance(value, Decimal) and not value.is_finite():
            raise _invalid(name, f"is {value}, not a finite number")
        return str(value)
    raise _invalid(name, f"has unsupported type {type(value).__name__}; expected {_SCALAR_HINT}")


def _invalid(name: str, detail: str) -> TemplateRenderError:
    return TemplateRenderError(
        f"template variable '{name}' {detail}", code=TEMPLATE_VARIABLE_INVALID, variable=name
    )


def _missing_value(name: str, declarations: Mapping[str, Any] | None) -> str:
    """Value for a variable absent from the context (or None): optional ones fall back to
    their declared default or "", required/undeclared ones are an error."""
    declaration = declarations.get(name) if declarations else None
    if isinstance(declaration, Mapping) and declaration.get("required", True) is False:
        default = declaration.get("default")
        return "" if default is None else _to_text(name, default)
    raise TemplateRenderError(
        f"template variable '{name}' is missing", code=TEMPLATE_VARIABLE_MISSING, variable=name
    )


@dataclass(frozen=True, slots=True, eq=False)
class CompiledTemplate:
    """A parsed template, immutable and shared between threads via the compile cache.

    ``variables`` lists each referenced name once, in order of first appearance.
    """

    source: str
    variables: tuple[str, ...]
    _pattern: str

    def render(
        self,
        context: Mapping[str, Any],
        *,
        html: bool = False,
        declarations: Mapping[str, Any] | None = None,
    ) -> str:
        """Render with ``context``; ``html=True`` escapes values (not the template markup).

        ``declarations`` (the ``template_variables`` column) is only consulted for variables
        missing from the context, so the common all-present path never touches it.
        """
        if not self.variables:
            return self.source
        values: list[str] = []
        for name in self.variables:
            value = context.get(name)
            text = _missing_value(name, declarations) if value is None else _to_text(name, value)
            values.append(escape(text, quote=True) if html else text)
        return self._pattern.format(*values)


@functools.lru_cache(maxsize=_COMPILE_CACHE_SIZE)
def compile_template(source: str) -> CompiledTemplate:
    """Parse ``source`` once (cached per source string); raises TemplateSyntaxError."""
    if not isinstance(source, str):
        raise TypeError(f"template source must be str, not {type(source).__name__}")
    index: dict[str, int] = {}
    pattern: list[str] = []
    for is_variable, text in _tokenize(source):
        if is_variable:
            pattern.append(f"{{{index.setdefault(text, len(index))}}}")
        else:
            pattern.append(text.replace("{", "{{").replace("}", "}}"))
    return CompiledTemplate(source=source, variables=tuple(index), _pattern="".join(pattern))


def render_text(
    source: str, context: Mapping[str, Any], *, declarations: Mapping[str, Any] | None = None
) -> str:
    """Render as plain text (SMS, push, subject, text email): values inserted verbatim."""
    return compile_template(source).render(context, declarations=declarations)


def render_html(
    source: str, context: Mapping[str, Any], *, declarations: Mapping[str, Any] | None = None
) -> str:
    """Render as HTML: values are escaped with ``html.escape(quote=True)``, markup is kept."""
    return compile_template(source).render(context, html=True, declarations=declarations)


# --------------------------------------------------------------------------------------------
# Declarations and template validation
# --------------------------------------------------------------------------------------------


def _is_scalar(value: object) -> bool:
    """Whether ``value`` is something a template can display (what _to_text accepts)."""
    if not isinstance(value, _SCALAR_TYPES):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return True


def validate_declarations(template_variables: object) -> dict[str, dict[str, Any]]:
    """Validate the ``template_variables`` column and return it normalised.

    Shape: ``{"name": {"required": bool = true, "description": str = "", "example": scalar,
    "default": scalar}}``. The result always has ``required`` and ``description``; ``example``
    and ``default`` are present only when given (JSON ``null`` counts as not given). ``None``
    (column unset) means no declarations and returns ``{}``.

    Required variables must carry an ``example`` so the admin preview can always render, and
    may not carry a ``default`` (a default only applies to optional variables; allowing it on a
    required one would hide which of the two the author meant).
    """
    if template_variables is None:
        return {}
    if not isinstance(template_variables, Mapping):
        raise TemplateValidationError(
            {VARIABLES_FIELD: ["must be an object mapping variable names to declarations"]}
        )
    messages: list[str] = []
    normalized: dict[str, dict[str, Any]] = {}
    for name, declaration in template_variables.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            messages.append(
                f"{name!r} is not a valid variable name (names must match {VARIABLE_NAME_PATTERN})"
            )
            continue
        if not isinstance(declaration, Mapping):
            messages.append(f"'{name}': declaration must be an object")
            continue
        problems: list[str] = []
        unknown = sorted(str(key) for key in declaration if key not in DECLARATION_KEYS)
        if unknown:
            problems.append(
                f"'{name}': unknown key(s) {', '.join(repr(k) for k in unknown)} "
                f"(allowed: {', '.join(sorted(DECLARATION_KEYS))})"
            )
        required = declaration.get("required", True)
        if not isinstance(required, bool):
            problems.append(f"'{name}': 'required' must be true or false")
        description = declaration.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            problems.append(f"'{name}': 'description' must be a string")
        entry: dict[str, Any] = {"required": required, "description": description}
        for key in ("example", "default"):
            value = declaration.get(key)
            if value is None:
                continue
            if _is_scalar(value):
                entry[key] = value
            else:
                problems.append(f"'{name}': '{key}' must be {_SCALAR_HINT}")
        if required is True and declaration.get("example") is None:
            problems.append(
                f"'{name}': required variables need an 'example' so the template can be previewed"
            )
        if required is True and declaration.get("default") is not None:
            problems.append(
                f"'{name}': 'default' is only allowed for optional variables "
                "(set 'required' to false)"
            )
        if problems:
            messages.extend(problems)
        else:
            normalized[name] = entry
    if messages:
        raise TemplateValidationError({VARIABLES_FIELD: messages})
    return normalized


def validate_template(
    *,
    subject: str | None = None,
    content: str,
    html: str | None = None,
    template_variables: object = None,
) -> set[str]:
    """Check a template before it is saved; return the variable names it uses.

    Collects every problem (rather than stopping at the first) into a TemplateValidationError
    keyed by model field: syntax errors per template field, a subject containing a line break
    (it would become a broken e-mail header), invalid declarations, and - when declarations
    are given (``template_variables`` is not None; ``{}`` counts as given) - variables used
    but not declared. Declared-but-unused variables are allowed (shared declaration sets).
    """
    errors: dict[str, list[str]] = {}
    compiled: dict[str, CompiledTemplate] = {}
    used: set[str] = set()
    for field, source in ((SUBJECT_FIELD, subject), (CONTENT_FIELD, content), (HTML_FIELD, html)):
        if source is None:
            continue
        if not isinstance(source, str):
            errors.setdefault(field, []).append("must be a string")
            continue
        try:
            template = compile_template(source)
        except TemplateSyntaxError as exc:
            errors.setdefault(field, []).append(exc.message)
            continue
        compiled[field] = template
        used.update(template.variables)
    if isinstance(subject, str) and ("\n" in subject or "\r" in subject):
        errors.setdefault(SUBJECT_FIELD, []).append("subject must be a single line")

    declarations: dict[str, dict[str, Any]] | None = None
    if template_variables is not None:
        try:
            declarations = validate_declarations(template_variables)
        except TemplateValidationError as exc:
            for field, msgs in exc.errors.items():
                errors.setdefault(field, []).extend(msgs)
    if declarations is not None:
        for field, template in compiled.items():
            for name in template.variables:
                if name not in declarations:
                    errors.setdefault(field, []).append(
                        f"variable '{name}' is not declared in template_variables"
                    )
    if errors:
        raise TemplateValidationError(errors)
    return used


def example_context(template_variables: object) -> dict[str, Any]:
    """Context built from the declared examples, for the admin preview.

    Optional variables without an example are left out so the preview shows their default.
    """
    return {
        name: declaration["example"]
        for name, declaration in validate_declarations(template_variables).items()
        if "example" in declaration
    }


# --------------------------------------------------------------------------------------------
# Whole-message rendering
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """The rendered parts of one notification; ``subject``/``html`` are None when the
    template has none (SMS, push)."""

    subject: str | None
    text: str
    html: str | None


def _render_field(
    field: str,
    source: str,
    context: Mapping[str, Any],
    declarations: Mapping[str, Any] | None,
    *,
    html: bool,
) -> str:
    """Render one template field, tagging any error with the field it came from."""
    try:
        return compile_template(source).render(context, html=html, declarations=declarations)
    except TemplateError as exc:
        exc.field = field
        raise


def render_message(
    *,
    subject: str | None,
    content: str,
    html: str | None,
    declarations: Mapping[str, Any] | None,
    context: Mapping[str, Any],
) -> RenderedMessage:
    """Render subject (plain), content (plain) and html (escaped) for one recipient.

    ``declarations`` is the stored ``template_variables`` (validated at save time); it is only
    read for variables missing from the context, to apply optional defaults - so the per
    recipient cost in a large fan-out stays at compiled-template rendering. Line breaks in the
    rendered subject (e.g. from a value) are collapsed to a single space because an e-mail
    subject is a single header line. Errors carry ``field`` set to the template field.
    """
    rendered_subject: str | None = None
    if subject is not None:
        rendered_subject = _LINE_BREAKS_RE.sub(
            " ", _render_field(SUBJECT_FIELD, subject, context, declarations, html=False)
        ).strip()
    text = _render_field(CONTENT_FIELD, content, context, declarations, html=False)
    rendered_html = (
        None if html is None else _render_field(HTML_FIELD, html, context, declarations, html=True)
    )
    return RenderedMessage(subject=rendered_subject, text=text, html=rendered_html)


# --------------------------------------------------------------------------------------------
# Language selection
# --------------------------------------------------------------------------------------------


def _normalize_locale(locale: str) -> str:
    """``pt_BR.UTF-8`` / ``PT-br`` -> ``pt-br``: comparable form of a locale tag."""
    locale = locale.strip().split(".", 1)[0].split("@", 1)[0]
    return locale.replace("_", "-").lower()


def select_language(
    available: Iterable[str], user_locale: str | None, default: str | None = "en"
) -> str | None:
    """Pick the template language for a user, returned as spelled in ``available``.

    Fallback order: the full user locale (``pt-BR``; ``pt_BR`` and any case accepted), then
    successively shorter prefixes of it (``zh-Hant-TW`` -> ``zh-Hant`` -> ``zh``; for
    ``pt-BR`` that is just the language ``pt``), then ``default``, then None. A user asking
    for ``pt`` is not matched to a regional ``pt-PT`` template: only the explicit chain applies.
    """
    spelled: dict[str, str] = {}
    for language in available:
        if language:
            spelled.setdefault(_normalize_locale(language), language)
    candidates: list[str] = []
    if user_locale:
        subtags = [part for part in _normalize_locale(user_locale).split("-") if part]
        candidates.extend("-".join(subtags[:n]) for n in range(len(subtags), 0, -1))
    if default:
        candidates.append(_normalize_locale(default))
    for candidate in candidates:
        if candidate in spelled:
            return spelled[candidate]
    return None
