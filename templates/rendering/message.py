"""Whole-message rendering: subject, text and HTML of one notification for one recipient."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .engine import compile_template
from .errors import CONTENT_FIELD, HTML_FIELD, SUBJECT_FIELD, TemplateError
from .values import Context, Declarations

_LINE_BREAKS_RE = re.compile(r"[\r\n]+")


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
    context: Context,
    declarations: Declarations | None,
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
    declarations: Declarations | None,
    context: Context,
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
