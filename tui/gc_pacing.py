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
- what a freeze catches alive and dies later is freed by reference counting,
  unless it is in a reference cycle. Measured with gc.DEBUG_SAVEALL over 21
  refreshes at 10,000 VMs with every pane open, that cyclic garbage was 730
  objects a refresh: Textual strips that cached themselves, asyncio's
  transports of closed connections (Python 3.11), finished workers and their
  tasks, and a closure of release_gradually. cut_reference_cycles,
  forget_task and a module function for release_gradually took it to 50 a
  refresh: aiohttp's handlers of connections the server closed (handler,
  reader and error refer to each other).
  Frozen garbage is freed only by a full collection (everything unfrozen,
  collected, frozen again), which walks the whole heap: 0.5-0.8 s at 10,000
  VMs with every pane open. So it runs only when the garbage is worth it:
  when its estimate (the rise of the heap's floor, _watch_floor)
  reaches GROWTH_FOR_FULL of the heap, at most every FULL_EVERY_S, and only
  once the operator has not touched the keyboard or mouse for
  IDLE_FOR_FULL_S. (The sixth stop's soaks freed 117,000-138,000 frozen
  objects in a full collection at their end whether they ran 20 s or 600 s:
  garbage caught once, early, not per refresh.) At 50 objects a refresh that is 5,000-6,000 refreshes
  (1.4-1.5 million objects frozen): about six hours at a refresh every 2 s
  (139 refreshes in the 600 s soak, as each load takes about 2 s), more at
  the 5 s minimum, three and a half days at the default minute. Readings are
  taken only when no old inventory is being let go of: with none ever, there
  is no estimate and no full collection (refreshes come at least 5 s apart).
  The heap is read as pymalloc's allocated blocks (sys.getallocatedblocks,
  which sums per arena: well under a millisecond), not as the count of frozen
  objects: gc.get_freeze_count walks the frozen list, and at 1.6 million
  objects scattered over the heap that took 150-185 ms of the loop per
  reading on a machine with slow memory (7 ms on another).

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

