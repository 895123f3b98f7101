"""Read paths of the templates app: the rows the pipeline, the API and the admin look at."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import NotificationTemplate

# The API's default order; ``id`` last so pages are stable.
TEMPLATE_ORDERING = ("invitation_type", "delivery_type", "language", "id")


def template_list() -> QuerySet[NotificationTemplate]:
    """Every template, in the API's default order."""
    return NotificationTemplate.objects.order_by(*TEMPLATE_ORDERING)


def template_get_active(*, template_key: str) -> NotificationTemplate | None:
    """The active row with this exact key (``outbid.email.en``), or None."""
    return NotificationTemplate.objects.filter(template_key=template_key, is_active=True).first()


def template_list_active(
    *, invitation_type: str, channels: Iterable[str]
) -> QuerySet[NotificationTemplate]:
    """The active rows of one notification type for these channels, every language."""
    return NotificationTemplate.objects.filter(
        invitation_type=invitation_type, delivery_type__in=channels, is_active=True
    )


def template_types_active() -> list[str]:
    """The distinct notification types of the active rows."""
    return list(
        NotificationTemplate.objects.filter(is_active=True)
        .order_by("invitation_type")
        .values_list("invitation_type", flat=True)
        .distinct()
    )


def template_type_has_rows(*, invitation_type: str) -> bool:
    """Whether any row (active or not, any channel or language) renders this type."""
    return NotificationTemplate.objects.filter(invitation_type=invitation_type).exists()


def template_variant_list(
    *, invitation_type: str, language: str = "", channel: str = ""
) -> QuerySet[NotificationTemplate]:
    """Every channel and language of one notification type, active or not, by channel then
    language; ``language``/``channel`` narrow it when given."""
    variants = NotificationTemplate.objects.filter(invitation_type=invitation_type).order_by(
        "delivery_type", "language"
    )
    if language:
        variants = variants.filter(language=language)
    if channel:
        variants = variants.filter(delivery_type=channel)
    return variants


def template_variant_exists(*, invitation_type: str, delivery_type: str, language: str) -> bool:
    """Whether the type has a row for this channel and language, by its columns or its key."""
    exists = NotificationTemplate.objects.filter(
        invitation_type=invitation_type, delivery_type=delivery_type, language=language
    ).exists()
    key = NotificationTemplate.make_key(invitation_type, delivery_type, language)
    return exists or NotificationTemplate.objects.filter(template_key=key).exists()


def template_key_taken(*, template_key: str, exclude_id: int | None = None) -> bool:
    """Whether another row (not ``exclude_id``, the one being edited) has this key."""
    clash = NotificationTemplate.objects.filter(template_key=template_key)
    if exclude_id is not None:
        clash = clash.exclude(pk=exclude_id)
    return clash.exists()
