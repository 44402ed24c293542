"""The console's collector pacing on a large estate (tui/gc_pacing.py): engaged only from
LARGE_ESTATE_VMS, a full collection only when due and idle, the interpreter's settings back
when the console closes."""

from __future__ import annotations

import gc
import sys

from tui.gc_pacing import (
    FLOOR_WINDOW_S,
    FULL_EVERY_S,
    GROWTH_FOR_FULL,
    IDLE_FOR_FULL_S,
    LARGE_ESTATE_VMS,
    LIVE_STEP,
    OLDEST_AFTER,
    SWITCH_INTERVAL_S,
    GcPacer,
    cut_reference_cycles,
    heap_blocks,
)


def test_small_estates_are_left_to_the_interpreter():
    pacer = GcPacer(busy=lambda: False)
    with pacer.loading():
        assert not gc.isenabled()
        assert pacer.landed(LARGE_ESTATE_VMS - 1) is False
    assert gc.isenabled() and not pacer.engaged and gc.get_freeze_count() == 0


def frozen_garbage(blocks: int) -> None:
    """About `blocks` heap blocks (heap_blocks) of reference cycles that die after being
    frozen, as a load's worker does."""
    cycles = []
    start = heap_blocks()
    while heap_blocks() - start < blocks:
        for _ in range(1000):
            cycle: list = []
            cycle.append(cycle)
            cycles.append(cycle)
    gc.freeze()
    del cycles, cycle


def test_a_large_estate_is_frozen_and_fully_collected_only_when_garbage_has_piled_up():
    """The long full collection (the whole heap) runs only when the garbage a freeze caught has
    grown, a little every window, to GROWTH_FOR_FULL of the heap; live data that arrives in a
    step (a pane opened) is not taken for garbage; never while a load runs or the operator is at
    the keys; then the garbage is freed."""
    now = [1000.0]
    busy = [False]
    saved = sys.getswitchinterval()
    thresholds = gc.get_threshold()
    pacer = GcPacer(busy=lambda: busy[0], clock=lambda: now[0])

    def window() -> None:
        pacer.tick()
        now[0] += FLOOR_WINDOW_S
        pacer.tick()

    live = []
    try:
        with pacer.loading():
            assert pacer.landed(LARGE_ESTATE_VMS) is True
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        assert gc.get_threshold() == (*thresholds[:2], max(thresholds[2], OLDEST_AFTER))  # the oldest generation collected less often
        window()  # the first floor
        base = heap_blocks()
        live.append(frozen_live(int(base * 0.5)))  # every pane opened: half the heap again, at once
        window()
        now[0] += FULL_EVERY_S
        window()
        assert pacer.garbage_estimate < base * 0.01 and pacer.full_collections == 0  # a step of live data is not garbage

        heap = heap_blocks()
        for _ in range(4):  # live data that comes and goes a little (findings, a pane's rows) does not add up
            coming = frozen_live(int(heap * LIVE_STEP / 2))
            window()
            del coming
            window()
        assert pacer.garbage_estimate < heap * 0.01 and pacer.full_collections == 0
        step = int(heap * LIVE_STEP * 0.8)
        windows = 0
        while not pacer.full_collection_due():
            frozen_garbage(step)  # a few hundred refreshes' worth
            busy[0] = True  # a load runs at every window's end: no full collection yet
            window()
            busy[0] = False
            windows += 1
        assert pacer.full_collections == 0 and windows >= GROWTH_FOR_FULL / LIVE_STEP
        assert pacer.garbage_estimate >= GROWTH_FOR_FULL * heap
        pacer.operator_active()
        pacer.tick()
        assert pacer.full_collections == 0  # the operator is at the keys
        now[0] += IDLE_FOR_FULL_S
        pacer.tick()
        assert pacer.full_collections == 1 and pacer.garbage_estimate == 0
        assert heap_blocks() < heap + step  # the garbage is gone, the live data stays

        frozen_garbage(int(heap * GROWTH_FOR_FULL))
        for _ in range(3):
            window()
        assert pacer.full_collections == 1  # grown again, but in a step; and the last one was less than FULL_EVERY_S ago
    finally:
        pacer.release()
    assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == saved and not pacer.engaged
    assert gc.get_threshold() == thresholds  # the interpreter's own settings again
    assert all(len(block) for block in live)


def frozen_live(blocks: int) -> list:
    """About `blocks` heap blocks of objects frozen and kept, as a pane's data is."""
    kept: list = []
    start = heap_blocks()
    while heap_blocks() - start < blocks:
        kept.extend([[i] for i in range(len(kept), len(kept) + 1000)])
    gc.freeze()
    return kept


def test_a_strip_drawn_at_its_own_width_is_freed_when_dropped():
    """Textual's Strip cached itself when divided or cropped at its own width: a reference cycle
    that, frozen alive in a render cache, lived until a full collection (600 of the 730 objects of
    garbage a refresh left at 10,000 VMs). With the cycle cut, reference counting frees it, and the
    results are unchanged."""
    import weakref

    from rich.segment import Segment
    from textual.strip import Strip

    cut_reference_cycles()
    cut_reference_cycles()  # idempotent
    strip = Strip([Segment("vm-web-01 "), Segment("running")])
    assert strip.divide([17]) == [strip] and strip.crop_extend(0, 17, None) is strip
    assert [s.text for s in strip.divide([3, 17])] == ["vm-", "web-01 running"]
    assert strip.crop_extend(3, 20, None).text == "web-01 running   "
    wide = strip.crop_extend(0, 20, None)
    assert wide.cell_length == 20 and wide.divide([20]) == [wide]

    class Probe:
        """Something that lives exactly as long as the strip does."""

    probe = Probe()
    freed = weakref.ref(probe)
    strip._segments.append(Segment("", None, {"probe": probe}))  # type: ignore[arg-type]
    del probe
    gc.disable()
    try:
        del strip, wide
        assert freed() is None  # by reference counting: no collection ran
    finally:
        gc.enable()


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


def test_what_is_made_while_a_load_is_read_is_frozen_without_a_collection():
    """The rows of the last inventory are built while the next load is read (the collector paused):
    settling them then does not walk everything made since the load started, in one piece of the
    loop; it freezes it."""
    pacer = GcPacer(busy=lambda: False)
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    try:
        with pacer.loading():
            pacer.landed(LARGE_ESTATE_VMS)
        gc.callbacks.append(count)
        with pacer.loading():
            assert collections == [2]  # the load's own collection of what is not frozen
            frozen = gc.get_freeze_count()
            rows = [{"vm": i, "cells": [str(i)]} for i in range(20_000)]
            pacer.settled()
            assert collections == [2]
            assert gc.get_freeze_count() >= frozen + 20_000
        pacer.settled()
        assert collections == [2, 1]  # the collector is back: the young generations are collected first
        assert len(rows) == 20_000
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        pacer.release()


def test_a_closed_connection_is_freed_when_dropped():
    """asyncio's socket transport (Python 3.11) kept a bound method of itself once closed: every
    HTTP connection a server closed was garbage only a full collection freed."""
    import asyncio
    import socket
    import weakref

    cut_reference_cycles()

    async def connect_and_close() -> weakref.ref:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        freed = weakref.ref(transport)
        theirs.close()  # the server hangs up
        for _ in range(20):
            if transport.is_closing():
                break
            await asyncio.sleep(0.01)
        assert transport.is_closing()
        await asyncio.sleep(0.01)  # connection_lost has run
        return freed

    gc.disable()
    try:
        freed = asyncio.run(connect_and_close())
        assert freed() is None  # by reference counting: no collection ran
    finally:
        gc.enable()
