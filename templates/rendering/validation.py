"""Save-time checks: template syntax per field and the ``template_variables`` declarations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NotRequired, TypedDict, cast

from .engine import CompiledTemplate, compile_template
from .errors import (
    CONTENT_FIELD,
    HTML_FIELD,
    SUBJECT_FIELD,
    VARIABLES_FIELD,
    TemplateSyntaxError,
    TemplateValidationError,
)
from .syntax import DOTTED_NAME_PATTERN, VARIABLE_NAME_PATTERN
from .values import SCALAR_HINT, Scalar, is_scalar

# a declared name may be dotted (``digest.count``), like the names templates use
_NAME_RE = re.compile(rf"\A{DOTTED_NAME_PATTERN}\Z")

# Declaration keys accepted in the ``template_variables`` JSON column.
DECLARATION_KEYS = frozenset({"required", "description", "example", "default"})


class VariableDeclaration(TypedDict):
    """One normalised entry of ``template_variables`` (see validate_declarations)."""

    required: bool
    description: str
    example: NotRequired[Scalar]
    default: NotRequired[Scalar]


def validate_declarations(template_variables: object) -> dict[str, VariableDeclaration]:
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
    normalized: dict[str, VariableDeclaration] = {}
    for name, declaration in template_variables.items():
        problems = _declaration_problems(name, declaration)
        if problems:
            messages.extend(problems)
        else:
            normalized[name] = _normalized(declaration)
    if messages:
        raise TemplateValidationError({VARIABLES_FIELD: messages})
    return normalized


def _declaration_problems(name: object, declaration: object) -> list[str]:
    """Everything wrong with one declaration, in a stable order; empty when it is valid."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return [
            f"{name!r} is not a valid variable name (names must match {VARIABLE_NAME_PATTERN}, "
            "or several joined by dots)"
        ]
    if not isinstance(declaration, Mapping):
        return [f"'{name}': declaration must be an object"]
    return [
        *_unknown_key_problems(name, declaration),
        *_value_type_problems(name, declaration),
        *_required_problems(name, declaration),
    ]


def _unknown_key_problems(name: str, declaration: Mapping[object, object]) -> list[str]:
    unknown = sorted(str(key) for key in declaration if key not in DECLARATION_KEYS)
    if not unknown:
        return []
    return [
        f"'{name}': unknown key(s) {', '.join(repr(k) for k in unknown)} "
        f"(allowed: {', '.join(sorted(DECLARATION_KEYS))})"
    ]


def _value_type_problems(name: str, declaration: Mapping[object, object]) -> list[str]:
    problems: list[str] = []
    if not isinstance(declaration.get("required", True), bool):
        problems.append(f"'{name}': 'required' must be true or false")
    if not isinstance(_description(declaration), str):
        problems.append(f"'{name}': 'description' must be a string")
    for key in ("example", "default"):
        value = declaration.get(key)
        if value is not None and not is_scalar(value):
            problems.append(f"'{name}': '{key}' must be {SCALAR_HINT}")
    return problems


def _required_problems(name: str, declaration: Mapping[object, object]) -> list[str]:
    """A required variable needs an example (for the preview) and may not have a default."""
    if declaration.get("required", True) is not True:
        return []
    problems: list[str] = []
    if declaration.get("example") is None:
        problems.append(
            f"'{name}': required variables need an 'example' so the template can be previewed"
        )
    if declaration.get("default") is not None:
        problems.append(
            f"'{name}': 'default' is only allowed for optional variables (set 'required' to false)"
        )
    return problems


def _description(declaration: Mapping[object, object]) -> object:
    description = declaration.get("description", "")
    return "" if description is None else description


def _normalized(declaration: Mapping[object, object]) -> VariableDeclaration:
    """The stored form of a valid declaration: ``example``/``default`` only when given.

    Only called once _declaration_problems found nothing, so the casts hold.
    """
    entry = VariableDeclaration(
        required=cast(bool, declaration.get("required", True)),
        description=cast(str, _description(declaration)),
    )
    if (example := declaration.get("example")) is not None:
        entry["example"] = cast(Scalar, example)
    if (default := declaration.get("default")) is not None:
        entry["default"] = cast(Scalar, default)
    return entry


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
    sources = {SUBJECT_FIELD: subject, CONTENT_FIELD: content, HTML_FIELD: html}
    compiled = _compile_fields(sources, errors)
    if isinstance(subject, str) and ("\n" in subject or "\r" in subject):
        errors.setdefault(SUBJECT_FIELD, []).append("subject must be a single line")
    if template_variables is not None:
        _check_declared(compiled, template_variables, errors)
    if errors:
        raise TemplateValidationError(errors)
    return {name for template in compiled.values() for name in template.variables}


def _compile_fields(
    sources: Mapping[str, object], errors: dict[str, list[str]]
) -> dict[str, CompiledTemplate]:
    """Compile each given field; a field that does not compile adds to ``errors`` instead."""
    compiled: dict[str, CompiledTemplate] = {}
    for field, source in sources.items():
        if source is None:
            continue
        if not isinstance(source, str):
            errors.setdefault(field, []).append("must be a string")
            continue
        try:
            compiled[field] = compile_template(source)
        except TemplateSyntaxError as exc:
            errors.setdefault(field, []).append(exc.message)
    return compiled


def _check_declared(
    compiled: Mapping[str, CompiledTemplate],
    template_variables: object,
    errors: dict[str, list[str]],
) -> None:
    """Add invalid declarations or, when they are valid, variables used but not declared."""
    try:
        declarations = validate_declarations(template_variables)
    except TemplateValidationError as exc:
        for field, msgs in exc.errors.items():
            errors.setdefault(field, []).extend(msgs)
        return
    for field, template in compiled.items():
        for name in template.variables:
            if name not in declarations:
                errors.setdefault(field, []).append(
                    f"variable '{name}' is not declared in template_variables"
                )
