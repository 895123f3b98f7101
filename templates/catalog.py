"""The shipped template catalogue: notification types, their defaults and their templates.

Seed 004 lists six auction notification types with a title, a message, a priority and the
channels they go out on; the invitation types (story_collaboration, news_feed,
roleplay_invitation) come from seed 000. This module keeps that as *data*:

* ``CATALOGUE[type]`` — ``category``, ``priority``, default ``channels``, the variable
  declarations and the title/message sources (seed 004's ``{var}`` converted to ``{{ var }}``).
* ``catalogue_rows()`` — one ``notification_templates`` row per (type, channel, language), for
  every channel (not only the default ones), so a caller may ask for e.g. ``outbid`` by SMS or
  webhook explicitly. The data migration ``0002_catalog`` writes these rows; the pipeline reads
  ``default_channels()`` / ``default_priority()`` / ``default_category()`` from here.

The database rows are the source of truth for *content* (admins may edit them); this module is
the source of truth for the per-type defaults, which are product decisions, not content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from notifyplatform.choices import Channel

ALL_CHANNELS: tuple[str, ...] = tuple(Channel.values)


@dataclass(frozen=True)
class CatalogueEntry:
    category: str
    priority: str
    channels: tuple[str, ...]
    title: str
    message: str
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    action_label: str | None = None


def _var(description: str, example: Any) -> dict[str, Any]:
    return {"required": True, "description": description, "example": example}


_ACTION_URL = {
    "required": False,
    "description": "Where the message's button/link points",
    "default": "",
    "example": "https://example.test/auctions/1",
}

_INVITER_VARS = {
    "invitee_name": _var("Who was invited (name, else the address given)", "Bo"),
    "content_title": _var("What they were invited to", "The Lighthouse Keeper"),
    "invitation_type": _var("The kind of invitation, in words", "story collaboration"),
}

CATALOGUE: dict[str, CatalogueEntry] = {
    # --- seed 004: English auction events -----------------------------------------------
    "new_bid": CatalogueEntry(
        category="bid",
        priority="normal",
        channels=("in_app", "push"),
        title="New bid on {{ auction_title }}",
        message="{{ bidder }} bid {{ amount }} on {{ item_title }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "bidder": _var("Display name of the bidder", "Alice"),
            "amount": _var("The bid amount, formatted with currency", "$150.00"),
            "item_title": _var("The item's title", "1960 Omega Seamaster"),
            "action_url": _ACTION_URL,
        },
        action_label="View auction",
    ),
    "outbid": CatalogueEntry(
        category="bid",
        priority="high",
        channels=("in_app", "push", "email"),
        title="You've been outbid",
        message="Someone bid higher than your {{ amount }} bid",
        variables={
            "amount": _var("Your (now beaten) bid amount", "$140.00"),
            "action_url": _ACTION_URL,
        },
        action_label="Bid again",
    ),
    # --- seed 004: penny auction events -------------------------------------------------
    "bid_placed": CatalogueEntry(
        category="bid",
        priority="normal",
        channels=("in_app",),
        title="Bid placed successfully",
        message="Your bid extended {{ auction_title }} by {{ extension_seconds }}s",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "extension_seconds": _var("Seconds the bid added to the clock", 15),
            "action_url": _ACTION_URL,
        },
    ),
    "auction_ending": CatalogueEntry(
        category="auction",
        priority="urgent",
        channels=("in_app", "push"),
        title="Auction ending soon!",
        message="{{ auction_title }} ends in {{ time_remaining }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "time_remaining": _var("Human-readable time left", "5 minutes"),
            "action_url": _ACTION_URL,
        },
        action_label="Bid now",
    ),
    # --- seed 004: system-wide events ---------------------------------------------------
    "auction_started": CatalogueEntry(
        category="auction",
        priority="normal",
        channels=("in_app", "email"),
        title="Auction started",
        message="{{ auction_title }} is now live",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "action_url": _ACTION_URL,
        },
        action_label="View auction",
    ),
    "auction_ended": CatalogueEntry(
        category="auction",
        priority="normal",
        channels=("in_app", "email"),
        title="Auction completed",
        message="{{ auction_title }} ended. Winner: {{ winner }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "winner": _var("Display name of the winner", "Bob"),
            "action_url": _ACTION_URL,
        },
        action_label="See results",
    ),
    # --- auction types beyond seed 004 (issue 19): one type per thing a rule tells -------
    "bid_confirmed": CatalogueEntry(
        category="bid",
        priority="normal",
        channels=("in_app",),
        title="Bid placed successfully",
        message="Your bid of {{ amount }} on {{ auction_title }} is in",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "amount": _var("Your bid amount, formatted with currency", "150.00 USD"),
            "action_url": _ACTION_URL,
        },
        action_label="View auction",
    ),
    "underbid": CatalogueEntry(
        category="bid",
        priority="high",
        channels=("in_app", "push", "email"),
        title="You've been underbid",
        message="Someone offered less than your {{ amount }} on {{ auction_title }}",
        variables={
            "auction_title": _var("The auction's title", "Office cleaning contract"),
            "amount": _var("Your (now beaten) offer", "4800.00 USD"),
            "action_url": _ACTION_URL,
        },
        action_label="Offer again",
    ),
    "proxy_bid_exceeded": CatalogueEntry(
        category="bid",
        priority="high",
        channels=("in_app", "push", "email"),
        title="Your maximum bid was exceeded",
        message="Someone bid over your maximum of {{ amount }} on {{ auction_title }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "amount": _var("Your maximum (proxy) bid", "200.00 USD"),
            "action_url": _ACTION_URL,
        },
        action_label="Bid again",
    ),
    "auction_price_dropped": CatalogueEntry(
        category="auction",
        priority="normal",
        channels=("in_app",),
        title="Price dropped to {{ amount }}",
        message="{{ auction_title }} now costs {{ amount }}: the first bid at this price wins",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "amount": _var("The clock price now", "120.00 USD"),
            "action_url": _ACTION_URL,
        },
        action_label="Buy at this price",
    ),
    "auction_dropped_out": CatalogueEntry(
        category="bid",
        priority="normal",
        channels=("in_app",),
        title="You dropped out",
        message="You left {{ auction_title }} at {{ amount }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "amount": _var("The clock price when you left", "180.00 USD"),
            "action_url": _ACTION_URL,
        },
        action_label="View auction",
    ),
    "auction_drawn": CatalogueEntry(
        category="auction",
        priority="high",
        channels=("in_app", "email"),
        title="You were drawn!",
        message="Your entry won the draw for {{ auction_title }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "action_url": _ACTION_URL,
        },
        action_label="See the draw",
    ),
    "auction_payment_due": CatalogueEntry(
        category="auction",
        priority="high",
        channels=("in_app", "email"),
        title="You must pay {{ amount }}",
        message="{{ auction_title }} has ended: you owe {{ amount }} ({{ reason }})",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "amount": _var("What you owe", "140.00 USD"),
            "reason": _var("Why", "the All-pay rules"),
            "action_url": _ACTION_URL,
        },
        action_label="Pay now",
    ),
    "auction_cancelled": CatalogueEntry(
        category="auction",
        priority="normal",
        channels=("in_app", "email"),
        title="Auction cancelled",
        message="{{ auction_title }} was cancelled: {{ reason }}",
        variables={
            "auction_title": _var("The auction's title", "Vintage Watch Collection"),
            "reason": _var("Why", "cancelled by the seller"),
            "action_url": _ACTION_URL,
        },
        action_label="View auction",
    ),
    # --- seed 000: invitations ----------------------------------------------------------
    "story_collaboration": CatalogueEntry(
        category="invitation",
        priority="normal",
        channels=("email", "in_app"),
        title="{{ inviter_name }} invited you to write {{ story_title }}",
        message=(
            "{{ inviter_name }} would like you to collaborate on the story "
            '"{{ story_title }}". Accept the invitation: {{ invitation_url }}'
        ),
        variables={
            "inviter_name": _var("Who sent the invitation", "Alice"),
            "story_title": _var("The story's title", "The Lighthouse Keeper"),
            "invitation_url": _var("Accept/decline link", "https://example.test/i/abc123"),
        },
        action_label="Open invitation",
    ),
    "news_feed": CatalogueEntry(
        category="invitation",
        priority="normal",
        channels=("email", "in_app"),
        title="{{ inviter_name }} shared a story with you: {{ article_title }}",
        message=(
            '{{ inviter_name }} thinks you\'ll enjoy "{{ article_title }}". '
            "Read and narrate it: {{ invitation_url }}"
        ),
        variables={
            "inviter_name": _var("Who sent the invitation", "Alice"),
            "article_title": _var("The news article's title", "City opens new library"),
            "invitation_url": _var("Accept/decline link", "https://example.test/i/def456"),
        },
        action_label="Read now",
    ),
    "roleplay_invitation": CatalogueEntry(
        category="invitation",
        priority="normal",
        channels=("email", "in_app"),
        title="{{ inviter_name }} cast you as {{ character_name }}",
        message=(
            "{{ inviter_name }} invited you to play {{ character_name }} in "
            '"{{ roleplay_title }}". Join the roleplay: {{ invitation_url }}'
        ),
        variables={
            "inviter_name": _var("Who sent the invitation", "Alice"),
            "character_name": _var("The role offered", "Captain Reyes"),
            "roleplay_title": _var("The roleplay's title", "Mutiny on the Starlight"),
            "invitation_url": _var("Accept/decline link", "https://example.test/i/ghi789"),
        },
        action_label="Join",
    ),
    # --- the inviter hears how an invitation ended ---------------------------------------
    "invitation_accepted": CatalogueEntry(
        category="invitation",
        priority="normal",
        channels=("in_app", "email"),
        title="{{ invitee_name }} accepted your invitation",
        message="{{ invitee_name }} accepted your {{ invitation_type }} invitation to {{ content_title }}.",
        variables=_INVITER_VARS,
    ),
    "invitation_declined": CatalogueEntry(
        category="invitation",
        priority="normal",
        channels=("in_app", "email"),
        title="{{ invitee_name }} declined your invitation",
        message="{{ invitee_name }} declined your {{ invitation_type }} invitation to {{ content_title }}.",
        variables=_INVITER_VARS,
    ),
    "invitation_expired": CatalogueEntry(
        category="invitation",
        priority="low",
        channels=("in_app",),
        title="Your invitation to {{ invitee_name }} expired",
        message="{{ invitee_name }} did not answer your {{ invitation_type }} invitation to {{ content_title }} in time.",
        variables=_INVITER_VARS,
    ),
}

# A notification sent with a literal title/message and no template goes in-app only unless
# the caller names channels: it is the cheapest channel and never reaches a stranger.
FREEFORM_CHANNELS: tuple[str, ...] = ("in_app",)
DEFAULT_CATEGORY = "system"
DEFAULT_PRIORITY = "normal"

_EMAIL_HTML = (
    '<!doctype html><html><body style="font-family:sans-serif">'
    "<h1>{title}</h1><p>{message}</p>{action}"
    "</body></html>"
)


def _html(entry: CatalogueEntry) -> str:
    action = ""
    if entry.action_label:
        href = "{{ invitation_url }}" if "invitation_url" in entry.variables else "{{ action_url }}"
        action = f'<p><a href="{href}">{entry.action_label}</a></p>'
    return _EMAIL_HTML.format(title=entry.title, message=entry.message, action=action)


def channel_sources(entry: CatalogueEntry, channel: str) -> dict[str, str | None]:
    """Subject/content/html sources of one type's template for one channel."""
    if channel == Channel.EMAIL:
        return {"subject": entry.title, "content": entry.message, "html": _html(entry)}
    if channel == Channel.SMS:
        # One line, no subject: an SMS has none, and every character is billed.
        return {"subject": None, "content": f"{entry.title}: {entry.message}", "html": None}
    return {"subject": entry.title, "content": entry.message, "html": None}


