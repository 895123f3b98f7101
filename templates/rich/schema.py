"""The ``rich_content`` schema: validate and normalise (raises ``RichContentError``).

A JSON object with only these keys (all optional; an empty object means none)::

    {
      "image":   {"url": "https://…", "alt": "…", "link_url": "https://…"},   # or "https://…"
      "buttons": [{"label": "…", "url": "https://…"}, …],   # at most NP_RICH_MAX_BUTTONS
      "text":    "a large text block",                       # at most NP_RICH_MAX_TEXT_CHARS
      "html":    "<p>an HTML block</p>"                      # at most NP_RICH_MAX_HTML_BYTES
    }

- ``image.url`` must be ``https`` (mail clients and browsers block mixed content); the
  string shorthand is normalised to ``{"url": …}``; ``alt`` at most 200 characters;
  ``link_url`` (where a click on the image goes) http(s).
- each button: ``label`` 1..40 characters, ``url`` http(s); ``javascript:``, ``data:`` and
  other schemes are refused. URLs at most 500 characters.
- ``html`` is sanitised with nh3 (Ammonia): scripts, event handlers, ``javascript:`` links
  and styles are removed; the size limit applies to what was given.
- unknown keys are refused (a typo must not be dropped silently).

Errors name the field (``rich_content.buttons[1].url``) and the reason.
"""

from __future__ import annotations

from typing import Any

import nh3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

KEYS = ("image", "buttons", "text", "html")
IMAGE_KEYS = ("url", "alt", "link_url")
BUTTON_KEYS = ("label", "url")
MAX_URL = 500
MAX_LABEL = 40
MAX_ALT = 200

_http_url = URLValidator(schemes=["http", "https"])
_https_url = URLValidator(schemes=["https"])

# What an HTML block may hold: text formatting, lists, tables, links and images (nh3 keeps
# only these, and only safe URL schemes in href/src).
_HTML_TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i",
    "img", "li", "ol", "p", "pre", "small", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_HTML_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}


class RichContentError(Exception):
    """``rich_content`` does not fit the schema: ``field`` (``rich_content.…``) and why."""

    def __init__(self, field: str, message: str, *, code: str = "VALIDATION_ERROR") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


def max_buttons() -> int:
    return int(getattr(settings, "NP_RICH_MAX_BUTTONS", 3))


def max_html_bytes() -> int:
    return int(getattr(settings, "NP_RICH_MAX_HTML_BYTES", 16384))


def max_text_chars() -> int:
    return int(getattr(settings, "NP_RICH_MAX_TEXT_CHARS", 2000))


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=_HTML_TAGS,
        attributes=_HTML_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def _url(field: str, value: object, *, https_only: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RichContentError(field, "must be a non-empty URL string")
    value = value.strip()
    if len(value) > MAX_URL:
        raise RichContentError(field, f"at most {MAX_URL} characters", code="INVALID_URL")
    try:
        (_https_url if https_only else _http_url)(value)
    except ValidationError:
        what = "an https URL" if https_only else "an http(s) URL"
        raise RichContentError(field, f"must be {what}", code="INVALID_URL") from None
    return value


def _text(field: str, value: object, limit: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RichContentError(field, "must be a string")
    if not allow_empty and not value.strip():
        raise RichContentError(field, "must not be empty")
    if len(value) > limit:
        raise RichContentError(field, f"at most {limit} characters (got {len(value)})")
    return value


def _unknown(field: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise RichContentError(
                f"{field}.{key}", f"unknown key; expected one of {', '.join(allowed)}"
            )


def _image(field: str, value: object) -> dict[str, str]:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict):
        raise RichContentError(field, "must be an object {url, alt, link_url} or an https URL")
    _unknown(field, value, IMAGE_KEYS)
    image = {"url": _url(f"{field}.url", value.get("url"), https_only=True)}
    if value.get("alt") is not None:
        image["alt"] = _text(f"{field}.alt", value["alt"], MAX_ALT, allow_empty=True)
    if value.get("link_url") is not None:
        image["link_url"] = _url(f"{field}.link_url", value["link_url"])
    return image


def _buttons(field: str, value: object) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise RichContentError(field, "must be a list of {label, url}")
    if len(value) > max_buttons():
        raise RichContentError(field, f"at most {max_buttons()} buttons (got {len(value)})")
    buttons = []
    for index, button in enumerate(value):
        at = f"{field}[{index}]"
        if not isinstance(button, dict):
            raise RichContentError(at, "must be an object {label, url}")
        _unknown(at, button, BUTTON_KEYS)
        label = _text(f"{at}.label", button.get("label", ""), MAX_LABEL).strip()
        buttons.append({"label": label, "url": _url(f"{at}.url", button.get("url"))})
    return buttons


def validate_rich_content(value: object, field: str = "rich_content") -> dict[str, Any] | None:
    """The normalised rich content (None when empty); raises ``RichContentError``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RichContentError(field, "must be an object")
    _unknown(field, value, KEYS)
    rich: dict[str, Any] = {}
    if value.get("image") is not None:
        rich["image"] = _image(f"{field}.image", value["image"])
    if value.get("buttons"):
        rich["buttons"] = _buttons(f"{field}.buttons", value["buttons"])
    if value.get("text") is not None and value["text"] != "":
        rich["text"] = _text(f"{field}.text", value["text"], max_text_chars())
    if value.get("html") is not None and value["html"] != "":
        html = value["html"]
        if not isinstance(html, str):
            raise RichContentError(f"{field}.html", "must be a string")
        size = len(html.encode())
        if size > max_html_bytes():
            raise RichContentError(
                f"{field}.html",
                f"is {size} bytes; the limit is {max_html_bytes()} bytes",
                code="PAYLOAD_TOO_LARGE",
            )
        cleaned = sanitize_html(html).strip()
        if cleaned:
            rich["html"] = cleaned
    return rich or None


def own_urls(action_url: str | None, rich: dict[str, Any] | None) -> dict[str, str]:
    """The URLs a notification may send a browser to, by key: ``a`` the action URL, ``b<N>``
    button N, ``i`` the image's link. A tracked link names one of these keys, never a URL."""
    urls: dict[str, str] = {}
    if action_url:
        urls["a"] = action_url
    rich = rich if isinstance(rich, dict) else {}
    for index, button in enumerate(rich.get("buttons") or []):
        if isinstance(button, dict) and isinstance(button.get("url"), str):
            urls[f"b{index}"] = button["url"]
    image = rich.get("image")
    if isinstance(image, dict) and isinstance(image.get("link_url"), str):
        urls["i"] = image["link_url"]
    return urls
