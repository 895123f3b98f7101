"""Template errors: stable codes and exceptions that say which field and variable failed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NotRequired, TypeAlias, TypedDict

# Error codes (UPPER_SNAKE, stable: API clients and delivery records store them).
TEMPLATE_VARIABLE_MISSING = "TEMPLATE_VARIABLE_MISSING"
TEMPLATE_VARIABLE_INVALID = "TEMPLATE_VARIABLE_INVALID"
TEMPLATE_SYNTAX_ERROR = "TEMPLATE_SYNTAX_ERROR"
TEMPLATE_VALIDATION_ERROR = "TEMPLATE_VALIDATION_ERROR"

# Model field names used as keys in TemplateValidationError.errors, so the model's clean()
# can hand the dict straight to django.core.exceptions.ValidationError.
SUBJECT_FIELD = "subject_template"
CONTENT_FIELD = "content_template"
HTML_FIELD = "html_template"
VARIABLES_FIELD = "template_variables"


class TemplateErrorBody(TypedDict):
    """``TemplateError.to_dict()``: what API error bodies and delivery records store."""

    code: str
    message: str
    field: str | None
    variable: str | None
    errors: NotRequired[dict[str, list[str]]]  # TemplateValidationError only


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

    def __reduce__(self) -> tuple[_Rebuild, tuple[type[TemplateError], dict[str, object]]]:
        # Keyword-only __init__ breaks default exception pickling; Celery pickles exceptions.
        return (_rebuild_error, (type(self), self.__dict__.copy()))

    def to_dict(self) -> TemplateErrorBody:
        """JSON-friendly form for API error bodies and delivery failure records."""
        return {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "variable": self.variable,
        }


def _rebuild_error(cls: type[TemplateError], state: dict[str, object]) -> TemplateError:
    """Unpickle helper: recreate the exception without calling ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


_Rebuild: TypeAlias = Callable[[type[TemplateError], dict[str, object]], TemplateError]


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

    def to_dict(self) -> TemplateErrorBody:
        """Like the base form, plus the per-field messages."""
        data = super().to_dict()
        data["errors"] = self.errors
        return data