def catalogue_rows(language: str = "en") -> list[dict[str, Any]]:
    """Field values for every shipped ``notification_templates`` row."""
    return [
        _row(type_name, entry, channel, language)
        for type_name, entry in CATALOGUE.items()
        for channel in ALL_CHANNELS
    ]


def _row(type_name: str, entry: CatalogueEntry, channel: str, language: str) -> dict[str, Any]:
    sources = channel_sources(entry, channel)
    return {
        "template_key": f"{type_name}.{channel}.{language}",
        "template_name": f"{type_name.replace('_', ' ').capitalize()} ({channel})",
        "invitation_type": type_name,
        "delivery_type": channel,
        "language": language,
        "subject_template": sources["subject"],
        "content_template": sources["content"],
        "html_template": sources["html"],
        "template_variables": entry.variables,
        "provider_specific_config": {
            "category": entry.category,
            "priority": entry.priority,
            "action_label": entry.action_label,
        },
        "is_active": True,
    }


def get_entry(type_name: str) -> CatalogueEntry | None:
    return CATALOGUE.get(type_name)


def default_channels(type_name: str | None) -> tuple[str, ...]:
    entry = CATALOGUE.get(type_name or "")
    return entry.channels if entry else FREEFORM_CHANNELS


def default_priority(type_name: str | None) -> str:
    entry = CATALOGUE.get(type_name or "")
    return entry.priority if entry else DEFAULT_PRIORITY


def default_category(type_name: str | None) -> str:
    entry = CATALOGUE.get(type_name or "")
    return entry.category if entry else DEFAULT_CATEGORY
