"""Console speed on a large estate (default scale:10000): prints medians of several runs.

    .venv/bin/python benchmarks/tui.py [--estate scale:10000] [--runs 5]

1. process start to first frame: `aztriage --demo --demo-estate ESTATE` in a real
   pseudo-terminal, from spawn to the first screen bytes (the header's pane tabs).
   The Azure SDK and the emulator start after that frame.
2. data arrived to 10k rows shown: the Inventory is fetched first; then the clock runs
   from handing it to the app to the first frame drawn with every row in the table.
   The longest event-loop stall during that time is reported too.
3. filter keystroke to redrawn table, and 4. cursor move (down) to redraw: from the key
   event to the next frame written.
5. peak RSS of the console process (the emulator runs in a separate process here).
Beside 3 and 5, the whole-process figures (benchmarks/launch.py's ``keys_and_memory``):
`aztriage` itself on a pseudo-terminal against the same emulator, a filter keystroke
written to the terminal to the bytes that show it, and that process's peak RSS.

Targets (issue 3): first frame <= 0.6 s, 10k rows <= 1 s, filter <= 50 ms, RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._emulator import aztriage_command, emulator_process  # noqa: E402

# --- 1. process start to first frame -----------------------------------------------------


def first_frame_s(estate: str, size=(80, 24), timeout: float = 30.0) -> float:
    """Spawn the console on a pty; seconds until its first frame (header tabs) is written."""
    from benchmarks.launch import seconds_until_shown

    # Textual writes each cell; the tab text shows the first frame is out.
    elapsed = seconds_until_shown(["--demo", "--demo-estate", estate], b"Inventory", size=size, timeout=timeout)
    if elapsed is None:
        raise SystemExit(f"the console showed no first frame within {timeout:.0f} s")
    return elapsed


# --- 2-5. in-process measurements against a separate emulator process ---------------------


class FrameClock:
    """Timestamps of the frames the app writes (wraps App._display), each with what
    `probe()` said when it was drawn (e.g. how many rows the table held)."""

    def __init__(self, app, probe=lambda: None) -> None:
        self.frames: list[tuple[float, object]] = []
        self.probe = probe
        original = app._display

        def display(screen, renderable):
            state = self.probe()
            result = original(screen, renderable)
            self.frames.append((time.perf_counter(), state))
            return result

        app._display = display

    def first_after(self, t: float, state=None) -> float | None:
        for when, seen in self.frames:
            if when >= t and (state is None or seen == state):
                return when
        return None


class LoopLag:
    """The longest gap between ticks of a 5 ms ticker: how long the event loop was blocked."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> float:
        if self._task:
            self._task.cancel()
        return self.worst


async def wait_frame_after(clock: FrameClock, t: float, state=None, timeout: float = 30.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        frame = clock.first_after(t, state)
        if frame is not None:
            return frame
        await asyncio.sleep(0.001)
    raise SystemExit("no frame drawn in time")


async def in_process(endpoint: str, ca_file: str, runs: int) -> dict[str, list[float]]:
    from backend.composition import create_backend
    from backend.config import Config
    from backend.settings import ConnectionSettings
    from tui.app import AztriageApp
    from tui.messages import InventoryChanged
    from widgets.vm_table import VmTable

    settings = ConnectionSettings(arm_endpoint=endpoint, ca_file=ca_file, auth="none", demo=True)
    backend = create_backend(settings)
    inventory = await backend.inventory()
    await backend.close()
    results: dict[str, list[float]] = {"rows_shown_s": [], "rows_loop_stall_s": [], "filter_ms": [], "cursor_ms": []}

    class BenchApp(AztriageApp):
        CSS_PATH = str(ROOT / "tui" / "app.tcss")

        async def connect(self) -> None:  # the data arrives from the benchmark instead
            return None

    for _ in range(runs):
        app = BenchApp(settings, config=Config(refresh_interval=0))
        app.connect = lambda: None
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause(0.2)
            table = app.screen.query_one(VmTable)
            clock = FrameClock(app, probe=lambda: (table.row_count, table.filter_text, table.cursor_row))  # noqa: B023  (awaited in this iteration)
            lag = LoopLag()
            lag.start()
            t0 = time.perf_counter()
            app.inventory = inventory
            app.broadcast(InventoryChanged(inventory))
            frame = await wait_frame_after(clock, t0)
            while clock.frames[-1][1][0] != len(inventory.vms):
                await asyncio.sleep(0.001)
            frame = next(when for when, state in clock.frames if when >= t0 and state[0] == len(inventory.vms))
            results["rows_shown_s"].append(frame - t0)
            await pilot.pause(0.1)
            results["rows_loop_stall_s"].append(lag.stop())

            table.focus()
            await pilot.pause(0.1)
            for key in ("down", "down", "down"):
                t = time.perf_counter()
                expected = (table.row_count, table.filter_text, table.cursor_row + 1)
                await pilot.press(key)
                results["cursor_ms"].append((await wait_frame_after(clock, t, expected) - t) * 1000)
            await pilot.press("slash")
            await pilot.pause(0.1)
            for key in ("w", "e", "b", "backspace"):
                t = time.perf_counter()
                await pilot.press(key)
                await pilot.pause(0.05)
                expected = (table.row_count, table.filter_text, table.cursor_row)
                results["filter_ms"].append((await wait_frame_after(clock, t, expected) - t) * 1000)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--estate", default="scale:10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    frames = [first_frame_s(args.estate) for _ in range(args.runs)]
    with emulator_process("--estate", args.estate) as info:
        results = asyncio.run(in_process(info["endpoint"], info["ca_file"], args.runs))
        from benchmarks.launch import keys_and_memory

        inventory = aztriage_command(info, "inventory", "--instance-views", "0", "--format", "json")
        vms = len(json.loads(subprocess.run(inventory, cwd=ROOT, capture_output=True, check=True).stdout)["vms"])
        whole = [keys_and_memory(info, vms, settle_s=2.0) for _ in range(args.runs)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"estate {args.estate}, {args.runs} runs, medians (min-max)")
    print(f"  process start to first frame     {med(frames):7.3f} s   ({min(frames):.3f}-{max(frames):.3f})   target <= 0.6 s")
    r = results["rows_shown_s"]
    print(f"  data arrived to 10k rows shown   {med(r):7.3f} s   ({min(r):.3f}-{max(r):.3f})   target <= 1 s")
    s = results["rows_loop_stall_s"]
    print(f"    longest event-loop stall        {med(s) * 1000:7.1f} ms  ({min(s) * 1000:.1f}-{max(s) * 1000:.1f})")
    f = results["filter_ms"]
    print(f"  filter keystroke to redraw       {med(f):7.1f} ms  ({min(f):.1f}-{max(f):.1f})   target <= 50 ms")
    keys = [k * 1000 for seconds, _moves, _peak in whole for k in seconds]
    print(f"    whole process: key written to the pty to the bytes that show it  {med(keys):7.1f} ms  ({min(keys):.1f}-{max(keys):.1f})")
    c = results["cursor_ms"]
    print(f"  cursor move to redraw            {med(c):7.1f} ms  ({min(c):.1f}-{max(c):.1f})")
    print(f"  peak RSS of the console          {peak_mb:7.0f} MB                     target <= 300 MB   (this benchmark's own process)")
    rss = [peak for _keys, _moves, peak in whole]
    print(f"    whole process: the console's own peak RSS, 2 s after its table  {med(rss):7.0f} MB  ({min(rss):.0f}-{max(rss):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
