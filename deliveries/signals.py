"""Signals other apps may listen to (deliveries imports none of them).

``notification_engaged``: a user read or clicked notifications — sent inside the
transaction that recorded it, with ``notification_ids`` (text ids) and ``how``
(``"read"`` or ``"clicked"``). ``campaigns`` listens to end waiting escalations at once.
"""

from django.dispatch import Signal

notification_engaged = Signal()
