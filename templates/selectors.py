"""Read paths for notification templates (the API and the admin)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet

from .models import NotificationTemplate


def template_list(*, ordering: Sequence[str]) -> QuerySet[NotificationTemplate]:
    """Every template row, in ``ordering``."""
    return NotificationTemplate.objects.order_by(*ordering)


def template_variants(template: NotificationTemplate) -> QuerySet[NotificationTemplate]:
    """The rows of ``template``'s notification type (itself included), by channel, then
    language: what a preview of every variant shows."""
    return NotificationTemplate.objects.filter(invitation_type=template.invitation_type).order_by(
        "delivery_type", "language"
    )
