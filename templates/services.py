"""Template lookup (type + channel + language with fallback) and rendering for the pipeline.

``template_key`` as callers pass it is either a notification type (``outbid``) — looked up per
channel and language — or an exact row key (``outbid.email.en``), which pins that one row.
Language fallback: the user's full locale (``pt-BR``) → its language (``pt``) → ``en``
(``rendering.select_language``).

Writes: ``template_clone_to_language`` (the admin's clone action).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import IntegrityError, transaction

from . import catalog, selectors
from .models import NotificationTemplate
from .rendering.language import select_language
from .rendering.message import RenderedMessage, render_message
from .rendering.values import Context

TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"
DEFAULT_LANGUAGE = "en"


class TemplateNotFoundError(Exception):
    code = TEMPLATE_NOT_FOUND

    def __init__(self, message: str, *, channel: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.channel = channel


def template_is_exact_key(template_key: str) -> bool:
    return template_key.count(".") == 2


def template_type_of(template_key: str) -> str:
    """The notification type a caller's ``template_key`` names (``outbid.email.en`` → outbid)."""
    return template_key.split(".", 1)[0] if template_is_exact_key(template_key) else template_key


def template_type_exists(type_name: str) -> bool:
    """A notification type the platform can send: one of the catalogue's, or the type of a
    template row (a staff-defined one)."""
    return catalog.get_entry(type_name) is not None or selectors.template_type_has_rows(
        invitation_type=type_name
    )


def template_type_list() -> list[str]:
    """Every notification type the platform can send (the catalogue's and the active
    template rows'), sorted: what a user can have a preference about."""
    return sorted(set(catalog.CATALOGUE) | set(selectors.template_types_active()))


def templates_for_channels(
    template_key: str, channels: Iterable[str], locale: str | None
) -> dict[str, NotificationTemplate]:
    """The active template per channel for ``template_key`` in the best language for ``locale``.

    One query for all channels. Raises TemplateNotFoundError naming the first channel without one.
    """
    channels = list(channels)
    if template_is_exact_key(template_key):
        return _exact_template(template_key, channels)
    rows = selectors.template_list_active(invitation_type=template_key, channels=channels)
    by_channel = _by_channel_and_language(list(rows))
    if not by_channel:
        raise TemplateNotFoundError(f"unknown template '{template_key}'")
    return {
        channel: _best_language(template_key, channel, by_channel.get(channel, {}), locale)
        for channel in channels
    }


def _exact_template(template_key: str, channels: list[str]) -> dict[str, NotificationTemplate]:
    """The one row an exact key pins, provided every channel asked for is its channel."""
    row = selectors.template_get_active(template_key=template_key)
    if row is None:
        raise TemplateNotFoundError(f"unknown template '{template_key}'")
    for channel in channels:
        if channel != row.delivery_type:
            raise TemplateNotFoundError(
                f"template '{template_key}' is for channel '{row.delivery_type}', not '{channel}'",
                channel=channel,
            )
    return {row.delivery_type: row}


def _by_channel_and_language(
    rows: Iterable[NotificationTemplate],
) -> dict[str, dict[str, NotificationTemplate]]:
    by_channel: dict[str, dict[str, NotificationTemplate]] = {}
    for row in rows:
        by_channel.setdefault(row.delivery_type, {})[row.language] = row
    return by_channel


def _best_language(
    template_key: str,
    channel: str,
    languages: Mapping[str, NotificationTemplate],
    locale: str | None,
) -> NotificationTemplate:
    language = select_language(languages, locale, DEFAULT_LANGUAGE)
    if language is None:
        raise TemplateNotFoundError(
            f"template '{template_key}' has no '{channel}' version "
            f"in '{locale or DEFAULT_LANGUAGE}' or '{DEFAULT_LANGUAGE}'",
            channel=channel,
        )
    return languages[language]


def template_render(template: NotificationTemplate, context: Context) -> RenderedMessage:
    """Render one template row; raises ``rendering.TemplateRenderError`` (code, field, variable)."""
    return render_message(
        subject=template.subject_template,
        content=template.content_template,
        html=template.html_template,
        declarations=template.template_variables,
        context=context,
    )


@transaction.atomic
def template_clone_to_language(
    *, template: NotificationTemplate, language: str
) -> NotificationTemplate | None:
    """A copy of ``template`` in ``language`` (key ``<type>.<channel>.<lang>``), inactive
    until a translator has edited it; None when that language already has the row."""
    key = NotificationTemplate.make_key(template.invitation_type, template.delivery_type, language)
    if selectors.template_variant_exists(
        invitation_type=template.invitation_type,
        delivery_type=template.delivery_type,
        language=language,
    ):
        return None
    try:
        with transaction.atomic():
            return NotificationTemplate.objects.create(
                template_key=key,
                template_name=f"{template.template_name} ({language})",
                invitation_type=template.invitation_type,
                delivery_type=template.delivery_type,
                language=language,
                subject_template=template.subject_template,
                content_template=template.content_template,
                html_template=template.html_template,
                template_variables=template.template_variables,
                provider_specific_config=template.provider_specific_config,
                # Live sends pick the best language: an untranslated copy must not win.
                is_active=False,
            )
    except IntegrityError:  # created concurrently by someone else
        return None
