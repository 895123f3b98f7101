"""The parts of ``notify_many()``'s rows that every recipient with one locale shares:
rendered once, their COPY text encoded once (see ``bulk.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notifyplatform.bulk import copy_text

from .bulk_chunk import _LocaleShare
from .bulk_store import _D_VARIABLE, _N_VARIABLE, _BulkStore
from .plan import _render_common, _Rendered
from .rows import (
    _base_delivery_metadata,
    _delivery_constants,
    _notification_fields,
    _plain_metadata,
)
from .validate import _Common

# What the ORM fills in by default for a new delivery row; COPY names every column.
_D_DEFAULTS = {
    "provider_message_id": None,
    "provider_response": None,
    "error_message": None,
    "error_code": None,
    "cost_per_message": None,
    "sent_at": None,
    "delivered_at": None,
    "failed_at": None,
}


def new_share(
    common: _Common,
    relations: dict[str, Any],
    store: _BulkStore,
    max_retries: int,
    locale: str,
    now: datetime,
) -> _LocaleShare:
    """What every recipient with ``locale`` shares: rendering, pre-encoded row parts."""
    rendered = _render_common(common, locale)
    n_values = _notification_values(common, relations, rendered, now)
    n_text = "\t".join(copy_text(n_values[name]) for name in store.n_attnames[len(_N_VARIABLE) :])
    invitation = relations["invitation"]
    share = _LocaleShare(rendered, n_values, n_text, {}, {}, {}, {})
    for channel in common.channels:
        values = {
            "invitation_id": invitation.pk if invitation is not None else None,
            **_delivery_constants(channel, expires_at=common.expires_at, max_retries=max_retries),
            **_D_DEFAULTS,
            "created_at": now,
            "updated_at": now,
        }
        share.d_values[channel] = values
        share.d_text[channel] = "\t".join(
            copy_text(values[name]) for name in store.d_attnames[len(_D_VARIABLE) :]
        )
        meta = _base_delivery_metadata(
            rendered=rendered[channel],
            type_name=common.type_name,
            category=common.category,
            priority=common.priority,
            locale=locale,
            action_url=common.action_url,
        )
        share.base_meta[channel] = meta
        share.base_meta_text[channel] = copy_text(_plain_metadata(meta, common.metadata))
    return share


def _notification_values(
    common: _Common, relations: dict[str, Any], rendered: dict[str, _Rendered], now: datetime
) -> dict[str, Any]:
    n_values = _notification_fields(
        channels=common.channels,
        rendered=rendered,
        category=common.category,
        priority=common.priority,
        context=common.context,
        metadata=common.metadata,
        type_name=common.type_name,
        scheduled_at=common.scheduled_at,
        expires_at=common.expires_at,
        action_url=common.action_url,
        action_label=common.action_label,
    )
    n_values.update(
        auction_id=relations["auction"].pk if relations["auction"] is not None else None,
        bid_id=relations["bid"].pk if relations["bid"] is not None else None,
        item_id=relations["item"].pk if relations["item"] is not None else None,
        sent_at=None,
        delivered_at=None,
        read_at=None,
        clicked_at=None,
        delivery_attempts=0,
        max_attempts=3,
        error_message=None,
        provider_response=None,
        is_read=False,
        is_archived=False,
        in_inbox=False,  # the trigger sets it when the in-app delivery goes out
        tags=None,
        created_at=now,
        updated_at=now,
    )
    return n_values
