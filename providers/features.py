"""What a provider can carry (``provider_registry.supported_features``) and what a message needs.

``supported_features`` is a JSON object of feature name -> bool. A key that is absent means
supported (the seeds only list what matters); an explicit ``false`` means the provider must
not be offered a message that needs it (``providers.routing.for_message``).

Vocabulary (what an ``OutboundMessage`` needs):

- ``html``: an email with an HTML body.
- ``attachments``: a message with ``data["attachments"]`` (non-empty).
- ``images``: a message whose ``data["rich_content"]`` has an ``image``.
- ``actions``: a push / in-app / webhook message with buttons
  (``data["rich_content"]["buttons"]``) or, on push, an action URL to open (email and SMS
  carry buttons as links in their body, so their data never holds them: they never need it).

Other keys (``receipts``, ``unicode``, ``tracking``, ...) are descriptive: no message needs them.
"""

from __future__ import annotations

from typing import Any

HTML = "html"
ATTACHMENTS = "attachments"
IMAGES = "images"
ACTIONS = "actions"

FEATURES: tuple[str, ...] = (HTML, ATTACHMENTS, IMAGES, ACTIONS)


def needed(message: Any) -> list[str]:
    """The features ``message`` (an ``OutboundMessage``) needs, in vocabulary order."""
    data: dict[str, Any] = message.data or {}
    rich = data.get("rich_content")
    rich = rich if isinstance(rich, dict) else {}
    needs: set[str] = set()
    if message.channel == "email" and message.html:
        needs.add(HTML)
    if data.get("attachments"):
        needs.add(ATTACHMENTS)
    if rich.get("image"):
        needs.add(IMAGES)
    if message.channel != "email" and (
        rich.get("buttons") or (message.channel == "push" and data.get("action_url"))
    ):
        needs.add(ACTIONS)
    return [name for name in FEATURES if name in needs]


def lacking(supported: object, needs: list[str]) -> list[str]:
    """The needed features a provider's ``supported_features`` explicitly refuses."""
    if not isinstance(supported, dict):
        return []  # null / not an object: nothing declared, everything supported
    return [name for name in needs if supported.get(name) is False]
