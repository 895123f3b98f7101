"""Channel-layer group names and topic rules.

A topic is a name clients subscribe to (``auction.<uuid>``, ``system``, any
``[a-z0-9_.-]+``). Each topic has two groups so the layer itself enforces
visibility and a consumer never has to inspect an event to decide whether its
client may see it:

* ``topic.<name>.pub``  — ``public`` events; every subscriber joins it.
* ``topic.<name>.auth`` — ``authenticated`` events; only signed-in subscribers join.

A user's private stream (``private`` events they own and ``targeted`` events that
list them) is the group ``user.<uuid>``, joined implicitly by every authenticated
connection of that user.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

# Channels allows group names of ASCII letters, digits, hyphens, underscores and
# periods, shorter than 100 characters; "topic." + ".auth" costs 11 of them.
TOPIC_RE = re.compile(r"^[a-z0-9_.-]{1,80}$")
AUCTION_TOPIC_RE = re.compile(
    r"^auction\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


def is_valid_topic(topic: object) -> bool:
    return isinstance(topic, str) and bool(TOPIC_RE.match(topic))


def normalise_topics(topics: Iterable[str]) -> list[str]:
    """Validated, de-duplicated topics in first-seen order; ValueError names the bad one."""
    seen: dict[str, None] = {}
    for topic in topics:
        if not is_valid_topic(topic):
            raise ValueError(f"invalid topic {topic!r}: expected [a-z0-9_.-]{{1,80}}")
        seen.setdefault(topic, None)
    return list(seen)


def auction_topic(auction_id: uuid.UUID | str) -> str:
    return f"auction.{auction_id}"


def auction_id_of(topic: str) -> str | None:
    match = AUCTION_TOPIC_RE.match(topic)
    return match.group(1) if match else None


def public_group(topic: str) -> str:
    return f"topic.{topic}.pub"


def auth_group(topic: str) -> str:
    return f"topic.{topic}.auth"


def user_group(user_id: uuid.UUID | str) -> str:
    return f"user.{user_id}"


def topic_groups(topic: str, *, authenticated: bool) -> list[str]:
    """The groups a subscriber to ``topic`` joins."""
    return [public_group(topic), auth_group(topic)] if authenticated else [public_group(topic)]
