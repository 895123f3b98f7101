"""The cyclic garbage collector tuned for long-lived worker processes.

Two measured costs (``gc.callbacks`` in a sending worker under bench/send_throughput.py,
40,000 deliveries over 2 workers; each worker's CPU 9.9 s, of it 3.7 s in collections):

* **The startup heap.** CPython's full collection walks every container object alive,
  and a worker holds ~200,000 of them from startup on (modules, models, URL patterns,
  clients) that never become garbage: 26 full collections took 2.7 s. ``gc.freeze()``
  moves them to a permanent generation the collector skips (the practice CPython
  documents for long-lived servers). A collection first clears startup's own garbage.
* **The young-generation threshold.** Python collects generation 0 every 700 net
  container allocations; a send allocates dozens that reference counting frees anyway,
  so ~3,300 young collections found little. At ``NP_GC_THRESHOLD`` = 50,000 the same run
  made no collection at all while sending; worker CPU 9.9 s → 7.0 s, sending 2,660/s →
  3,500/s. Cycles still go, at the latest after 50,000 net allocations (a few MB).
"""

from __future__ import annotations

import gc

from django.conf import settings


def freeze_heap(thresholds: tuple[int, ...] | None = None) -> None:
    """Collect, freeze what is left alive, and set the collector's thresholds: these, else
    a Celery worker's (``NP_GC_THRESHOLD`` for the young generation; 0 keeps Python's).
    Idempotent: a later call freezes what came since. The websocket hub calls it with its
    own (``realtime.hub``)."""
    gc.collect()
    gc.freeze()
    if thresholds is None:
        young = int(getattr(settings, "NP_GC_THRESHOLD", 50_000))
        thresholds = (young, *gc.get_threshold()[1:]) if young > 0 else None
    if thresholds:
        gc.set_threshold(*thresholds)
