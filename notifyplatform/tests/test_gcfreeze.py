"""A worker that is up has its startup heap frozen and the young-generation threshold set
(notifyplatform.gcfreeze), through Celery's own signals."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from celery import signals

import notifyplatform.celery  # noqa: F401 - connects the worker signal handlers


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.parametrize("signal", [signals.worker_ready, signals.worker_process_init])
def test_a_ready_worker_freezes_its_heap_and_raises_the_threshold(signal, collector, settings):
    settings.NP_GC_THRESHOLD = 40_000
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    signal.send(sender=None)

    assert gc.get_freeze_count() > 10_000  # the modules, the models, the apps...
    assert gc.get_threshold()[0] == 40_000
    # and what comes later is still collected: a cycle made now goes
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_zero_keeps_pythons_threshold(collector, settings):
    settings.NP_GC_THRESHOLD = 0
    before = gc.get_threshold()
    signals.worker_ready.send(sender=None)
    assert gc.get_threshold() == before