And the oldest generation is collected less often. With the inventory frozen,
what it holds unfrozen is what the console is making at the moment (a load's
rows, the background probe's plan and findings): Python collects it after every
10 collections of the middle generation, and in a traced 240 s soak at 10,000
VMs that was 132 collections of up to 41 ms each, most of the 80 ms stalls that
were left (a turn's own work, then the collection). OLDEST_AFTER makes
it every 100th: what those collections free (cycles made since the last freeze)
waits ten times longer, and is small.

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
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from backend.gcpause import gc_paused

log = logging.getLogger("aztriage.console")

# From this many VMs on the pacing pays; below, a collection is short anyway.
LARGE_ESTATE_VMS = 2000
FULL_EVERY_S = 300.0
GROWTH_FOR_FULL = 0.2
FLOOR_WINDOW_S = 60.0
FLOOR_READ_EVERY_S = 10.0
LIVE_STEP = 0.05
IDLE_FOR_FULL_S = 10.0
RETIRE_AFTER_S = 3.0
SWITCH_INTERVAL_S = 0.001
OLDEST_AFTER = 100
RELEASE_PER_TURN = 500
TRIM_EVERY_S = 5.0
TRIM_GROWTH_MB = 32.0


def heap_blocks() -> int:
    """The size of the Python heap the pacer watches: pymalloc's allocated blocks (every small
    object and container, frozen or not; garbage a freeze caught stays allocated). Cheap to
    read, unlike gc.get_freeze_count (see the module's docstring)."""
    return sys.getallocatedblocks()


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


def release_gradually(objects: list, *, delay: float = 0.0, per_turn: int = RELEASE_PER_TURN, done: Callable[[], None] | None = None) -> None:
    """Drop this list's references `per_turn` at a time, one slice per turn of the running
    event loop, starting after `delay` seconds: whatever only the list still holds is
    freed a slice at a time instead of in one long pause. `done` is called after the last slice."""
    loop = asyncio.get_running_loop()
    if objects:
        loop.call_later(delay, _release_some, loop, objects, per_turn, done)
    elif done is not None:
        done()


def _release_some(loop: asyncio.AbstractEventLoop, objects: list, per_turn: int, done: Callable[[], None] | None) -> None:
    # A module function, not a closure calling itself: that closure was a reference cycle, one
    # more piece of garbage a freeze caught on every refresh.
    del objects[-per_turn:]
    if objects:
        loop.call_soon(_release_some, loop, objects, per_turn, done)
    elif done is not None:
        done()


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


def cut_reference_cycles() -> None:
    """Stop two library objects from referencing themselves; idempotent, the same results.

    Textual's Strip: `Strip.divide` at the strip's own length returns `[self]` and caches it, and
    `Strip.crop_extend` to its own length caches `self`. Each such strip was a reference cycle
    (with its seven caches, its segments and their lists), so reference counting never freed it;
    frozen alive in a render cache, it stayed until a full collection: about 600 of the 730
    objects of cyclic garbage a refresh left at 10,000 VMs with every pane open (gc.DEBUG_SAVEALL
    after 21 refreshes, benchmarks/soak.py).

    asyncio's socket transport on Python 3.11 keeps its own bound method (`_read_ready_cb`) after
    it is closed, so every HTTP connection the server closed was garbage only a collection freed.
    Python 3.12 drops it in `close()`; the same is done here on 3.11."""
    from textual.strip import Strip

    if getattr(Strip.divide, "_aztriage_no_cycle", False):
        return
    divide, crop_extend = Strip.divide, Strip.crop_extend

    def divide_without_cycle(self: Strip, cuts) -> Sequence[Strip]:
        cuts = [cut for cut in cuts if cut <= self.cell_length]
        return [self] if cuts == [self.cell_length] else divide(self, cuts)

    def crop_extend_without_cycle(self: Strip, start: int, end: int, style) -> Strip:
        return self if start <= 0 and end == self.cell_length else crop_extend(self, start, end, style)

    divide_without_cycle._aztriage_no_cycle = True  # type: ignore[attr-defined]
    Strip.divide = divide_without_cycle  # type: ignore[method-assign]
    Strip.crop_extend = crop_extend_without_cycle  # type: ignore[method-assign]

    if sys.version_info < (3, 12):
        from asyncio import selector_events

        transport: Any = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
        close = transport.close

        def close_without_cycle(self: Any) -> None:
            self._read_ready_cb = None
            close(self)

        transport.close = close_without_cycle


def forget_task(worker: Any) -> None:
    """Let a finished Textual worker go of its task. The task's context holds the worker
    (Textual's `active_worker` variable), so the two were a reference cycle: about one finished
    worker a refresh was garbage only a full collection freed."""
    task = getattr(worker, "_task", None)
    if task is not None and task.done():
        worker._task = None


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
        self._saved_thresholds = gc.get_threshold()
        self._last_full = 0.0
        self._last_input = float("-inf")
        self._window_started = 0.0
        self._last_reading = float("-inf")
        self._window_floor: int | None = None  # the lowest heap reading (heap_blocks) in this window
        self._floor: int | None = None  # ... in the last window
        self._base = 0  # the floor with the live data's steps and no garbage
        self.garbage_estimate = 0  # heap blocks thought frozen garbage since the last full collection
        self.full_collections = 0
        self.retiring = 0  # old inventories not yet let go of (retire)
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
        cut_reference_cycles()
        self._saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(SWITCH_INTERVAL_S, self._saved_switch_interval))
        self._saved_thresholds = gc.get_threshold()
        young, middle, oldest = self._saved_thresholds
        gc.set_threshold(young, middle, max(oldest, OLDEST_AFTER))
        self._last_full = self._window_started = self._clock()
        log.info("garbage collection paced for %d VMs (%d heap blocks)", vm_count, heap_blocks())
        return True

    def settled(self) -> None:
        """Work that made many long-lived objects after the load's freeze has finished (the
        background probe's findings on every VM): collect the young generations and freeze
        what survives. Unfrozen, those objects (350,000 in the soak at 10,000 VMs) were walked by
        every automatic collection of the oldest generation, 0.1-0.3 s each.

        While a load is being read the collector is paused (loading()), and everything made since
        it started (the rows built for the last inventory, the probe's findings) is in the young
        generation: collecting it then walked all of that in one piece, 150-175 ms of the loop in
        a traced soak at a 2 s refresh. So then it is only frozen: the load's collection ran just
        before it, and cyclic garbage made since would be frozen by the landing anyway."""
        if self.engaged:
            if gc.isenabled():
                gc.collect(1)
            gc.freeze()

    def retire(self, inventory) -> None:
        """An inventory the console no longer shows: freed gradually once every pane has let go."""
        if self.engaged and inventory is not None:
            self.retiring += 1
            release_gradually(inventory_objects(inventory), delay=RETIRE_AFTER_S, done=self._retired)

    def _retired(self) -> None:
        self.retiring -= 1

    def operator_active(self) -> None:
        """A key or the mouse: the operator is at the console (no full collection for IDLE_FOR_FULL_S)."""
        self._last_input = self._clock()

    def _watch_floor(self) -> None:
        """Estimate the garbage frozen since the last full collection without walking the heap.
        The heap (heap_blocks) is live data plus the cyclic garbage a freeze caught, plus what is
        being made and dropped at the moment (the floor leaves that out); it is read when no old
        inventory is being let go of (`retiring`), so it holds one inventory and what the panes
        keep. Its lowest reading in each FLOOR_WINDOW_S (the floor) rises with garbage, a
        little every refresh, and with live data, in steps (a pane opened for the first time,
        the first probe's findings). So a rise of the floor from one window to the next counts
        as live data when it is a step (more than LIVE_STEP of the heap from one window to the
        next); the garbage estimate is how far the floor stands above where those steps alone
        would have put it (so ups and downs of the live data do not add up)."""
        now = self._clock()
        if not self.retiring and now - self._last_reading >= FLOOR_READ_EVERY_S:
            self._last_reading = now
            heap = heap_blocks()
            self._window_floor = heap if self._window_floor is None else min(self._window_floor, heap)
        if now - self._window_started < FLOOR_WINDOW_S:
            return
        floor, self._window_floor, self._window_started = self._window_floor, None, now
        if floor is None:
            return
        if self._floor is None:
            self._base = floor
        elif floor - self._floor > LIVE_STEP * self._floor:
            self._base += floor - self._floor  # a step of live data
        else:
            self._base = min(self._base, floor)  # live data let go of
        self._floor = floor
        self.garbage_estimate = floor - self._base

    @property
    def floor(self) -> int | None:
        """The heap's floor in the last window (heap_blocks), None before the first."""
        return self._floor

    def full_collection_due(self) -> bool:
        """The garbage estimate (_watch_floor) has reached GROWTH_FOR_FULL of the heap, the
        last full collection was FULL_EVERY_S ago or more, no inventory is being read or drawn,
        and the operator has not touched a key or the mouse for IDLE_FOR_FULL_S."""
        if not self.engaged or self._floor is None or self.garbage_estimate < GROWTH_FOR_FULL * self._floor:
            return False
        now = self._clock()
        return now - self._last_full >= FULL_EVERY_S and now - self._last_input >= IDLE_FOR_FULL_S and not self._busy()

    def tick(self) -> None:
        """A full collection when one is due (full_collection_due), then a trim of the C heap
        when one is due (trim_due)."""
        self._watch_floor()
        if self.full_collection_due():
            started = time.perf_counter()
            gc.unfreeze()
            collected = gc.collect()
            gc.freeze()
            self._last_full = self._clock()
            self.garbage_estimate, self._floor, self._window_floor, self._window_started = 0, None, None, self._last_full
            self.full_collections += 1
            log.info("full collection: %d objects freed in %.0f ms", collected, 1000 * (time.perf_counter() - started))
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
            gc.set_threshold(*self._saved_thresholds)
            self.engaged = False
