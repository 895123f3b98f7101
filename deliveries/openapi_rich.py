"""OpenAPI schemas of ``rich_content`` (README "Rich content"; the rules themselves are in
``templates/rich/schema.py``): what a request may send, and what a notification shows."""

from __future__ import annotations

from typing import Any

_URL = {"type": "string", "format": "uri", "maxLength": 500}
_NULLABLE_URL = {**_URL, "nullable": True}


def _obj(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


RICH_CONTENT_REQUEST: dict[str, Any] = _obj(
    {
        "image": {
            "description": "https only: the URL, or {url, alt, link_url}",
            "nullable": True,
            "oneOf": [
                _URL,
                _obj(
                    {
                        "url": _URL,
                        "alt": {"type": "string", "maxLength": 200, "nullable": True},
                        "link_url": {**_NULLABLE_URL, "description": "where the image leads"},
                    },
                    ["url"],
                    additionalProperties=False,
                ),
            ],
        },
        "buttons": {
            "type": "array",
            "nullable": True,
            "maxItems": 3,
            "description": "at most NP_RICH_MAX_BUTTONS (default 3); http(s) URLs only",
            "items": _obj(
                {"label": {"type": "string", "minLength": 1, "maxLength": 40}, "url": _URL},
                ["label", "url"],
                additionalProperties=False,
            ),
        },
        "text": {
            "type": "string",
            "nullable": True,
            "maxLength": 2000,
            "description": "a large text block (NP_RICH_MAX_TEXT_CHARS, default 2000)",
        },
        "html": {
            "type": "string",
            "nullable": True,
            "description": "an HTML block, sanitised (nh3); at most NP_RICH_MAX_HTML_BYTES "
            "(default 16384) bytes",
        },
    },
    [],
    nullable=True,
    additionalProperties=False,
    description="Image, buttons, text and HTML shown with the notification; every key "
    "optional, no other key allowed",
)

RICH_CONTENT_RESPONSE: dict[str, Any] = _obj(
    {
        "image": _obj(
            {
                "url": {"type": "string"},
                "alt": {"type": "string"},
                "link_url": {"type": "string"},
                "tracked_link_url": {"type": "string", "description": "link_url, tracked"},
            },
            ["url"],
        ),
        "buttons": {
            "type": "array",
            "items": _obj(
                {
                    "label": {"type": "string"},
                    "url": {"type": "string"},
                    "tracked_url": {"type": "string", "description": "url as a tracked link"},
                },
                ["label", "url", "tracked_url"],
            ),
        },
        "text": {"type": "string"},
        "html": {"type": "string"},
    },
    [],
    nullable=True,
    description="Image, buttons, text and HTML (null: none); each button with its "
    "tracked_url, a linked image with its tracked_link_url",
)
