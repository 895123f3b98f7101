"""Rich content per channel: what each channel carries, what it drops, and the email/SMS
forms (pure functions; URLs are left as given, tracking is the sender's job).

| part    | in_app | push            | email                     | sms                  | webhook |
|---------|--------|-----------------|---------------------------|----------------------|---------|
| image   | yes    | yes (image)     | ``<img>`` (linked)        | dropped              | yes     |
| buttons | yes    | yes (actions)   | links in HTML and text    | "label: url" lines   | yes     |
| text    | yes    | dropped         | a paragraph / text block  | dropped              | yes     |
| html    | yes    | dropped         | the HTML part             | dropped              | yes     |
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

PARTS = ("image", "buttons", "text", "html")

# channel -> parts it cannot carry, with the reason recorded in the delivery's trace
_DROPS: dict[str, dict[str, str]] = {
    "sms": {
        "image": "SMS cannot show images",
        "text": "SMS carries the message only (a large text block would split into many parts)",
        "html": "SMS is plain text",
    },
    "push": {
        "text": "a push notification shows the title and body only",
        "html": "a push notification cannot show HTML",
    },
}
# channel -> parts carried in OutboundMessage.data["rich_content"] (what routing's
# ``images``/``actions`` features look at); email and SMS carry theirs in the body
_IN_DATA: dict[str, tuple[str, ...]] = {
    "push": ("image", "buttons"),
    "in_app": PARTS,
    "webhook": PARTS,
    "email": ("image",),
}

_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_BUTTON_STYLE = (
    "display:inline-block;margin:4px 8px 4px 0;padding:10px 16px;border-radius:4px;"
    "background:#1a73e8;color:#ffffff;text-decoration:none;font-weight:bold"
)


def dropped_parts(channel: str, rich: dict[str, Any] | None) -> list[dict[str, str]]:
    """The parts of ``rich`` that ``channel`` cannot carry: [{"part", "reason"}]."""
    if not rich:
        return []
    drops = _DROPS.get(channel, {})
    return [
        {"part": part, "reason": drops[part]} for part in PARTS if part in rich and part in drops
    ]


def data_rich(channel: str, rich: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of ``rich`` a channel's message carries as data (None: nothing)."""
    if not rich:
        return None
    carried = {k: v for k, v in rich.items() if k in _IN_DATA.get(channel, ())}
    return carried or None


def button_lines(rich: dict[str, Any] | None) -> str:
    """Buttons as ``label: url`` lines (SMS and the text part of an email)."""
    return "\n".join(f"{b['label']}: {b['url']}" for b in (rich or {}).get("buttons") or [])


def sms_text(text: str, rich: dict[str, Any] | None) -> str:
    lines = button_lines(rich)
    return f"{text}\n\n{lines}" if lines else text


def email_text(text: str, rich: dict[str, Any] | None) -> str:
    rich = rich or {}
    parts = [text]
    if rich.get("text"):
        parts.append(rich["text"])
    image = rich.get("image")
    if image and image.get("link_url"):
        parts.append(f"{image.get('alt') or 'Image'}: {image['link_url']}")
    if rich.get("buttons"):
        parts.append(button_lines(rich))
    return "\n\n".join(p for p in parts if p)


def _rich_block(rich: dict[str, Any]) -> str:
    html: list[str] = []
    image = rich.get("image")
    if image:
        img = (
            f'<img src="{escape(image["url"])}" alt="{escape(image.get("alt") or "")}" '
            'style="max-width:100%;height:auto;display:block">'
        )
        if image.get("link_url"):
            img = f'<a href="{escape(image["link_url"])}">{img}</a>'
        html.append(f"<p>{img}</p>")
    if rich.get("text"):
        html.append("<p>" + escape(rich["text"]).replace("\n", "<br>") + "</p>")
    if rich.get("html"):
        html.append(f"<div>{rich['html']}</div>")  # sanitised when it was validated
    if rich.get("buttons"):
        links = "".join(
            f'<a href="{escape(b["url"])}" style="{_BUTTON_STYLE}">{escape(b["label"])}</a>'
            for b in rich["buttons"]
        )
        html.append(f'<p class="np-buttons">{links}</p>')
    return '<div class="np-rich">' + "".join(html) + "</div>"


def email_html(text: str, html: str | None, rich: dict[str, Any] | None) -> str | None:
    """The HTML part with the rich block (before ``</body>``, else at the end); a text-only
    email gets an HTML part made from its text when it has rich content to show."""
    if not rich:
        return html
    block = _rich_block(rich)
    if html is None:
        body = escape(text).replace("\n", "<br>")
        return f"<html><body><p>{body}</p>{block}</body></html>"
    closes = list(_BODY_CLOSE.finditer(html))
    if not closes:
        return html + block
    at = closes[-1].start()  # the last </body>
    return html[:at] + block + html[at:]
