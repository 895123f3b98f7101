"""The rich_content schema (templates/rich/schema.py), its template form with variables and
the per-channel forms (templates/rich/channels.py): pure functions, no database."""

from __future__ import annotations

import pytest

from templates.rendering import TemplateError
from templates.rich import (
    RichContentError,
    dropped_parts,
    email_html,
    email_text,
    own_urls,
    render_rich_template,
    rich_template_problems,
    sms_text,
    validate_rich_content,
)

BUTTON = {"label": "View", "url": "https://shop.example/o/1"}


def _error(value) -> RichContentError:
    with pytest.raises(RichContentError) as caught:
        validate_rich_content(value)
    return caught.value


def test_a_full_rich_content_is_normalised():
    rich = validate_rich_content(
        {
            "image": "https://cdn.example/p.png",
            "buttons": [{"label": "  View  ", "url": "https://shop.example/o/1"}],
            "text": "Long text",
            "html": "<p>Hi <b>there</b></p>",
        }
    )
    assert rich == {
        "image": {"url": "https://cdn.example/p.png"},
        "buttons": [{"label": "View", "url": "https://shop.example/o/1"}],
        "text": "Long text",
        "html": "<p>Hi <b>there</b></p>",
    }
    assert validate_rich_content({}) is None
    assert validate_rich_content(None) is None


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ({"buttons": [BUTTON] * 4}, "rich_content.buttons", "at most 3 buttons (got 4)"),
        (
            {"image": {"url": "http://cdn.example/p.png"}},
            "rich_content.image.url",
            "must be an https URL",
        ),
        (
            {"buttons": [BUTTON, {"label": "x", "url": "javascript:alert(1)"}]},
            "rich_content.buttons[1].url",
            "must be an http(s) URL",
        ),
        (
            {"image": {"url": "https://cdn.example/p.png", "link_url": "data:text/html,x"}},
            "rich_content.image.link_url",
            "must be an http(s) URL",
        ),
        ({"colour": "red"}, "rich_content.colour", "unknown key; expected one of"),
        ({"buttons": [{**BUTTON, "icon": "x"}]}, "rich_content.buttons[0].icon", "unknown key"),
        ({"buttons": [{"label": "", "url": BUTTON["url"]}]}, "rich_content.buttons[0].label", ""),
        ({"buttons": [{"label": "x" * 41, "url": BUTTON["url"]}]}, "rich_content.buttons[0]", ""),
        ({"buttons": "View"}, "rich_content.buttons", "must be a list"),
        ("https://x.example", "rich_content", "must be an object"),
        ({"html": 5}, "rich_content.html", "must be a string"),
    ],
)
def test_bad_rich_content_names_the_field_and_the_reason(value, field, reason):
    error = _error(value)
    assert error.field.startswith(field)
    assert reason in error.message


def test_oversize_html_is_refused_with_its_size(settings):
    settings.NP_RICH_MAX_HTML_BYTES = 100
    error = _error({"html": "<p>" + "x" * 200 + "</p>"})
    assert (error.field, error.code) == ("rich_content.html", "PAYLOAD_TOO_LARGE")
    assert error.message == "is 207 bytes; the limit is 100 bytes"


def test_the_button_limit_is_a_setting(settings):
    settings.NP_RICH_MAX_BUTTONS = 1
    assert "at most 1 buttons" in _error({"buttons": [BUTTON, BUTTON]}).message


def test_html_is_sanitised():
    rich = validate_rich_content(
        {
            "html": '<p onclick="steal()">Hi<script>alert(1)</script>'
            '<a href="javascript:alert(1)">x</a><a href="https://ok.example/">ok</a>'
            '<iframe src="https://evil.example"></iframe><style>p{}</style></p>'
        }
    )
    html = rich["html"]
    assert "script" not in html and "onclick" not in html and "javascript" not in html
    assert "iframe" not in html and "style" not in html
    assert '<a href="https://ok.example/" rel="noopener noreferrer">ok</a>' in html
    assert validate_rich_content({"html": "<script>x</script>"}) is None  # nothing left


def test_template_rich_content_renders_variables_then_validates():
    source = {
        "image": {"url": "https://cdn.example/{{ sku }}.png", "alt": "{{ name }}"},
        "buttons": [{"label": "Bid on {{ name }}", "url": "https://shop.example/i/{{ sku }}"}],
        "html": "<p>{{ name }}</p>",
    }
    rich = render_rich_template(source, {"sku": "A7", "name": "Vase <b>"})
    assert rich == {
        "image": {"url": "https://cdn.example/A7.png", "alt": "Vase <b>"},
        "buttons": [{"label": "Bid on Vase <b>", "url": "https://shop.example/i/A7"}],
        "html": "<p>Vase &lt;b&gt;</p>",  # values in HTML are escaped
    }
    with pytest.raises(TemplateError) as missing:
        render_rich_template(source, {"sku": "A7"})
    assert (missing.value.variable, missing.value.field) == ("name", "rich_content_template")
    with pytest.raises(RichContentError) as bad:
        render_rich_template(source, {"sku": "A7/../x y", "name": "n"})
    assert bad.value.field == "rich_content_template.image.url"


def test_template_rich_content_problems_at_save_time():
    assert rich_template_problems(None) == []
    assert rich_template_problems({"buttons": [{"label": "{{ a }}", "url": "{{ b }}"}]}) == []
    assert rich_template_problems([]) == ["must be an object"]
    assert rich_template_problems({"colour": "x", "buttons": [{"lable": "x"}]}) == [
        "unknown key 'colour'",
        "buttons[0]: unknown key 'lable'",
    ]
    assert rich_template_problems({"text": "{% if x %}"})  # a syntax error is named


RICH = {
    "image": {"url": "https://cdn.example/p.png", "alt": "Vase", "link_url": "https://s.example/i"},
    "buttons": [{"label": "View", "url": "https://s.example/o"}],
    "text": "Big text",
    "html": "<p>Block</p>",
}


def test_each_channel_drops_what_it_cannot_carry():
    assert [d["part"] for d in dropped_parts("sms", RICH)] == ["image", "text", "html"]
    assert [d["part"] for d in dropped_parts("push", RICH)] == ["text", "html"]
    assert dropped_parts("email", RICH) == dropped_parts("in_app", RICH) == []
    assert dropped_parts("sms", None) == []


def test_email_and_sms_forms():
    html = email_html("Hi", "<html><body><p>Hi</p></body></html>", RICH)
    assert html.startswith('<html><body><p>Hi</p><div class="np-rich">')
    assert html.endswith("</div></body></html>")
    assert '<a href="https://s.example/i"><img src="https://cdn.example/p.png" alt="Vase"' in html
    assert '<a href="https://s.example/o"' in html and ">View</a>" in html
    assert "<div><p>Block</p></div>" in html and "<p>Big text</p>" in html
    made = email_html("Line 1\nLine <2>", None, {"buttons": RICH["buttons"]})
    assert made.startswith("<html><body><p>Line 1<br>Line &lt;2&gt;</p>")
    assert email_html("Hi", None, None) is None
    assert (
        email_text("Hi", RICH)
        == "Hi\n\nBig text\n\nVase: https://s.example/i\n\nView: https://s.example/o"
    )
    assert sms_text("Hi", RICH) == "Hi\n\nView: https://s.example/o"
    assert sms_text("Hi", {"image": RICH["image"]}) == "Hi"


def test_own_urls_are_keyed():
    assert own_urls("https://a.example", RICH) == {
        "a": "https://a.example",
        "b0": "https://s.example/o",
        "i": "https://s.example/i",
    }
    assert own_urls(None, None) == {}
