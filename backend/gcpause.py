"""Pausing Python's cyclic garbage collector while big acyclic trees are built.

Parsing and joining a 10,000-VM inventory builds millions of small dicts,
lists and dataclasses, none of them in a reference cycle. With the collector
on, every 700 new containers start a collection and the growing heap triggers
full collections again and again: measured here, ``orjson.loads`` of the 83 MB
of a scale:10000 estate takes 1.9 s with the collector on and 0.34 s with it
off, and the join 1.35 s against 0.61 s. What is built is freed by reference
counting, so pausing the collector loses nothing; the pause nests and may be
entered from the event loop and from worker threads at once.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Automatic collection off inside the block (and inside every overlapping one)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
