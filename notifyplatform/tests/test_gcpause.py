"""``gc_paused``: automatic collection off inside, back on after (also after an error), and
a nested pause leaves it to the outer one."""

from __future__ import annotations

import gc

import pytest

from notifyplatform.gcpause import gc_paused


def test_paused_inside_and_restored_after_an_error():
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        assert not gc.isenabled()
        raise ValueError("boom")
    assert gc.isenabled()


def test_nested_pause_is_ended_by_the_outer_one_only():
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
