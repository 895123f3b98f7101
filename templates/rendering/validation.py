"""Save-time checks: template syntax per field and the ``template_variables`` declarations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .engine import CompiledTemplate, compile_template
from .errors import (
    CONTENT_FIELD,
    HTML_FIELD,
    SUBJECT_FIELD,
    VARIABLES_FIELD,
    TemplateSyntaxError,
    TemplateValidationError,
)
from .syntax import VARIABLE_NAME_PATTERN
from .values import SCALAR_HINT, is_scalar

_NAME_RE = re.compile(rf"\A{VARIABLE_NAME_PATTERN}\Z")

# Declaration keys accepted in the ``template_variables`` JSON column.
DECLARATION_KEYS = frozenset({"required", "description", "example", "default"})


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
            if is_scalar(value):
                entry[key] = value
            else:
                problems.append(f"'{name}': '{key}' must be {SCALAR_HINT}")
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
