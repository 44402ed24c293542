"""The collector pause around big inventory parses: nests, spans threads, restores the state it found."""

from __future__ import annotations

import gc
import threading

from backend.gcpause import gc_paused


def test_the_collector_is_back_on_only_after_the_outermost_pause():
    assert gc.isenabled()
    entered = threading.Event()
    leave = threading.Event()

    def worker() -> None:
        with gc_paused():
            entered.set()
            leave.wait(5)

    with gc_paused():
        assert not gc.isenabled()
        thread = threading.Thread(target=worker)
        thread.start()
        entered.wait(5)
    assert not gc.isenabled(), "the worker's pause is still open"
    leave.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
