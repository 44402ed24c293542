"""Find what holds the event loop: a stall tracer for benchmarks.

A heartbeat coroutine stamps the time every few milliseconds; a watchdog thread
notices when the stamp is more than `threshold_s` old (the loop is held) and then
samples the main thread's Python stack (sys._current_frames) every `sample_s`
until the heartbeat comes back. Each stall keeps its samples, its length, the
main thread's and the whole process's CPU time during it (from /proc, so a loop
held by another thread's GIL shows as main-thread CPU well below the stall's
length), how long the main thread waited, runnable, for a CPU (schedstat: the
machine running other work), the machine's steal time (its hypervisor running
other machines), the process's major page faults (pages read back from disk), and
the garbage collections that ran inside it (gc.callbacks).

Every event-loop callback's CPU time is measured too (time.thread_time around
asyncio's Handle._run): a callback that used more than `cpu_threshold_s` of the
main thread's CPU is listed with what it ran, so the loop's own work can be told
apart from time the machine gave to other processes or threads.

The watchdog needs the GIL to take a sample, so a C call that holds the GIL
(a big orjson.loads, say) cannot be sampled while it runs: the watchdog's own
late wake-ups are counted as "GIL holds" and the sample taken right after shows
the Python line that made the call.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(path: str) -> float:
    """utime + stime of /proc/.../stat, in seconds (10 ms resolution)."""
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _major_faults() -> int:
    """The process's major page faults so far (pages read back from disk: a wait with no CPU)."""
    try:
        with open("/proc/self/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[9])
    except (OSError, IndexError, ValueError):
        return -1


def _runqueue_s(path: str) -> float:
    """Time a thread has waited, runnable, for a CPU (/proc/.../schedstat's second field, ns)."""
    try:
        with open(path) as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def _steal_s() -> float:
    """CPU time the hypervisor gave other machines, summed over this machine's CPUs (/proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / _TICKS
    except (OSError, IndexError, ValueError):
        return float("nan")


@functools.lru_cache(maxsize=4096)
def _where(filename: str) -> str:
    """A short name for a source file (cached: the tracer must not hold the loop itself)."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    root = str(ROOT) + "/"
    return filename[len(root) :] if filename.startswith(root) else filename


def _is_ours(filename: str) -> bool:
    return filename.startswith(str(ROOT)) and "/.venv/" not in filename and "/benchmarks/" not in filename


class StallTracer:
    def __init__(self, threshold_s: float = 0.05, beat_s: float = 0.005, sample_s: float = 0.01, max_samples: int = 40, cpu_threshold_s: float = 0.02) -> None:
        self.threshold_s = threshold_s
        self.cpu_threshold_s = cpu_threshold_s
        self.slow_callbacks: list[tuple[float, float, str]] = []  # (CPU s, wall s, what)
        self.callbacks = 0
        self._handle_run = None
        self._dispatch = None
        self._dispatched: list[str] = []
        self.beat_s = beat_s
        self.sample_s = sample_s
        self.max_samples = max_samples
        self.stalls: list[dict] = []
        # (when, how late the watchdog woke, where the other threads were just after)
        self.gil_holds: list[tuple[float, float, tuple[str, ...]]] = []
        self.gcs: list[tuple[float, float, int, int, float, str]] = []  # (start, wall s, generation, collected, CPU s, thread)
        self._beat = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None
        self._gc_start: float | None = None
        self._gc_cpu_start = 0.0
        self._main = threading.main_thread()
        self._main_stat = f"/proc/self/task/{self._main.native_id}/stat"
        self._main_sched = f"/proc/self/task/{self._main.native_id}/schedstat"

    # --- gc timing -----------------------------------------------------------------

    def _gc_callback(self, phase: str, info: dict) -> None:
        # thread_time: the CPU the collection took, apart from time the OS ran other processes.
        if phase == "start":
            self._gc_start = time.perf_counter()
            self._gc_cpu_start = time.thread_time()
        elif self._gc_start is not None:
            now = time.perf_counter()
            cpu = time.thread_time() - self._gc_cpu_start
            where = "main" if threading.current_thread() is self._main else "other thread"
            self.gcs.append((self._gc_start, now - self._gc_start, info.get("generation", -1), info.get("collected", 0), cpu, where))
            self._gc_start = None

    # --- heartbeat and watchdog -----------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.perf_counter()
            await asyncio.sleep(self.beat_s)

    def _sample(self) -> tuple[tuple[str, int, str], ...]:
        frame = sys._current_frames().get(self._main.ident)
        stack = []
        try:
            while frame is not None:
                code = frame.f_code
                stack.append((code.co_filename, frame.f_lineno, code.co_name))
                frame = frame.f_back
        except AttributeError:
            # Walking a running thread's frames from another thread races with it on 3.11: once
            # in a 240 s soak, f_back gave back a type object and the watchdog thread died.
            pass
        return tuple(stack)  # innermost first

    def _others(self) -> tuple[str, ...]:
        """Where each thread but the main one and this watchdog is: its innermost project frame
        (else its innermost frame). Taken just after the watchdog got the GIL back late, it
        names the code another thread held the GIL in, or the line just after it."""
        me = threading.get_ident()
        found = []
        for ident, frame in sys._current_frames().items():
            if ident in (me, self._main.ident):
                continue
            innermost = frame
            ours = None
            try:
                while frame is not None:
                    if ours is None and _is_ours(frame.f_code.co_filename):
                        ours = frame
                    frame = frame.f_back
            except AttributeError:
                pass  # a racing walk (see _sample)
            pick = ours or innermost
            if (pick.f_code.co_name, pick.f_code.co_filename.rsplit("/", 1)[-1]) in (("_worker", "thread.py"), ("wait", "threading.py")):
                continue  # an idle pool thread
            found.append(f"{_where(pick.f_code.co_filename)}:{pick.f_lineno} {pick.f_code.co_name}")
        return tuple(found)

    def _watch(self) -> None:
        stall: dict | None = None
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(self.sample_s)
            now = time.perf_counter()
            overslept = now - last - self.sample_s
            last = now
            if overslept > self.threshold_s:
                self.gil_holds.append((now, overslept, self._others()))
            late = now - self._beat
            if late > self.threshold_s:
                if stall is None:
                    stall = {
                        "start": self._beat,
                        "main_cpu0": _cpu_s(self._main_stat),
                        "proc_cpu0": _cpu_s("/proc/self/stat"),
                        "runqueue0": _runqueue_s(self._main_sched),
                        "steal0": _steal_s(),
                        "majflt0": _major_faults(),
                        "samples": [],
                        "gil_late_s": 0.0,
                    }
                if overslept > self.threshold_s:
                    stall["gil_late_s"] += overslept
                if len(stall["samples"]) < self.max_samples:
                    stall["samples"].append(self._sample())
            elif stall is not None:
                stall["end"] = self._beat
                stall["main_cpu_s"] = _cpu_s(self._main_stat) - stall.pop("main_cpu0")
                stall["proc_cpu_s"] = _cpu_s("/proc/self/stat") - stall.pop("proc_cpu0")
                stall["runqueue_s"] = _runqueue_s(self._main_sched) - stall.pop("runqueue0")
                stall["steal_s"] = _steal_s() - stall.pop("steal0")
                stall["major_faults"] = _major_faults() - stall.pop("majflt0")
                self.stalls.append(stall)
                stall = None

    @staticmethod
    def _awaiting(task: asyncio.Task) -> list[tuple[str, int, str]]:
        """Where a task waits: its chain of coroutine frames (raw, formatted only when needed)."""
        coro = task.get_coro()
        where = []
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                where.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            if not hasattr(coro, "cr_frame") and not hasattr(coro, "gi_frame"):
                break
        return where

    @staticmethod
    def _format(where: list[tuple[str, int, str]]) -> str:
        return " > ".join(f"{_where(f)}:{n} {name}" for f, n, name in where[-3:])

    def _describe(self, handle, resumed: list | None = None) -> str:
        callback = handle._callback
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            coro = task.get_coro()
            name = coro.__qualname__
            timer = getattr(coro, "cr_frame", None) and coro.cr_frame.f_locals.get("self")
            if name.startswith("Timer.") and timer is not None:
                callback = getattr(timer, "_callback", None)
                name += f" of {getattr(callback, '__qualname__', callback)!s}"
            now = self._awaiting(task)
            text = f"task {name}"
            if resumed:
                text += f", resumed at {self._format(resumed)}"
            return text + (f", then waiting at {self._format(now)}" if now else " (finished)")
        func = getattr(callback, "__func__", callback)
        code = getattr(func, "__code__", None)
        if code is not None:
            return f"{getattr(func, '__qualname__', func)} ({_where(code.co_filename)}:{code.co_firstlineno})"
        return repr(callback)[:120]

    def _patch_dispatch(self) -> None:
        """Name the Textual messages a slow step of a message pump handled."""
        from textual.message_pump import MessagePump

        tracer = self
        original = MessagePump._dispatch_message
        self._dispatch = original

        async def _dispatch_message(pump, message):
            label = f"{type(pump).__name__}<-{type(message).__qualname__}"
            callback = getattr(message, "callback", None)
            if callback is not None:
                label += f"({getattr(callback, '__qualname__', type(callback).__name__)})"
            tracer._dispatched.append(label)
            return await original(pump, message)

        MessagePump._dispatch_message = _dispatch_message

    def _patch_handles(self) -> None:
        tracer = self
        original = asyncio.events.Handle._run
        self._handle_run = original

        def _run(handle):
            # Where a task resumes (its await point) is known only before the step runs.
            task = getattr(handle._callback, "__self__", None)
            resumed = tracer._awaiting(task) if isinstance(task, asyncio.Task) else None
            tracer._dispatched = []
            cpu = time.thread_time()
            wall = time.perf_counter()
            try:
                return original(handle)
            finally:
                used = time.thread_time() - cpu
                tracer.callbacks += 1
                # (Not after stop(): the soak's own measurements at the end are not the console's.)
                if used > tracer.cpu_threshold_s and not tracer._stop.is_set():
                    if tracer._dispatched:
                        labels = Counter(tracer._dispatched)
                        what = "messages " + ", ".join(f"{k}" + (f" x{n}" if n > 1 else "") for k, n in labels.most_common(4))
                    else:
                        what = tracer._describe(handle, resumed)
                    tracer.slow_callbacks.append((used, time.perf_counter() - wall, what))

        asyncio.events.Handle._run = _run

    def start(self) -> None:
        self._patch_handles()
        self._patch_dispatch()
        gc.callbacks.append(self._gc_callback)
        self._task = asyncio.create_task(self._heartbeat(), name="stall-trace-heartbeat")
        self._thread = threading.Thread(target=self._watch, name="stall-trace-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._task:
            self._task.cancel()
        if self._thread:
            self._thread.join(timeout=2)
        if self._gc_callback in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)
        if self._handle_run is not None:
            asyncio.events.Handle._run = self._handle_run
        if self._dispatch is not None:
            from textual.message_pump import MessagePump

            MessagePump._dispatch_message = self._dispatch

    # --- report ----------------------------------------------------------------------

    def report(self, top: int = 12, depth: int = 8) -> dict:
        """Stalls with their length, CPU and gc; the code seen most often while the loop was held."""
        innermost_ours: Counter = Counter()
        innermost_any: Counter = Counter()
        stacks: Counter = Counter()
        weight_ms: Counter = Counter()  # per innermost project frame: sampled ms
        stalls = []
        for s in self.stalls:
            length = s["end"] - s["start"]
            gc_in = [g for g in self.gcs if s["start"] <= g[0] <= s["end"]]
            per_stall: Counter = Counter()
            for stack in s["samples"]:
                ours = next((f for f in stack if _is_ours(f[0])), None)
                label_ours = f"{_where(ours[0])}:{ours[1]} {ours[2]}" if ours else "(no project frame)"
                label_any = f"{_where(stack[0][0])}:{stack[0][1]} {stack[0][2]}" if stack else "(no frame)"
                innermost_ours[label_ours] += 1
                innermost_any[label_any] += 1
                weight_ms[label_ours] += round(1000 * self.sample_s)
                per_stall[label_ours] += 1
                stacks[" <- ".join(f"{_where(f[0])}:{f[1]} {f[2]}" for f in stack[:depth])] += 1
            stalls.append(
                {
                    "at_s": round(s["start"], 2),
                    "ms": round(1000 * length, 1),
                    "main_cpu_ms": round(1000 * s["main_cpu_s"]),
                    "process_cpu_ms": round(1000 * s["proc_cpu_s"]),
                    "runqueue_ms": round(1000 * s["runqueue_s"]),
                    "steal_ms": round(1000 * s["steal_s"]),
                    "major_faults": s["major_faults"],
                    "gil_late_ms": round(1000 * s["gil_late_s"]),
                    "gc_ms": round(1000 * sum(g[1] for g in gc_in), 1),
                    "gc_cpu_ms": round(1000 * sum(g[4] for g in gc_in), 1),
                    "gc_generations": {f"gen{k}": n for k, n in sorted(Counter(g[2] for g in gc_in).items())},
                    "samples": len(s["samples"]),
                    "top": [f"{label} x{n}" for label, n in per_stall.most_common(3)],
                }
            )
        gc_by_gen: dict[int, list[float]] = {}
        gc_cpu_by_gen: dict[int, list[float]] = {}
        for _, dur, gen, _, cpu, _thread in self.gcs:
            gc_by_gen.setdefault(gen, []).append(dur)
            gc_cpu_by_gen.setdefault(gen, []).append(cpu)
        by_what: dict[str, list[float]] = {}
        for cpu, _, what in self.slow_callbacks:
            by_what.setdefault(what, []).append(cpu)
        return {
            "callbacks": self.callbacks,
            "callbacks_over_cpu_threshold": len(self.slow_callbacks),
            "callbacks_over_50ms_cpu": sum(1 for c in self.slow_callbacks if c[0] > 0.05),
            "slow_callbacks": sorted(
                ({"what": w, "count": len(c), "cpu_max_ms": round(1000 * max(c), 1), "cpu_total_ms": round(1000 * sum(c))} for w, c in by_what.items()),
                key=lambda r: -r["cpu_total_ms"],
            )[:top],
            "stalls": len(stalls),
            "stall_ms_total": round(sum(s["ms"] for s in stalls)),
            "longest": sorted(stalls, key=lambda s: -s["ms"])[:top],
            "innermost_project_frames": innermost_ours.most_common(top),
            "innermost_frames": innermost_any.most_common(top),
            "stacks": stacks.most_common(top),
            "gil_holds": {
                "count": len(self.gil_holds),
                "max_ms": round(1000 * max((g[1] for g in self.gil_holds), default=0), 1),
                "longest": [{"ms": round(1000 * late, 1), "other_threads_at": list(at)} for _, late, at in sorted(self.gil_holds, key=lambda g: -g[1])[:top]],
                "other_threads_at": Counter(place for _, _, at in self.gil_holds for place in at).most_common(top),
            },
            "gc_in_other_threads": {
                "count": sum(1 for g in self.gcs if g[5] != "main"),
                "max_ms": round(1000 * max((g[1] for g in self.gcs if g[5] != "main"), default=0), 1),
                "over_20ms": sum(1 for g in self.gcs if g[5] != "main" and g[1] > 0.02),
            },
            "gc": {
                str(gen): {
                    "count": len(d),
                    "total_ms": round(1000 * sum(d)),
                    "max_ms": round(1000 * max(d), 1),
                    "cpu_total_ms": round(1000 * sum(gc_cpu_by_gen[gen])),
                    "cpu_max_ms": round(1000 * max(gc_cpu_by_gen[gen]), 1),
                    "over_50ms": sum(1 for x in d if x > 0.05),
                    "collected": sum(g[3] for g in self.gcs if g[2] == gen),
                }
                for gen, d in sorted(gc_by_gen.items())
            },
        }


def print_report(report: dict, out=sys.stdout) -> None:
    print(
        f"loop callbacks: {report['callbacks']}, over 20 ms of main-thread CPU: {report['callbacks_over_cpu_threshold']}, "
        f"over 50 ms: {report['callbacks_over_50ms_cpu']}",
        file=out,
    )
    for r in report["slow_callbacks"]:
        print(f"  x{r['count']:<4d} max {r['cpu_max_ms']:6.1f} ms CPU, {r['cpu_total_ms']:5d} ms in all: {r['what']}", file=out)
    print(f"stalls > threshold: {report['stalls']} ({report['stall_ms_total']} ms in all)", file=out)
    for s in report["longest"]:
        print(
            f"  {s['ms']:7.1f} ms  main-thread CPU {s['main_cpu_ms']} ms, process CPU {s['process_cpu_ms']} ms, "
            f"main thread runnable but off a CPU {s['runqueue_ms']} ms, the machine's steal {s['steal_ms']} ms, "
            f"major page faults {s['major_faults']}, "
            f"GIL held past the watchdog {s['gil_late_ms']} ms, gc {s['gc_ms']} ms (CPU {s['gc_cpu_ms']} ms) {s['gc_generations']}",
            file=out,
        )
        for t in s["top"]:
            print(f"            {t}", file=out)
    samples = (
        ("innermost project frames while the loop was held (samples):", report["innermost_project_frames"]),
        ("innermost frames (samples):", report["innermost_frames"]),
        ("stacks (innermost first):", report["stacks"][:6]),
    )
    for heading, counted in samples:
        print(heading, file=out)
        for label, n in counted:
            print(f"  {n:5d}  {label}", file=out)
    holds = report["gil_holds"]
    print(f"GIL holds (watchdog woke > threshold late): {holds['count']}, longest {holds['max_ms']} ms", file=out)
    for hold in holds["longest"]:
        print(f"  {hold['ms']:7.1f} ms; other threads then at: {'; '.join(hold['other_threads_at']) or '(none busy)'}", file=out)
    print("  where other threads were after each hold:", file=out)
    for place, n in holds["other_threads_at"]:
        print(f"  {n:5d}  {place}", file=out)
    print(f"gc in threads other than the main one: {report['gc_in_other_threads']}", file=out)
    print(f"gc by generation: {report['gc']}", file=out)
