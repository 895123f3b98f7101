"""Rich content on push (``data["rich_content"]``: ``image`` and ``buttons``, already in
the push form the sender made; see ``templates.rich.channels``)."""

from __future__ import annotations

from typing import Any


def rich_push_fields(rich: object) -> dict[str, Any]:
    """Web Push (Notifications API) fields: ``image``, ``actions`` ([{action, title}]) and
    ``action_urls`` (action -> the URL a service worker opens; the tracked link if any)."""
    if not isinstance(rich, dict):
        return {}
    fields: dict[str, Any] = {}
    image = rich.get("image")
    if isinstance(image, dict) and image.get("url"):
        fields["image"] = image["url"]
    buttons = [b for b in rich.get("buttons") or [] if isinstance(b, dict)]
    if buttons:
        fields["actions"] = [
            {"action": f"b{index}", "title": b.get("label", "")} for index, b in enumerate(buttons)
        ]
        fields["action_urls"] = {
            f"b{index}": b.get("tracked_url") or b.get("url") for index, b in enumerate(buttons)
        }
    return fields


def fcm_image(rich: object) -> str | None:
    """The image URL FCM shows in the notification (``notification.image``)."""
    image = rich.get("image") if isinstance(rich, dict) else None
    return image.get("url") if isinstance(image, dict) else None
