"""Garbage collection, freeing and thread switching paced for a console that
holds a large inventory.

CPython's cyclic collector walks container objects; a 10k-VM inventory is
about 220,000 of them, and a new one arrives on every refresh. Measured with
`benchmarks/soak.py --trace`, the console's event loop was held by:

- a full collection about once per refresh (0.2-1 s each), walking the
  current inventory, the one being read and everything else in memory;
- right after each load (the backend pauses the collector while it reads,
  backend/gcpause.py) a young collection over the whole new inventory, then
  another over its survivors: 70-90 ms each.

Nothing in an inventory is in a reference cycle (checked with
gc.DEBUG_SAVEALL: what full collections found was Textual's render caches and
finished workers, and the workers had kept whole inventories alive through
their arguments until then; the panes no longer pass inventories to workers).
Reference counting frees an old inventory as soon as no pane shows it. So,
once an inventory is large:

- the collector stays off from the start of each load until the inventory
  has landed, and what exists then (the new inventory, modules, Textual, the
  SDK) is frozen (gc.freeze, no copying): later collections walk only what
  was made since, which is little;
- before each load, what was made since the last freeze is collected (only
  that: the frozen heap is not walked), so that garbage is not frozen with the
  next inventory;
- what a freeze still catches alive and dies later (the refresh's own worker,
  Textual's render caches of that moment: about 1,200 objects a load, measured
  with gc.DEBUG_SAVEALL after the background probe stopped passing its VMs as
  a worker argument, which had kept a whole old inventory frozen) is freed by a
  full collection (everything unfrozen, collected, frozen again). That walks
  the whole heap: 0.8-1.1 s at 10,000 VMs with every pane open. So it runs
  only when it can be worth it: the frozen heap has grown by GROWTH_FOR_FULL
  over what the last full collection left, and at most every FULL_EVERY_S: at
  10,000 VMs, some hundred refreshes apart, when the garbage could be a fifth
  of the heap.

Freeing is paced too. An old inventory is freed by whoever drops the last
reference to it, all at once: 10,000 VMs take 30-70 ms, in whichever pane
happened to let go last. So the pacer keeps a reference to each replaced
inventory's objects for RETIRE_AFTER_S (every pane has moved to the new one by
then) and then lets go of them a slice per turn of the event loop
(release_gradually).

One more interpreter setting: while a pane computes in a worker thread (the
Health and Checklist panes on a large estate), every TLS read of the event
loop gives the GIL up and waits up to the switch interval (5 ms by default) to
get it back from that thread; a page read in many small pieces then holds the
loop back with next to no CPU used (seen in the stall traces). A shorter
switch interval (SWITCH_INTERVAL_S) shortens each of those waits.

And the C heap is trimmed. A load parses about 100 MB of JSON; Python frees it,
but glibc's malloc keeps most of the freed pages for reuse, so the process
kept them too: at 10,000 VMs with every pane open, 454 MB resident of which
malloc_trim gave back 98 MB in 29 ms (measured while the machine was loaded).
Once the process has grown TRIM_GROWTH_MB since the last trim, and no
inventory is being read or drawn, the pacer's tick trims the heap, at most
every TRIM_EVERY_S.

Small estates are left to the interpreter. The console hands the interpreter
its settings back when it closes (the tests run many consoles in one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from backend.gcpause import gc_paused

log = logging.getLogger("aztriage.console")

# From this many VMs on the pacing pays; below, a collection is short anyway.
LARGE_ESTATE_VMS = 2000
FULL_EVERY_S = 300.0
GROWTH_FOR_FULL = 0.2
RETIRE_AFTER_S = 3.0
SWITCH_INTERVAL_S = 0.001
RELEASE_PER_TURN = 500
TRIM_EVERY_S = 5.0
TRIM_GROWTH_MB = 32.0


def resident_mb() -> float | None:
    """This process's resident set now (Linux /proc), None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _malloc_trim() -> Any:
    """glibc's malloc_trim, None elsewhere (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_gradually(objects: list, *, delay: float = 0.0, per_turn: int = RELEASE_PER_TURN) -> None:
    """Drop this list's references `per_turn` at a time, one slice per turn of the running
    event loop, starting after `delay` seconds: whatever only the list still holds is
    freed a slice at a time instead of in one long pause."""
    loop = asyncio.get_running_loop()

    def release_some() -> None:
        del objects[-per_turn:]
        if objects:
            loop.call_soon(release_some)

    if objects:
        loop.call_later(delay, release_some)


def forget_frames(error: BaseException | None) -> None:
    """Let go of the frames an exception (and those it was raised from) stopped in, once it
    has been reported. A cancelled or failed Textual worker keeps its exception, and every
    callback scheduled while it ran keeps the worker (the `active_worker` context variable
    lives in their contexts): in the soak, each background probe a refresh cancelled kept
    its inventory and findings alive through its CancelledError's traceback, ten
    inventories after 30 s at a 2 s refresh (benchmarks/soak.py)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def inventory_objects(inventory) -> list:
    """The big parts of an inventory, for release_gradually."""
    return [*inventory.vms, *inventory.nsgs.values(), *inventory.load_balancers.values(), *inventory.public_ips.values()]


