"""Signals other apps may listen to (realtime imports none of them).

``event_acknowledged``: a user acknowledged an event for the first time — sent inside the
transaction that stored it, with ``event_id``, ``user_id`` and the event's
``correlation_id``. ``campaigns`` listens to end waiting escalations at once.
"""

from django.dispatch import Signal

event_acknowledged = Signal()
