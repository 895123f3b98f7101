"""Tracked links inside message bodies: the notification's own URLs (action URL, rich-content
buttons and image link: ``templates.rich.own_urls``) become its signed tracked links.

Only an exact own URL is rewritten, each to a link naming it by key (``links.click_token``):
a link to any other URL, on any host, is left exactly as written, so the click endpoint can
never be made to redirect somewhere the notification does not itself point. In HTML only
``href`` attributes are rewritten (never ``src``: images load as given); in text every URL
(minus trailing punctuation) that is an own URL.
"""

from __future__ import annotations

import re
from html import escape, unescape
from typing import Any

from templates.rich import own_urls

from .links import tracked_action_url

_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+""")
_TRAILING = ".,;:!?)]}'"


def tracked_urls(
    notification_id: Any, delivery_id: int | None, action_url: str | None, rich: Any
) -> dict[str, tuple[str, str]]:
    """own URL -> (key, its tracked link), the first key winning for a URL given twice."""
    mapping: dict[str, tuple[str, str]] = {}
    for key, url in own_urls(action_url, rich).items():
        if url not in mapping:
            mapping[url] = (key, tracked_action_url(notification_id, delivery_id, key))
    return mapping


def rewrite_text(text: str, mapping: dict[str, tuple[str, str]]) -> str:
    if not mapping or not text:
        return text

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url not in mapping and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        found = mapping.get(url)
        return found[1] + tail if found else match.group(0)

    return _TEXT_URL.sub(one, text)


def rewrite_html(html: str | None, mapping: dict[str, tuple[str, str]]) -> str | None:
    if not mapping or not html:
        return html

    def one(match: re.Match[str]) -> str:
        found = mapping.get(unescape(match.group(3)).strip())
        if found is None:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{escape(found[1])}{match.group(2)}"

    return _HREF.sub(one, html)
