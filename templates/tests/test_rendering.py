"""Tests for templates.rendering: pure functions, no database, no Django settings needed."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from templates.rendering import (
    TEMPLATE_SYNTAX_ERROR,
    TEMPLATE_VALIDATION_ERROR,
    TEMPLATE_VARIABLE_INVALID,
    TEMPLATE_VARIABLE_MISSING,
    CompiledTemplate,
    RenderedMessage,
    TemplateError,
    TemplateRenderError,
    TemplateSyntaxError,
    TemplateValidationError,
    compile_template,
    example_context,
    render_html,
    render_message,
    render_text,
    select_language,
    validate_declarations,
    validate_template,
)

# --------------------------------------------------------------------------------------------
# Substitution
# --------------------------------------------------------------------------------------------


class TestSubstitution:
    def test_variables_are_substituted_with_or_without_inner_whitespace(self) -> None:
        # Given a template using both brace spellings
        source = "Hi {{name}}, you were outbid on {{  item  }} by {{ name }}."

        # When rendered
        result = render_text(source, {"name": "Ana", "item": "Lamp"})

        # Then every occurrence is replaced
        assert result == "Hi Ana, you were outbid on Lamp by Ana."

    def test_whitespace_inside_braces_may_include_newlines(self) -> None:
        assert render_text("{{\n  name\n}}!", {"name": "Ana"}) == "Ana!"

    def test_template_without_variables_renders_verbatim(self) -> None:
        source = "No variables { here } }} %} {#hdr{color:red}} 100%"
        assert render_text(source, {}) == source

    def test_literal_braces_next_to_variables_survive(self) -> None:
        # Given literal braces that would be format() syntax if not escaped internally
        source = "{a} {{ x }} {0} }}{{ x }}{"

        # When / Then
        assert render_text(source, {"x": "X"}) == "{a} X {0} }}X{"

    def test_css_in_html_is_left_untouched(self) -> None:
        source = "<style>@media(max-width:600px){#main{width:100%}}</style><p>{{ name }}</p>"
        assert render_html(source, {"name": "Ana"}) == (
            "<style>@media(max-width:600px){#main{width:100%}}</style><p>Ana</p>"
        )

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("text", "text"),
            (42, "42"),
            (-3, "-3"),
            (2.5, "2.5"),
            (Decimal("19.90"), "19.90"),
            (True, "True"),
            (False, "False"),
            (0, "0"),
            ("", ""),
        ],
    )
    def test_scalar_values_are_converted_with_str(self, value: object, expected: str) -> None:
        assert render_text("[{{ v }}]", {"v": value}) == f"[{expected}]"

    def test_falsy_values_other_than_none_are_not_treated_as_missing(self) -> None:
        assert render_text("{{ a }}|{{ b }}|{{ c }}", {"a": 0, "b": False, "c": ""}) == "0|False|"

    def test_extra_context_keys_are_ignored_even_if_not_scalar(self) -> None:
        assert render_text("{{ a }}", {"a": "x", "unused": {"nested": [1]}}) == "x"

    def test_unicode_values_and_templates(self) -> None:
        assert render_text("Olá {{ nome }} 👋", {"nome": "João"}) == "Olá João 👋"


# --------------------------------------------------------------------------------------------
# Escaping
# --------------------------------------------------------------------------------------------


class TestEscaping:
    def test_html_mode_escapes_values(self) -> None:
        # Given a hostile value
        context = {"name": "<script>alert('x')</script> & \"co\""}

        # When rendered as HTML
        result = render_html("<p>Hi {{ name }}</p>", context)

        # Then the value is escaped (quotes included) but the template markup is not
        assert result == (
            "<p>Hi &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;co&quot;</p>"
        )

    def test_text_mode_does_not_escape_values(self) -> None:
        context = {"name": "<script>alert('x')</script> & \"co\""}
        assert render_text("Hi {{ name }}", context) == "Hi <script>alert('x')</script> & \"co\""

    def test_html_mode_escapes_values_inside_attributes(self) -> None:
        result = render_html('<a href="{{ url }}">go</a>', {"url": '" onclick="evil()'})
        assert result == '<a href="&quot; onclick=&quot;evil()">go</a>'

    def test_html_mode_escapes_defaults_too(self) -> None:
        declarations = {"tag": {"required": False, "default": "<b>"}}
        assert render_html("{{ tag }}", {}, declarations=declarations) == "&lt;b&gt;"

    def test_compiled_render_html_flag(self) -> None:
        template = compile_template("<i>{{ v }}</i>")
        assert template.render({"v": "a<b"}, html=True) == "<i>a&lt;b</i>"
        assert template.render({"v": "a<b"}) == "<i>a<b</i>"


# --------------------------------------------------------------------------------------------
# Missing and invalid variables
# --------------------------------------------------------------------------------------------


class TestMissingAndInvalid:
    def test_missing_variable_raises_naming_the_variable(self) -> None:
        # When a referenced variable is absent
        with pytest.raises(TemplateRenderError) as info:
            render_text("Hi {{ first_name }}", {"last_name": "Silva"})

        # Then the error says which one, with a stable code
        error = info.value
        assert error.code == TEMPLATE_VARIABLE_MISSING
        assert error.variable == "first_name"
        assert error.message == "template variable 'first_name' is missing"
        assert str(error) == "template variable 'first_name' is missing"
        assert isinstance(error, TemplateError)

    def test_none_counts_as_missing_for_required_variables(self) -> None:
        with pytest.raises(TemplateRenderError) as info:
            render_text("{{ a }}", {"a": None})
        assert info.value.code == TEMPLATE_VARIABLE_MISSING
        assert info.value.variable == "a"

    def test_first_missing_variable_in_template_order_is_reported(self) -> None:
        with pytest.raises(TemplateRenderError) as info:
            render_text("{{ b }} {{ a }}", {})
        assert info.value.variable == "b"

    def test_optional_variable_renders_empty_when_missing(self) -> None:
        declarations = {"nickname": {"required": False}}
        assert render_text("Hi{{ nickname }}!", {}, declarations=declarations) == "Hi!"

    def test_optional_variable_uses_declared_default_when_missing_or_none(self) -> None:
        declarations = {"greeting": {"required": False, "default": "Hello"}}
        assert render_text("{{ greeting }}", {}, declarations=declarations) == "Hello"
        assert render_text("{{ greeting }}", {"greeting": None}, declarations=declarations) == (
            "Hello"
        )

    def test_optional_variable_value_wins_over_default(self) -> None:
        declarations = {"greeting": {"required": False, "default": "Hello"}}
        assert render_text("{{ greeting }}", {"greeting": "Hey"}, declarations=declarations) == (
            "Hey"
        )

    def test_numeric_default_is_stringified(self) -> None:
        declarations = {"count": {"required": False, "default": 0}}
        assert render_text("{{ count }}", {}, declarations=declarations) == "0"

    def test_declared_required_variable_still_raises_when_missing(self) -> None:
        declarations = {"a": {"required": True, "example": "x"}}
        with pytest.raises(TemplateRenderError) as info:
            render_text("{{ a }}", {}, declarations=declarations)
        assert info.value.code == TEMPLATE_VARIABLE_MISSING

    @pytest.mark.parametrize(
        ("value", "type_name"),
        [
            (["a", "b"], "list"),
            ({"k": "v"}, "dict"),
            (("a",), "tuple"),
            ({"a"}, "set"),
            (b"bytes", "bytes"),
            (object(), "object"),
        ],
    )
    def test_non_scalar_values_are_rejected_naming_the_variable(
        self, value: object, type_name: str
    ) -> None:
        with pytest.raises(TemplateRenderError) as info:
            render_text("{{ items }}", {"items": value})
        assert info.value.code == TEMPLATE_VARIABLE_INVALID
        assert info.value.variable == "items"
        assert info.value.message == (
            f"template variable 'items' has unsupported type {type_name}; "
            "expected a string, number or boolean"
        )

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN")])
    def test_non_finite_numbers_are_rejected(self, value: object) -> None:
        with pytest.raises(TemplateRenderError) as info:
            render_text("{{ n }}", {"n": value})
        assert info.value.code == TEMPLATE_VARIABLE_INVALID
        assert info.value.variable == "n"

    def test_invalid_default_is_rejected_naming_the_variable(self) -> None:
        declarations = {"tags": {"required": False, "default": ["x"]}}
        with pytest.raises(TemplateRenderError) as info:
            render_text("{{ tags }}", {}, declarations=declarations)
        assert info.value.code == TEMPLATE_VARIABLE_INVALID
        assert info.value.variable == "tags"


# --------------------------------------------------------------------------------------------
# Syntax
# --------------------------------------------------------------------------------------------


class TestSyntax:
    def test_a_broken_dotted_name_is_a_syntax_error(self) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            compile_template("Hi {{ user..name }}")
        error = info.value
        assert error.code == TEMPLATE_SYNTAX_ERROR
        assert (error.position, error.line, error.column) == (3, 1, 4)
        assert error.message == (
            "invalid dotted name in '{{ user..name }}' at line 1, column 4; "
            "names are keys joined by dots, each matching [A-Za-z_][A-Za-z0-9_]*"
        )

    def test_unclosed_braces_name_the_position(self) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            compile_template("line one\nsecond {{ name")
        error = info.value
        assert (error.position, error.line, error.column) == (16, 2, 8)
        assert error.message == "unclosed '{{' at line 2, column 8"

    def test_opening_braces_inside_a_tag_are_reported_as_unclosed(self) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            compile_template("{{ a {{ b }}")
        assert info.value.message == "unclosed '{{' at line 1, column 1"

    def test_django_block_tags_are_rejected(self) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            compile_template("Hi\n  {% if vip %}VIP{% endif %}")
        assert info.value.message == (
            "template tag '{%' is not supported at line 2, column 3; "
            "only {{ variable }} substitution is available"
        )

    def test_django_comments_are_rejected(self) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            compile_template("a {# note #} b")
        assert info.value.message == "comment '{# ... #}' is not supported at line 1, column 3"

    def test_lone_hash_brace_is_literal_text(self) -> None:
        # Given minified CSS, where "{#id" is common and never closed by "#}" on that line
        source = "@media(x){#a{color:#fff}}\n#}"

        # Then it compiles and renders verbatim
        assert compile_template(source).render({}) == source

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("{{}}", "empty variable tag '{{}}' at line 1, column 1"),
            ("{{   }}", "empty variable tag '{{ }}' at line 1, column 1"),
            ("{{ a|upper }}", "filters in '{{ a|upper }}' are not supported at line 1, column 1"),
            (
                "{{ 1abc }}",
                (
                    "invalid variable name in '{{ 1abc }}' at line 1, column 1; "
                    "names must match [A-Za-z_][A-Za-z0-9_]*"
                ),
            ),
            (
                "{{ a b }}",
                (
                    "invalid variable name in '{{ a b }}' at line 1, column 1; "
                    "names must match [A-Za-z_][A-Za-z0-9_]*"
                ),
            ),
            (
                "{{ foo() }}",
                (
                    "invalid variable name in '{{ foo() }}' at line 1, column 1; "
                    "names must match [A-Za-z_][A-Za-z0-9_]*"
                ),
            ),
            (
                "{{{ a }}}",
                (
                    "invalid variable name in '{{{ a }}' at line 1, column 1; "
                    "names must match [A-Za-z_][A-Za-z0-9_]*"
                ),
            ),
            (
                "{{ nome_ção }}",
                (
                    "invalid variable name in '{{ nome_ção }}' at line 1, column 1; "
                    "names must match [A-Za-z_][A-Za-z0-9_]*"
                ),
            ),
        ],
    )
    def test_invalid_tags(self, source: str, message: str) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            compile_template(source)
        assert info.value.message == message
        assert info.value.code == TEMPLATE_SYNTAX_ERROR

    def test_render_functions_raise_syntax_errors_too(self) -> None:
        with pytest.raises(TemplateSyntaxError):
            render_text("{{ user. name }}", {"user": "x"})


# --------------------------------------------------------------------------------------------
# Compilation and caching
# --------------------------------------------------------------------------------------------


class TestCompile:
    def test_variables_are_unique_in_first_appearance_order(self) -> None:
        template = compile_template("{{ b }} {{ a }} {{ b }} {{ _c1 }}")
        assert isinstance(template, CompiledTemplate)
        assert template.variables == ("b", "a", "_c1")
        assert template.source == "{{ b }} {{ a }} {{ b }} {{ _c1 }}"

    def test_compiled_templates_are_cached_per_source(self) -> None:
        assert compile_template("cache {{ me }}") is compile_template("cache {{ me }}")

    def test_compiled_template_is_immutable(self) -> None:
        template = compile_template("{{ a }}")
        with pytest.raises(AttributeError):
            template.variables = ("b",)  # type: ignore[misc]

    def test_non_string_source_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            compile_template(123)  # type: ignore[arg-type]

    def test_render_is_reusable_across_contexts(self) -> None:
        template = compile_template("Hi {{ name }}")
        rendered = [template.render({"name": n}) for n in ("A", "B", "C")]
        assert rendered == ["Hi A", "Hi B", "Hi C"]


# --------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------


def _declaration_errors(value: object) -> list[str]:
    with pytest.raises(TemplateValidationError) as info:
        validate_declarations(value)
    assert info.value.code == TEMPLATE_VALIDATION_ERROR
    assert list(info.value.errors) == ["template_variables"]
    return info.value.errors["template_variables"]


class TestValidateDeclarations:
    def test_valid_declarations_are_normalized(self) -> None:
        # Given declarations using defaults for omitted keys and null for "not given"
        raw = {
            "first_name": {"description": "User's first name", "example": "Ana"},
            "amount": {"required": True, "example": 12.5, "default": None},
            "nickname": {"required": False, "default": "friend", "description": None},
            "code": {"required": False},
        }

        # When validated
        result = validate_declarations(raw)

        # Then required defaults to true, description to "", null keys are dropped
        assert result == {
            "first_name": {"required": True, "description": "User's first name", "example": "Ana"},
            "amount": {"required": True, "description": "", "example": 12.5},
            "nickname": {"required": False, "description": "", "default": "friend"},
            "code": {"required": False, "description": ""},
        }

    def test_none_means_no_declarations(self) -> None:
        assert validate_declarations(None) == {}

    def test_empty_object_is_valid(self) -> None:
        assert validate_declarations({}) == {}

    @pytest.mark.parametrize("value", [[], "name", 3, [{"name": {}}]])
    def test_top_level_must_be_an_object(self, value: object) -> None:
        assert _declaration_errors(value) == [
            "must be an object mapping variable names to declarations"
        ]

    def test_invalid_names(self) -> None:
        errors = _declaration_errors(
            {"user..name": {"example": "x"}, "1st": {"example": "x"}, "": {"example": "x"}}
        )
        pattern = "[A-Za-z_][A-Za-z0-9_]*, or several joined by dots"
        assert errors == [
            f"'user..name' is not a valid variable name (names must match {pattern})",
            f"'1st' is not a valid variable name (names must match {pattern})",
            f"'' is not a valid variable name (names must match {pattern})",
        ]

    def test_declaration_must_be_an_object(self) -> None:
        assert _declaration_errors({"a": "required"}) == ["'a': declaration must be an object"]

    def test_unknown_keys(self) -> None:
        errors = _declaration_errors({"a": {"example": "x", "type": "str", "format": "x"}})
        assert errors == [
            (
                "'a': unknown key(s) 'format', 'type' "
                "(allowed: default, description, example, required)"
            )
        ]

    def test_wrong_types(self) -> None:
        errors = _declaration_errors(
            {
                "a": {"required": "yes", "example": "x"},
                "b": {"description": 5, "example": "x"},
                "c": {"example": ["x"]},
                "d": {"required": False, "default": {"x": 1}},
            }
        )
        assert errors == [
            "'a': 'required' must be true or false",
            "'b': 'description' must be a string",
            "'c': 'example' must be a string, number or boolean",
            "'d': 'default' must be a string, number or boolean",
        ]

    def test_required_variable_needs_an_example(self) -> None:
        errors = _declaration_errors({"a": {"description": "no example"}, "b": {"example": None}})
        assert errors == [
            "'a': required variables need an 'example' so the template can be previewed",
            "'b': required variables need an 'example' so the template can be previewed",
        ]

    def test_optional_variable_needs_no_example(self) -> None:
        assert validate_declarations({"a": {"required": False}}) == {
            "a": {"required": False, "description": ""}
        }

    def test_default_is_only_for_optional_variables(self) -> None:
        errors = _declaration_errors({"a": {"example": "x", "default": "y"}})
        assert errors == [
            "'a': 'default' is only allowed for optional variables (set 'required' to false)"
        ]

    def test_all_problems_are_collected(self) -> None:
        errors = _declaration_errors({"a": {"required": 1, "extra": True, "example": "x"}})
        assert errors == [
            "'a': unknown key(s) 'extra' (allowed: default, description, example, required)",
            "'a': 'required' must be true or false",
        ]

    def test_example_context_uses_examples_and_skips_optional_without_example(self) -> None:
        raw = {
            "name": {"example": "Ana"},
            "count": {"example": 3},
            "nick": {"required": False, "default": "friend"},
            "tag": {"required": False, "example": "vip"},
        }
        assert example_context(raw) == {"name": "Ana", "count": 3, "tag": "vip"}
        # and the preview renders with it
        context = example_context(raw)
        rendered = render_text(
            "{{ name }}/{{ count }}/{{ nick }}/{{ tag }}", context, declarations=raw
        )
        assert rendered == "Ana/3/friend/vip"


# --------------------------------------------------------------------------------------------
# Template validation
# --------------------------------------------------------------------------------------------


class TestValidateTemplate:
    def test_valid_template_returns_used_variables(self) -> None:
        used = validate_template(
            subject="Outbid on {{ item }}",
            content="Hi {{ name }}",
            html="<p>{{ name }} / {{ price }}</p>",
            template_variables={
                "item": {"example": "Lamp"},
                "name": {"example": "Ana"},
                "price": {"example": "10"},
                "unused": {"required": False},
            },
        )
        assert used == {"item", "name", "price"}

    def test_without_declarations_undeclared_variables_are_allowed(self) -> None:
        assert validate_template(content="{{ a }} {{ b }}") == {"a", "b"}

    def test_empty_declarations_count_as_given(self) -> None:
        with pytest.raises(TemplateValidationError) as info:
            validate_template(content="{{ a }}", template_variables={})
        assert info.value.errors == {
            "content_template": ["variable 'a' is not declared in template_variables"]
        }

    def test_errors_are_reported_per_field(self) -> None:
        # Given a problem in every field
        with pytest.raises(TemplateValidationError) as info:
            validate_template(
                subject="{{ user.name. }}",
                content="Hi {{ name }} {{ other }}",
                html="<p>{{ name</p>",
                template_variables={"name": {"description": "no example"}},
            )

        # Then each field gets its own messages
        error = info.value
        assert error.code == TEMPLATE_VALIDATION_ERROR
        assert error.field is None
        assert error.errors == {
            "subject_template": [
                (
                    "invalid dotted name in '{{ user.name. }}' at line 1, column 1; "
                    "names are keys joined by dots, each matching [A-Za-z_][A-Za-z0-9_]*"
                )
            ],
            "html_template": ["unclosed '{{' at line 1, column 4"],
            "template_variables": [
                "'name': required variables need an 'example' so the template can be previewed"
            ],
        }

    def test_undeclared_variables_per_field(self) -> None:
        with pytest.raises(TemplateValidationError) as info:
            validate_template(
                subject="{{ a }}",
                content="{{ a }} {{ b }} {{ c }}",
                template_variables={"a": {"example": "x"}},
            )
        assert info.value.errors == {
            "content_template": [
                "variable 'b' is not declared in template_variables",
                "variable 'c' is not declared in template_variables",
            ]
        }
        assert info.value.field == "content_template"

    def test_subject_must_be_a_single_line(self) -> None:
        with pytest.raises(TemplateValidationError) as info:
            validate_template(subject="Hello\r\nBcc: x@example.com", content="x")
        assert info.value.errors == {"subject_template": ["subject must be a single line"]}

    def test_message_summarizes_all_errors(self) -> None:
        with pytest.raises(TemplateValidationError) as info:
            validate_template(content="{% x %}", html="{{ }}")
        assert info.value.message == (
            "template validation failed: "
            "content_template: template tag '{%' is not supported at line 1, column 1; "
            "only {{ variable }} substitution is available; "
            "html_template: empty variable tag '{{ }}' at line 1, column 1"
        )

    def test_non_string_source(self) -> None:
        with pytest.raises(TemplateValidationError) as info:
            validate_template(content=["x"])  # type: ignore[arg-type]
        assert info.value.errors == {"content_template": ["must be a string"]}

    def test_validation_error_to_dict(self) -> None:
        with pytest.raises(TemplateValidationError) as info:
            validate_template(content="{{ a }}", template_variables={})
        assert info.value.to_dict() == {
            "code": "TEMPLATE_VALIDATION_ERROR",
            "message": "template validation failed: "
            "content_template: variable 'a' is not declared in template_variables",
            "field": "content_template",
            "variable": None,
            "errors": {"content_template": ["variable 'a' is not declared in template_variables"]},
        }


# --------------------------------------------------------------------------------------------
# Whole messages
# --------------------------------------------------------------------------------------------


class TestRenderMessage:
    def test_renders_all_parts_with_the_right_modes(self) -> None:
        # Given an email template and a value that needs escaping
        result = render_message(
            subject="Outbid on {{ item }}",
            content="Hi {{ name }}, {{ item }} now costs {{ price }}.",
            html="<p>Hi {{ name }}, <b>{{ item }}</b></p>",
            declarations={"name": {"example": "Ana"}},
            context={"name": "Ana", "item": "Tom & Jerry <DVD>", "price": Decimal("9.99")},
        )

        # Then text parts are verbatim and html is escaped
        assert result == RenderedMessage(
            subject="Outbid on Tom & Jerry <DVD>",
            text="Hi Ana, Tom & Jerry <DVD> now costs 9.99.",
            html="<p>Hi Ana, <b>Tom &amp; Jerry &lt;DVD&gt;</b></p>",
        )

    def test_sms_without_subject_or_html(self) -> None:
        result = render_message(
            subject=None,
            content="Code {{ code }}",
            html=None,
            declarations=None,
            context={"code": 7},
        )
        assert result == RenderedMessage(subject=None, text="Code 7", html=None)

    def test_optional_defaults_apply(self) -> None:
        result = render_message(
            subject=None,
            content="{{ greeting }} {{ name }}{{ suffix }}",
            html=None,
            declarations={
                "greeting": {"required": False, "default": "Hello"},
                "suffix": {"required": False},
                "name": {"example": "Ana"},
            },
            context={"name": "Ana"},
        )
        assert result.text == "Hello Ana"

    def test_line_breaks_in_rendered_subject_are_collapsed(self) -> None:
        result = render_message(
            subject="New: {{ title }}",
            content="x",
            html=None,
            declarations=None,
            context={"title": "Line one\r\n\nLine two\n"},
        )
        assert result.subject == "New: Line one Line two"

    @pytest.mark.parametrize(
        ("missing_in", "field"),
        [
            ("subject", "subject_template"),
            ("content", "content_template"),
            ("html", "html_template"),
        ],
    )
    def test_errors_name_the_field_and_variable(self, missing_in: str, field: str) -> None:
        templates = {"subject": "s", "content": "c", "html": "h"}
        templates[missing_in] = "{{ absent }}"
        with pytest.raises(TemplateRenderError) as info:
            render_message(**templates, declarations=None, context={})
        assert info.value.code == TEMPLATE_VARIABLE_MISSING
        assert info.value.field == field
        assert info.value.variable == "absent"
        assert info.value.to_dict() == {
            "code": "TEMPLATE_VARIABLE_MISSING",
            "message": "template variable 'absent' is missing",
            "field": field,
            "variable": "absent",
        }

    def test_syntax_error_names_the_field(self) -> None:
        with pytest.raises(TemplateSyntaxError) as info:
            render_message(
                subject=None, content="ok", html="{{ a..b }}", declarations=None, context={}
            )
        assert info.value.field == "html_template"

    def test_invalid_value_names_field_and_variable(self) -> None:
        with pytest.raises(TemplateRenderError) as info:
            render_message(
                subject=None, content="{{ v }}", html=None, declarations=None, context={"v": [1]}
            )
        assert (info.value.code, info.value.field, info.value.variable) == (
            TEMPLATE_VARIABLE_INVALID,
            "content_template",
            "v",
        )


# --------------------------------------------------------------------------------------------
# Error objects
# --------------------------------------------------------------------------------------------


class TestErrors:
    def test_render_error_can_be_built_with_keywords(self) -> None:
        error = TemplateRenderError(
            code="TEMPLATE_VARIABLE_MISSING",
            variable="name",
            message="template variable 'name' is missing",
        )
        assert (error.code, error.variable, error.field, str(error)) == (
            "TEMPLATE_VARIABLE_MISSING",
            "name",
            None,
            "template variable 'name' is missing",
        )

    def test_errors_survive_pickling(self) -> None:
        # Celery pickles task exceptions; keyword-only constructors must not break that.
        original = TemplateRenderError(
            "template variable 'x' is missing",
            code=TEMPLATE_VARIABLE_MISSING,
            field="content_template",
            variable="x",
        )
        restored = pickle.loads(pickle.dumps(original))
        assert type(restored) is TemplateRenderError
        assert restored.to_dict() == original.to_dict()
        assert str(restored) == str(original)

    def test_syntax_and_validation_errors_survive_pickling(self) -> None:
        syntax = TemplateSyntaxError("bad", position=3, line=1, column=4, field="html_template")
        restored_syntax = pickle.loads(pickle.dumps(syntax))
        assert (restored_syntax.position, restored_syntax.line, restored_syntax.column) == (3, 1, 4)
        assert restored_syntax.code == TEMPLATE_SYNTAX_ERROR

        validation = TemplateValidationError({"content_template": ["oops"]})
        restored_validation = pickle.loads(pickle.dumps(validation))
        assert restored_validation.errors == {"content_template": ["oops"]}
        assert restored_validation.message == "template validation failed: content_template: oops"


# --------------------------------------------------------------------------------------------
# Language selection
# --------------------------------------------------------------------------------------------


class TestSelectLanguage:
    @pytest.mark.parametrize(
        ("available", "user_locale", "expected"),
        [
            # exact locale, any spelling, returned as spelled in available
            (["en", "pt", "pt-BR"], "pt-BR", "pt-BR"),
            (["en", "pt", "pt-BR"], "pt_BR", "pt-BR"),
            (["en", "pt", "pt_br"], "PT-br", "pt_br"),
            (["en", "pt", "pt-BR"], "pt_BR.UTF-8", "pt-BR"),
            # falls back to the language
            (["en", "pt"], "pt-BR", "pt"),
            (["en", "PT"], "pt_PT", "PT"),
            (["en", "es"], "es", "es"),
            # then to the default
            (["en", "fr"], "pt-BR", "en"),
            (["en", "fr"], None, "en"),
            (["en", "fr"], "", "en"),
            # a regional template is not used for a bare language or a sibling region
            (["en", "pt-PT"], "pt", "en"),
            (["en", "pt-PT"], "pt-BR", "en"),
            # progressive truncation for longer tags
            (["en", "zh-Hant", "zh"], "zh-Hant-TW", "zh-Hant"),
            (["en", "zh"], "zh_Hant_TW", "zh"),
            # nothing matches
            (["fr", "de"], "pt-BR", None),
            ([], "en", None),
        ],
    )
    def test_fallback_chain(
        self, available: list[str], user_locale: str | None, expected: str | None
    ) -> None:
        assert select_language(available, user_locale) == expected

    def test_custom_default(self) -> None:
        assert select_language(["fr", "de"], "pt-BR", default="de") == "de"
        assert select_language(["en-US"], "pt", default="en_us") == "en-US"

    def test_no_default(self) -> None:
        assert select_language(["en"], "pt", default=None) is None

    def test_accepts_any_iterable_and_first_spelling_wins(self) -> None:
        assert select_language(iter(["pt_BR", "pt-BR"]), "pt-br") == "pt_BR"
