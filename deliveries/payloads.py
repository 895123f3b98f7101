"""The JSON form of an inbox notification, one for the API and the real-time event alike:
``NotificationSerializer`` (the API's notification fields) and the payload builders the
in-app sender uses (``inbox_payload``, and ``inbox_payload_rows`` for many at once).

The notification's own URLs written in its ``message`` (action URL, buttons, image link)
are shown as its tracked links, as in an email's text (``bodylinks``), unless
``NP_TRACK_LINKS`` is off or its template's ``track_links`` is false. Only a message that
contains one of its own URLs costs anything (the template's flag is read for those only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from templates.models import NotificationTemplate
from templates.rich import own_urls

from .bodylinks import rewrite_text, tracked_urls
from .links import tracked_action_url
from .models import Notification
from .openapi_rich import RICH_CONTENT_REQUEST, RICH_CONTENT_RESPONSE

_TRACKED = "tracked_action_url"
_RICH = "rich_content"
_MESSAGE = "message"


def _links_own_url(message: Any, action_url: str | None, rich: Any) -> bool:
    """Whether ``message`` contains one of the notification's own URLs (cheap: most don't)."""
    if not isinstance(message, str) or "://" not in message:
        return False
    if not getattr(settings, "NP_TRACK_LINKS", True):
        return False
    return any(url in message for url in own_urls(action_url, rich).values())


def _tracked_message(notification_id: Any, message: str, action_url: str | None, rich: Any) -> str:
    return rewrite_text(message, tracked_urls(notification_id, None, action_url, rich))


def _templates_tracking_off(template_ids: Iterable[Any]) -> set[Any]:
    wanted = {t for t in template_ids if t is not None}
    if not wanted:
        return set()
    return set(
        NotificationTemplate.objects.filter(pk__in=wanted, track_links=False).values_list(
            "pk", flat=True
        )
    )


def _tracked_url(notification_id: Any, action_url: str | None) -> str | None:
    return tracked_action_url(notification_id) if action_url else None


def _tracked_rich(notification_id: Any, rich: Any) -> Any:
    """The stored rich content, each button with its ``tracked_url`` and a linked image with
    its ``tracked_link_url`` (the raw URLs stay: a client may open them itself)."""
    if not isinstance(rich, dict):
        return rich
    shown = dict(rich)
    if isinstance(rich.get("buttons"), list):
        shown["buttons"] = [
            {**b, "tracked_url": tracked_action_url(notification_id, None, f"b{i}")}
            if isinstance(b, dict)
            else b
            for i, b in enumerate(rich["buttons"])
        ]
    image = rich.get("image")
    if isinstance(image, dict) and image.get("link_url"):
        shown["image"] = {
            **image,
            "tracked_link_url": tracked_action_url(notification_id, None, "i"),
        }
    return shown


@extend_schema_field(RICH_CONTENT_REQUEST)
class RichContentField(serializers.JSONField):
    """``rich_content`` in and out (validated by ``templates.rich.validate_rich_content``)."""


class NotificationSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(read_only=True)
    rich_content = serializers.SerializerMethodField(
        help_text="Image, buttons, text and HTML shown with the notification (null: none); "
        "each button has a tracked_url, a linked image a tracked_link_url."
    )
    message = serializers.CharField(
        read_only=True,
        help_text="The message; the notification's own URLs in it (action URL, buttons, "
        "image link) are shown as tracked links unless link tracking is off.",
    )
    tracked_action_url = serializers.SerializerMethodField(
        help_text="The action URL as a signed tracked link on this host (null without an "
        "action_url): following it records the click and redirects to action_url."
    )

    class Meta:
        model = Notification
        fields = [
            "id",
            "user_id",
            "event_type",
            "notification_type",
            "category",
            "priority",
            "title",
            "message",
            "rich_content",
            "action_url",
            "tracked_action_url",
            "action_label",
            "delivery_channels",
            "status",
            "is_read",
            "is_archived",
            "read_at",
            "sent_at",
            "scheduled_at",
            "expires_at",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields

    def get_tracked_action_url(self, obj: Notification) -> str | None:
        return _tracked_url(obj.pk, obj.action_url)

    @extend_schema_field(RICH_CONTENT_RESPONSE)
    def get_rich_content(self, obj: Notification) -> Any:
        return _tracked_rich(obj.pk, obj.rich_content)

    def to_representation(self, instance: Notification) -> dict[str, Any]:
        data = super().to_representation(instance)
        message = data.get(_MESSAGE)
        if (
            isinstance(message, str)
            and _links_own_url(message, instance.action_url, instance.rich_content)
            and not _templates_tracking_off([instance.template_id])
        ):
            data[_MESSAGE] = _tracked_message(
                instance.pk, message, instance.action_url, instance.rich_content
            )
        return data


def inbox_payload(notification: Notification) -> dict[str, Any]:
    """JSON-ready form of an inbox notification (API and real-time event alike)."""
    return dict(NotificationSerializer(notification).data)


_inbox_fields: list[tuple[str, str, Any]] | None = None


def _inbox_field_list() -> list[tuple[str, str, Any]]:
    """(key, source, field) of ``NotificationSerializer``, built once per process: a
    serializer instance deep-copies its declared fields, which is most of its ~1 ms."""
    global _inbox_fields
    if _inbox_fields is None:
        fields = NotificationSerializer().fields
        _inbox_fields = [(name, str(field.source), field) for name, field in fields.items()]
    return _inbox_fields


def inbox_payload_rows(
    notification_ids: Iterable[Any], *, columns: Sequence[str] = ()
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``inbox_payload`` of many notifications, read with ONE query: the in-app sender
    publishes hundreds at once. Returns (row, payload) pairs; ``row`` holds the payload's
    columns plus ``columns``. The serializer's own fields turn each column into its JSON
    form (so each payload is ``inbox_payload``'s, key for key), without building a
    serializer and its fields per row (`tracked_action_url` is signed from `id` and
    `action_url`). Ids not found are left out."""
    fields = _inbox_field_list()
    sources = list(
        dict.fromkeys(
            [s for n, s, _ in fields if n not in (_TRACKED, _RICH)]
            + ["id", "action_url", "rich_content", "template_id", *columns]
        )
    )
    rows = list(
        Notification.objects.filter(pk__in=list(notification_ids)).order_by().values(*sources)
    )
    linking = [r for r in rows if _links_own_url(r[_MESSAGE], r["action_url"], r["rich_content"])]
    if linking:  # one query for the templates of those rows only
        off = _templates_tracking_off(r["template_id"] for r in linking)
        for r in linking:
            if r["template_id"] not in off:
                r[_MESSAGE] = _tracked_message(
                    r["id"], r[_MESSAGE], r["action_url"], r["rich_content"]
                )
    return [
        (
            row,
            {
                name: _tracked_url(row["id"], row["action_url"])
                if name == _TRACKED
                else _tracked_rich(row["id"], row["rich_content"])
                if name == _RICH
                else None
                if row[source] is None
                else field.to_representation(row[source])
                for name, source, field in fields
            },
        )
        for row in rows
    ]


def inbox_payloads(notification_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    """``inbox_payload`` of many notifications by id (one query; see ``inbox_payload_rows``)."""
    return {row["id"]: payload for row, payload in inbox_payload_rows(notification_ids)}
