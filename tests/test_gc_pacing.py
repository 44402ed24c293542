"""The console's collector pacing on a large estate (tui/gc_pacing.py): engaged only from
LARGE_ESTATE_VMS, a full collection only when due and idle, the interpreter's settings back
when the console closes."""

from __future__ import annotations

import gc
import sys

from tui.gc_pacing import FULL_EVERY_S, GROWTH_FOR_FULL, LARGE_ESTATE_VMS, SWITCH_INTERVAL_S, GcPacer


def test_small_estates_are_left_to_the_interpreter():
    pacer = GcPacer(busy=lambda: False)
    with pacer.loading():
        assert not gc.isenabled()
        assert pacer.landed(LARGE_ESTATE_VMS - 1) is False
    assert gc.isenabled() and not pacer.engaged and gc.get_freeze_count() == 0


def frozen_garbage(count: int) -> None:
    """`count` reference cycles that die after being frozen, as a load's worker does."""
    cycles = []
    for _ in range(count):
        cycle: list = []
        cycle.append(cycle)
        cycles.append(cycle)
    gc.freeze()
    del cycles, cycle


def test_a_large_estate_is_frozen_and_fully_collected_only_when_garbage_can_have_grown():
    """The long full collection (the whole heap) runs only when due, idle, and when the frozen
    heap has grown enough to hold garbage worth it; then the garbage a freeze caught is freed."""
    now = [1000.0]
    busy = [False]
    saved = sys.getswitchinterval()
    pacer = GcPacer(busy=lambda: busy[0], clock=lambda: now[0])
    try:
        with pacer.loading():
            assert pacer.landed(LARGE_ESTATE_VMS) is True
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        now[0] += FULL_EVERY_S
        pacer.tick()
        assert pacer.full_collections == 0  # due by the clock, but the frozen heap has not grown

        base = gc.get_freeze_count()
        frozen_garbage(int(base * GROWTH_FOR_FULL) + 1000)
        busy[0] = True
        pacer.tick()
        assert pacer.full_collections == 0  # a load is running
        busy[0] = False
        pacer.tick()
        assert pacer.full_collections == 1 and 0 < gc.get_freeze_count() < base + 1000  # the garbage is gone

        frozen_garbage(int(base * GROWTH_FOR_FULL) + 1000)
        pacer.tick()
        assert pacer.full_collections == 1  # grown again, but the last one was less than FULL_EVERY_S ago
    finally:
        pacer.release()
    assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == saved and not pacer.engaged


def test_the_pages_malloc_keeps_after_a_load_are_given_back_to_the_system():
    """What a load parsed and freed stays in the process (glibc keeps freed pages for reuse)
    until the pacer trims the heap: when the process has grown TRIM_GROWTH_MB since the last
    trim, no load is running, and TRIM_EVERY_S has passed."""
    import pytest

    from tui.gc_pacing import TRIM_EVERY_S, TRIM_GROWTH_MB, resident_mb

    now = [1000.0]
    busy = [False]
    pacer = GcPacer(busy=lambda: busy[0], clock=lambda: now[0])
    if pacer._trim is None or resident_mb() is None:
        pytest.skip("not glibc on Linux: there is no malloc_trim to call")
    try:
        with pacer.loading():
            pacer.landed(LARGE_ESTATE_VMS)
        pacer.tick()  # the first tick trims what the process holds so far
        assert pacer.trims == 1
        # A parse's worth of 1 KB documents, freed but for one in 64, which keeps malloc from
        # giving the pages back by itself.
        documents = [bytes(1024) for _ in range(160_000)]
        kept = documents[::64]
        del documents
        grown = resident_mb()
        assert grown is not None and grown - pacer._resident_after_trim >= TRIM_GROWTH_MB
        now[0] += TRIM_EVERY_S
        busy[0] = True
        pacer.tick()
        assert pacer.trims == 1  # a load is running: later
        busy[0] = False
        pacer.tick()
        assert pacer.trims == 2
        after = resident_mb()
        assert after is not None and after < grown - TRIM_GROWTH_MB  # the freed pages left the process
        now[0] += TRIM_EVERY_S
        pacer.tick()
        assert pacer.trims == 2  # nothing has grown since
        assert len(kept) == 2500
    finally:
        pacer.release()


def test_what_a_background_probe_made_is_frozen_once_it_has_finished():
    """After the load's freeze, the background probe makes findings for every VM; once it has
    finished they are frozen too, so automatic collections no longer walk them."""
    pacer = GcPacer(busy=lambda: False)
    try:
        pacer.settled()
        assert gc.get_freeze_count() == 0  # a small estate: left to the interpreter
        with pacer.loading():
            pacer.landed(LARGE_ESTATE_VMS)
        frozen = gc.get_freeze_count()
        findings = [{"vm": i, "evidence": [str(i)]} for i in range(20_000)]
        pacer.settled()
        assert gc.get_freeze_count() >= frozen + 20_000
        assert len(findings) == 20_000
    finally:
        pacer.release()
