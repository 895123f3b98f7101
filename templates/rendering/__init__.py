"""Notification template rendering: ``{{ variable }}`` substitution and nothing else.

Templates are written by admins and rendered for every recipient of a fan-out (100k+ users),
so the language is deliberately tiny:

* ``{{ name }}`` (whitespace inside the braces optional) is replaced by the context value.
  Names match ``[A-Za-z_][A-Za-z0-9_]*``, or several joined by dots (``{{ digest.count }}``):
  a dotted name is a dict-key lookup per level (a literal ``"digest.count"`` key wins), never
  attribute access on an object. No filters, no expressions: a template can never reach into
  objects or run code, and what a template needs is fully described by its list of names.
* Django/Jinja tag syntax (``{% ... %}``) and Django comments (``{# ... #}``) are rejected as
  syntax errors, so nobody ships a template believing ``{% if %}`` works and the tag leaks to
  users verbatim. A lone ``{#`` (as in minified CSS ``@media(...){#header{...}}``) and stray
  ``}}``/``%}`` are ordinary text, because HTML email CSS contains them.
* A referenced variable missing from the context is an error, never an empty string: a message
  saying "Hi ," is worse than a failed delivery that names the missing variable.

Rendering precompiles a template into a ``str.format`` pattern (cached per source string), so
rendering one recipient is a handful of dict lookups plus one C-level format call.

This package is pure Python (no Django imports) so it can be used and tested without settings.
One module per job, in dependency order: ``errors`` (codes and exceptions), ``syntax``
(parsing), ``values`` (what a value may be), ``engine`` (compile and render one source),
``validation`` (save-time checks), ``preview`` (example context), ``message`` (subject, text
and HTML of one notification) and ``language`` (locale fallback). Import from
``templates.rendering``: the names below are its public surface.
"""

from __future__ import annotations

from .engine import CompiledTemplate, compile_template, render_html, render_text
from .errors import (
    CONTENT_FIELD,
    HTML_FIELD,
    SUBJECT_FIELD,
    TEMPLATE_SYNTAX_ERROR,
    TEMPLATE_VALIDATION_ERROR,
    TEMPLATE_VARIABLE_INVALID,
    TEMPLATE_VARIABLE_MISSING,
    VARIABLES_FIELD,
    TemplateError,
    TemplateRenderError,
    TemplateSyntaxError,
    TemplateValidationError,
    _rebuild_error,  # noqa: F401 - pickles from before the split name it here
)
from .language import select_language
from .message import RenderedMessage, render_message
from .preview import example_context
from .syntax import VARIABLE_NAME_PATTERN
from .validation import DECLARATION_KEYS, validate_declarations, validate_template

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
    # field keys of TemplateValidationError.errors and the declaration keys
    "CONTENT_FIELD",
    "DECLARATION_KEYS",
    "HTML_FIELD",
    "SUBJECT_FIELD",
    "VARIABLES_FIELD",
]
