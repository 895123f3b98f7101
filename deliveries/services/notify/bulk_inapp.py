"""The in-app fast path of ``notify_many()`` (``inapp_sent``): the due in-app rows written
as sent, here as pre-encoded COPY text."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from notifyplatform.bulk import copy_text
from notifyplatform.choices import Channel

from .bulk_chunk import _LocaleShare
from .bulk_store import _D_VARIABLE, _N_VARIABLE, _BulkStore
from .inapp_sent import InAppSentNow

# stand-ins in the pre-encoded COPY text, replaced per row: plain letters and digits, which
# JSON and COPY leave as they are (and so do the ids put in their place)
_DID = f"npdid{uuid.uuid4().hex}"
_UID = f"npuid{uuid.uuid4().hex}"


class InAppFastPath(InAppSentNow):
    """Per ``notify_many()`` call: ``InAppSentNow`` and the COPY text of the sent rows."""

    def __init__(self, store: _BulkStore, channels: list[str], expires_at: datetime | None):
        super().__init__(channels, expires_at)
        self.store = store
        self._d_text: dict[tuple[int, int], str] = {}
        self._n_text: dict[tuple[int, int, bool], str] = {}
        self.published: list[tuple[int, Any]] = []  # (delivery id, notification id)

    # -- COPY text ----------------------------------------------------------------------
    def delivery_tail(
        self, share: _LocaleShare, region: str | None, delivery_id: int, user_id: Any
    ) -> str:
        """The COPY text after the variable columns of a sent in-app row."""
        provider = self.provider(region)
        assert provider is not None
        key = (id(share), provider.pk)
        template = self._d_text.get(key)
        if template is None:
            now = share.d_values[Channel.IN_APP]["created_at"]
            values = {
                **share.d_values[Channel.IN_APP],
                **self.delivery_values(region, _DID, _UID, now),
            }
            template = self._d_text[key] = "\t".join(
                copy_text(values[name]) for name in self.store.d_attnames[len(_D_VARIABLE) :]
            )
        return template.replace(_DID, str(delivery_id)).replace(_UID, str(user_id))

    def notification_tail(
        self, share: _LocaleShare, region: str | None, user_id: Any, sent: bool
    ) -> str:
        """The COPY text after the variable columns of its notification; the delivery id in
        it is filled in by :meth:`fill_delivery_id` once ids are allocated."""
        provider = self.provider(region)
        assert provider is not None
        key = (id(share), provider.pk, sent)
        template = self._n_text.get(key)
        if template is None:
            now = share.n_values["created_at"]
            values = {
                **share.n_values,
                **self.notification_values(region, _DID, _UID, sent, now),
            }
            template = self._n_text[key] = "\t".join(
                copy_text(values[name]) for name in self.store.n_attnames[len(_N_VARIABLE) :]
            )
        return template.replace(_UID, str(user_id))

    @staticmethod
    def fill_delivery_id(line: str, delivery_id: int) -> str:
        return line.replace(_DID, str(delivery_id))
