"""Preview: the context a template is shown with before anyone receives it."""

from __future__ import annotations

from .validation import validate_declarations
from .values import Scalar


def example_context(template_variables: object) -> dict[str, Scalar]:
    """Context built from the declared examples, for the admin preview.

    Optional variables without an example are left out so the preview shows their default.
    """
    return {
        name: declaration["example"]
        for name, declaration in validate_declarations(template_variables).items()
        if "example" in declaration
    }
