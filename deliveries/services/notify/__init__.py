"""``notify()``: compose one notification and its deliveries, in one transaction.

Steps: idempotency check → validate input (``validate``) → address each channel (``address``)
→ pick and render a template per channel and language, apply preferences (``plan``) → build
the ``notifications`` row and one ``notification_deliveries`` row per channel (``rows``, shared
by both writers) → write them (``write``: one notification; ``bulk``: ``notify_many()``'s COPY
fan-out) → on commit, enqueue the due sends.

Deliveries are written un-routed (``provider_name=""``, ``provider_priority=0``): the provider
is chosen at send time, when health, circuit and rate limits are current, and recorded then.
The exception is a due, plain in-app delivery (``inapp_sent``): sending it is only writing
our own row, so it is written sent, routed as the sender would, and its event is published
after commit instead of enqueued.
The rendered message of each channel is kept in ``delivery_metadata["message"]`` so the send
never re-renders (a template edited in between cannot change a queued message).
"""

from .bulk import notify_many
from .write import notify

__all__ = ["notify", "notify_many"]