class GcPacer:
    def __init__(self, busy: Callable[[], bool], *, clock: Callable[[], float] = time.monotonic) -> None:
        """`busy` says whether an inventory is being read or drawn (no full collection then)."""
        self._busy = busy
        self._clock = clock
        self.engaged = False
        self._saved_switch_interval = sys.getswitchinterval()
        self._last_full = 0.0
        self._frozen_after_full = 0  # gc.get_freeze_count() after the last full collection (or the first freeze)
        self.full_collections = 0
        self._trim = _malloc_trim()
        self._last_trim = 0.0
        self._resident_after_trim = 0.0
        self.trims = 0

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """Around one inventory load: the collector off until the caller has called
        landed() (or the load failed)."""
        if self.engaged:
            gc.collect()  # only what is not frozen: made since the last load landed
        with gc_paused():
            yield

    def landed(self, vm_count: int) -> bool:
        """A load has landed (inside loading()): freeze it if the estate is large.
        True when the pacing starts now (the caller then calls tick() every second or so)."""
        if not self.engaged and vm_count < LARGE_ESTATE_VMS:
            return False
        gc.freeze()
        if self.engaged:
            return False
        self.engaged = True
        self._saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(SWITCH_INTERVAL_S, self._saved_switch_interval))
        self._last_full = self._clock()
        self._frozen_after_full = gc.get_freeze_count()
        log.info("garbage collection paced for %d VMs (%d objects frozen)", vm_count, gc.get_freeze_count())
        return True

    def settled(self) -> None:
        """Work that made many long-lived objects after the load's freeze has finished (the
        background probe's findings on every VM): collect the young generations and freeze
        what survives. Unfrozen, those objects (350,000 in the soak at 10,000 VMs) were walked by
        every automatic collection of the oldest generation, 0.1-0.3 s each."""
        if self.engaged:
            gc.collect(1)
            gc.freeze()

    def retire(self, inventory) -> None:
        """An inventory the console no longer shows: freed gradually once every pane has let go."""
        if self.engaged and inventory is not None:
            release_gradually(inventory_objects(inventory), delay=RETIRE_AFTER_S)

    def full_collection_due(self) -> bool:
        """No inventory is being read or drawn, the last full collection was FULL_EVERY_S ago or
        more, and the frozen heap has grown by GROWTH_FOR_FULL since (live inventory or garbage a
        freeze caught): at worst a full collection every FULL_EVERY_S, as before."""
        # (An old inventory still being let go counts as growth: at a refresh every few seconds one
        # always is, and waiting for none let the frozen garbage grow without bound in the soak.)
        if not self.engaged or self._clock() - self._last_full < FULL_EVERY_S or self._busy():
            return False
        return gc.get_freeze_count() > self._frozen_after_full * (1 + GROWTH_FOR_FULL)

    def tick(self) -> None:
        """A full collection when one is due (full_collection_due), then a trim of the C heap
        when one is due (trim_due)."""
        if self.full_collection_due():
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._last_full = self._clock()
            self._frozen_after_full = gc.get_freeze_count()
            self.full_collections += 1
        resident = resident_mb()
        if resident is not None and self.trim_due(resident):
            self.trim_heap()

    def trim_due(self, resident_mb: float) -> bool:
        """No inventory is being read or drawn, the last trim was TRIM_EVERY_S ago or more, and the
        process has grown TRIM_GROWTH_MB since."""
        if not self.engaged or self._trim is None or self._clock() - self._last_trim < TRIM_EVERY_S or self._busy():
            return False
        return resident_mb >= self._resident_after_trim + TRIM_GROWTH_MB

    def trim_heap(self) -> None:
        """Give the pages malloc keeps free back to the system (glibc's malloc_trim)."""
        if self._trim is None:
            return
        started = time.perf_counter()
        before = resident_mb()
        self._trim(0)
        self._last_trim = self._clock()
        self._resident_after_trim = resident_mb() or 0.0
        self.trims += 1
        log.info("heap trimmed: %.0f -> %.0f MB resident in %.0f ms", before or 0.0, self._resident_after_trim, 1000 * (time.perf_counter() - started))

    def release(self) -> None:
        """The interpreter's own behaviour again (the console is closing)."""
        if self.engaged:
            gc.unfreeze()
            sys.setswitchinterval(self._saved_switch_interval)
            self.engaged = False
