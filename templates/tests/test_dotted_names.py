"""Dotted names (``{{ digest.count }}``): dict-key lookups only, never attribute access;
flat names keep working; validation and preview understand dotted names."""

from __future__ import annotations

import pytest

from templates.rendering import (
    TEMPLATE_VARIABLE_INVALID,
    TEMPLATE_VARIABLE_MISSING,
    TemplateRenderError,
    TemplateValidationError,
    compile_template,
    example_context,
    render_html,
    render_text,
    validate_template,
)


def test_dotted_names_look_up_dict_keys_per_level() -> None:
    context = {"digest": {"count": 3, "items": "a\nb", "meta": {"key": "auction_id=7"}}}
    assert render_text("{{ digest.count }} new: {{ digest.items }}", context) == "3 new: a\nb"
    assert render_text("{{digest.meta.key}}", context) == "auction_id=7"
    assert compile_template("{{ digest.count }} {{ digest_count }}").variables == (
        "digest.count",
        "digest_count",
    )


def test_flat_names_still_work_next_to_dotted_ones() -> None:
    context = {"digest_count": 2, "digest": {"count": 2}}
    assert render_text("{{ digest_count }}={{ digest.count }}", context) == "2=2"


def test_a_literal_dotted_key_wins_over_the_walk() -> None:
    assert render_text("{{ a.b }}", {"a.b": "flat", "a": {"b": "nested"}}) == "flat"


def test_objects_are_never_walked_by_attribute() -> None:
    class Secretive:
        password = "hunter2"

    with pytest.raises(TemplateRenderError) as info:
        render_text("{{ user.password }}", {"user": Secretive()})
    assert info.value.code == TEMPLATE_VARIABLE_MISSING
    # a str has attributes too (``upper``): not a mapping, not walked
    with pytest.raises(TemplateRenderError):
        render_text("{{ name.upper }}", {"name": "ann"})


def test_a_missing_level_is_a_missing_variable_naming_the_full_name() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_text("{{ digest.count }}", {"digest": {}})
    assert (info.value.code, info.value.variable) == (TEMPLATE_VARIABLE_MISSING, "digest.count")


def test_a_dotted_name_must_reach_a_scalar() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_text("{{ digest.meta }}", {"digest": {"meta": {"k": 1}}})
    assert info.value.code == TEMPLATE_VARIABLE_INVALID


def test_html_escapes_dotted_values() -> None:
    assert render_html("<b>{{ d.x }}</b>", {"d": {"x": "<i>"}}) == "<b>&lt;i&gt;</b>"


def test_validation_accepts_declared_dotted_names_and_flags_undeclared_ones() -> None:
    declared = {"digest.count": {"example": 4}}
    assert validate_template(content="{{ digest.count }}", template_variables=declared) == {
        "digest.count"
    }
    with pytest.raises(TemplateValidationError) as info:
        validate_template(content="{{ digest.items }}", template_variables=declared)
    assert info.value.errors == {
        "content_template": ["variable 'digest.items' is not declared in template_variables"]
    }


def test_preview_renders_dotted_names_from_their_examples() -> None:
    declarations = {
        "digest.count": {"example": 4},
        "digest.more": {"required": False, "default": 0},
    }
    context = example_context(declarations)
    assert context == {"digest.count": 4}
    source = "{{ digest.count }} (+{{ digest.more }})"
    assert render_text(source, context, declarations=declarations) == "4 (+0)"
