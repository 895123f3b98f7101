"""Compose a delivery's body at send time: its channel's form of the rich content
(``templates.rich.channels``) and its tracked links (``deliveries/bodylinks.py``).

Tracking applies when the delivery belongs to a notification (a tracked link names one),
``NP_TRACK_LINKS`` is on and the template did not turn it off (``track_links`` false,
recorded as ``delivery_metadata["track_links"]`` when the notification was composed).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from templates.rich import data_rich, email_html, email_text, sms_text

from ...bodylinks import rewrite_html, rewrite_text, tracked_urls


@dataclass
class Composed:
    text: str
    html: str | None
    rich: dict[str, Any] | None  # OutboundMessage.data["rich_content"] (None: nothing)
    tracked_action_url: str | None


def tracking_on(meta: dict[str, Any], notification_id: Any) -> bool:
    return bool(
        notification_id is not None
        and getattr(settings, "NP_TRACK_LINKS", True)
        and meta.get("track_links", True) is not False
    )


def compose(channel: str, meta: dict[str, Any], notification_id: Any, delivery_id: int) -> Composed:
    rendered = meta.get("message") or {}
    text: str = rendered.get("text") or ""
    html: str | None = rendered.get("html")
    rich = meta.get("rich_content") if isinstance(meta.get("rich_content"), dict) else None
    action_url = meta.get("action_url")
    if rich and channel == "email":
        text, html = email_text(text, rich), email_html(text, html, rich)
    elif rich and channel == "sms":
        text = sms_text(text, rich)
    carried = copy.deepcopy(data_rich(channel, rich))
    if not tracking_on(meta, notification_id):
        return Composed(text, html, carried, None)
    mapping = tracked_urls(notification_id, delivery_id, action_url, rich)
    by_key = {key: link for key, link in mapping.values()}
    if carried:
        for index, button in enumerate(carried.get("buttons") or []):
            button["tracked_url"] = _tracked(mapping, button["url"], by_key.get(f"b{index}"))
        image = carried.get("image")
        if isinstance(image, dict) and image.get("link_url"):
            image["tracked_link_url"] = _tracked(mapping, image["link_url"], by_key.get("i"))
    return Composed(
        rewrite_text(text, mapping),
        rewrite_html(html, mapping),
        carried,
        mapping[action_url][1] if action_url in mapping else None,
    )


def _tracked(mapping: dict[str, tuple[str, str]], url: str, fallback: str | None) -> str | None:
    found = mapping.get(url)
    return found[1] if found else fallback
