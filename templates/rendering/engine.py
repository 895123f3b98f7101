"""The ``{{ variable }}`` engine: compile a source once (cached), render it per recipient.

Rendering precompiles a template into a ``str.format`` pattern (cached per source string), so
rendering one recipient is a handful of dict lookups plus one C-level format call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from html import escape

from .syntax import tokenize
from .values import Context, Declarations, lookup, missing_value, to_text

_COMPILE_CACHE_SIZE = 512


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
        context: Context,
        *,
        html: bool = False,
        declarations: Declarations | None = None,
    ) -> str:
        """Render with ``context``; ``html=True`` escapes values (not the template markup).

        ``declarations`` (the ``template_variables`` column) is only consulted for variables
        missing from the context, so the common all-present path never touches it.
        """
        if not self.variables:
            return self.source
        values: list[str] = []
        for name in self.variables:
            value = context.get(name) if "." not in name else lookup(context, name)
            text = missing_value(name, declarations) if value is None else to_text(name, value)
            values.append(escape(text, quote=True) if html else text)
        return self._pattern.format(*values)


@functools.lru_cache(maxsize=_COMPILE_CACHE_SIZE)
def compile_template(source: str) -> CompiledTemplate:
    """Parse ``source`` once (cached per source string); raises TemplateSyntaxError."""
    if not isinstance(source, str):
        raise TypeError(f"template source must be str, not {type(source).__name__}")
    index: dict[str, int] = {}
    pattern: list[str] = []
    for is_variable, text in tokenize(source):
        if is_variable:
            pattern.append(f"{{{index.setdefault(text, len(index))}}}")
        else:
            pattern.append(text.replace("{", "{{").replace("}", "}}"))
    return CompiledTemplate(source=source, variables=tuple(index), _pattern="".join(pattern))


def render_text(source: str, context: Context, *, declarations: Declarations | None = None) -> str:
    """Render as plain text (SMS, push, subject, text email): values inserted verbatim."""
    return compile_template(source).render(context, declarations=declarations)


def render_html(source: str, context: Context, *, declarations: Declarations | None = None) -> str:
    """Render as HTML: values are escaped with ``html.escape(quote=True)``, markup is kept."""
    return compile_template(source).render(context, html=True, declarations=declarations)
