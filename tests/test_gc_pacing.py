"""The console's collector pacing on a large estate (tui/gc_pacing.py): engaged only from
LARGE_ESTATE_VMS, a full collection only when due and idle, the interpreter's settings back
when the console closes."""

from __future__ import annotations

import gc
import sys

from tui.gc_pacing import FULL_EVERY_S, LARGE_ESTATE_VMS, SWITCH_INTERVAL_S, GcPacer


def test_small_estates_are_left_to_the_interpreter():
    pacer = GcPacer(busy=lambda: False)
    with pacer.loading():
        assert not gc.isenabled()
        assert pacer.landed(LARGE_ESTATE_VMS - 1) is False
    assert gc.isenabled() and not pacer.engaged and gc.get_freeze_count() == 0


def test_a_large_estate_is_frozen_collected_when_due_and_released():
    now = [1000.0]
    busy = [False]
    saved = sys.getswitchinterval()
    pacer = GcPacer(busy=lambda: busy[0], clock=lambda: now[0])
    try:
        with pacer.loading():
            assert pacer.landed(LARGE_ESTATE_VMS) is True
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        pacer.tick()
        assert pacer.full_collections == 0  # not due yet
        now[0] += FULL_EVERY_S
        busy[0] = True
        pacer.tick()
        assert pacer.full_collections == 0  # due, but a load is running
        busy[0] = False
        pacer.tick()
        assert pacer.full_collections == 1 and gc.get_freeze_count() > 0
    finally:
        pacer.release()
    assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == saved and not pacer.engaged
