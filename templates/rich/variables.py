"""A template's ``rich_content_template``: rich content whose strings carry ``{{ variables }}``,
rendered with the same engine as subject and body, then validated like a caller's
``rich_content`` (``schema.validate_rich_content``)."""

from __future__ import annotations

from typing import Any

from ..rendering.engine import compile_template
from ..rendering.errors import TemplateError
from ..rendering.values import Context, Declarations
from .schema import BUTTON_KEYS, IMAGE_KEYS, KEYS, validate_rich_content

FIELD = "rich_content_template"


def _render(value: Any, context: Context, declarations: Declarations | None, *, html: bool) -> Any:
    if isinstance(value, str):
        try:
            return compile_template(value).render(context, html=html, declarations=declarations)
        except TemplateError as exc:
            exc.field = FIELD
            raise
    if isinstance(value, list):
        return [_render(v, context, declarations, html=False) for v in value]
    if isinstance(value, dict):
        return {
            k: _render(v, context, declarations, html=html or k == "html") for k, v in value.items()
        }
    return value


def render_rich_template(
    source: dict[str, Any] | None, context: Context, declarations: Declarations | None = None
) -> dict[str, Any] | None:
    """The rendered, validated rich content of a template (None without one). Raises
    ``TemplateError`` (a variable) or ``schema.RichContentError`` (the result's shape; its
    field starts with ``rich_content_template``). ``html`` values are escaped."""
    if not source:
        return None
    return validate_rich_content(_render(source, context, declarations, html=False), FIELD)


def rich_template_problems(source: object) -> list[str]:
    """Save-time checks of a ``rich_content_template`` (keys, types, template syntax); URLs
    and limits are checked on the rendered result, when the variables are known."""
    if source is None:
        return []
    if not isinstance(source, dict):
        return ["must be an object"]
    problems = [f"unknown key {key!r}" for key in source if key not in KEYS]
    image = source.get("image")
    if isinstance(image, dict):
        problems += [f"image: unknown key {k!r}" for k in image if k not in IMAGE_KEYS]
    elif image is not None and not isinstance(image, str):
        problems.append("image must be an object or a URL")
    buttons = source.get("buttons")
    if buttons is not None and not isinstance(buttons, list):
        problems.append("buttons must be a list")
    for index, button in enumerate(buttons if isinstance(buttons, list) else []):
        if not isinstance(button, dict):
            problems.append(f"buttons[{index}] must be an object {{label, url}}")
            continue
        problems += [f"buttons[{index}]: unknown key {k!r}" for k in button if k not in BUTTON_KEYS]
    problems += _syntax_problems(source)
    return problems


def _syntax_problems(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            compile_template(value)
        except TemplateError as exc:
            return [exc.message]
        return []
    if isinstance(value, list):
        return [p for v in value for p in _syntax_problems(v)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _syntax_problems(v)]
    return []
