"""Soak: the console on a large estate with automatic refresh, for a bounded time.

    .venv/bin/python benchmarks/soak.py [--estate scale:10000] [--interval 2] [--seconds 600]

The emulator runs in its own process on loopback (so its CPU and memory do not
count against the console's); the console runs headless in this process
(App.run_test) with the real adapter and automatic refresh every --interval
seconds. Reported, after the first load has landed ("start") and at the end:
RSS, asyncio tasks, Textual workers (running and total), and the event loop's
lag (a 50 ms timer measuring its own lateness: p50/p99/max over the whole run).

Targets (issue 8): RSS flat (end within 10 % of start, after the first refresh),
no leaked workers or tasks, loop lag p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TICK_S = 0.05


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_emulator_process(estate: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "emulator", "serve", "--estate", estate],
        cwd=ROOT,
        stdin=subprocess.PIPE,  # kept open: the server stops when its standard input closes
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the emulator did not start: " + proc.stderr.read().strip())
    return proc, json.loads(line)


class LoopLag:
    """A timer that wakes every TICK_S and records how late it woke."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            self.lags.append(max(0.0, loop.time() - due))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="soak-loop-lag")

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def pct(self, p: float) -> float:
        s = sorted(self.lags)
        return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def snapshot(app, lag_task_count: int = 1) -> dict:
    gc.collect()
    workers = list(app.workers)
    return {
        "rss_mb": round(rss_mb(), 1),
        "asyncio_tasks": len(asyncio.all_tasks()) - lag_task_count,
        "workers_total": len(workers),
        "workers_running": sum(1 for w in workers if w.is_running),
        "loads": app.loads,
        "failures": app.failures,
    }


async def soak(endpoint: str, ca_file: str, seconds: float, interval: float) -> dict:
    from backend.config import Config
    from backend.settings import ConnectionSettings
    from tui.app import AztriageApp

    settings = ConnectionSettings(arm_endpoint=endpoint, ca_file=ca_file, auth="none", demo=True)
    # Config() straight away: the file's minimum interval is for operators; the soak wants 2 s.
    app = AztriageApp(settings, config=Config(refresh_interval=interval))
    lag = LoopLag()
    async with app.run_test(size=(160, 50)) as pilot:
        t0 = time.perf_counter()
        while app.loads < 1 and app.failures == 0:
            await pilot.pause(0.1)
            if time.perf_counter() - t0 > 300:
                raise SystemExit("the first load did not land within 300 s")
        first_load_s = time.perf_counter() - t0
        await pilot.pause(0.5)
        lag.start()
        start = snapshot(app)
        start_loads = app.loads
        deadline = time.perf_counter() + seconds
        samples = []
        while time.perf_counter() < deadline:
            await asyncio.sleep(min(10.0, max(0.0, deadline - time.perf_counter())))
            samples.append({"t_s": round(time.perf_counter() - t0, 1), "rss_mb": round(rss_mb(), 1), "loads": app.loads})
        # Let an in-flight refresh land so the end is measured between refreshes, as the start was.
        wait_until = time.perf_counter() + 60
        while any(w.is_running for w in app.workers) and time.perf_counter() < wait_until:
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        end = snapshot(app)
        lag.stop()
    return {
        "seconds": seconds,
        "interval_s": interval,
        "first_load_s": round(first_load_s, 2),
        "refreshes": end["loads"] - start_loads,
        "vms": len(app.inventory.vms) if app.inventory else 0,
        "start": start,
        "end": end,
        "rss_growth_pct": round(100 * (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"], 1),
        "loop_lag_ms": {
            "p50": round(1000 * lag.pct(0.50), 1),
            "p99": round(1000 * lag.pct(0.99), 1),
            "max": round(1000 * max(lag.lags, default=float("nan")), 1),
            "samples": len(lag.lags),
        },
        "rss_samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estate", default="scale:10000")
    parser.add_argument("--interval", type=float, default=2.0, help="automatic refresh every N seconds")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to soak after the first load")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args()
    os.environ.setdefault("XDG_STATE_HOME", "/tmp/aztriage-bench/state")
    os.environ.setdefault("XDG_DATA_HOME", "/tmp/aztriage-bench/data")
    import logging

    os.makedirs("/tmp/aztriage-bench", exist_ok=True)
    logging.basicConfig(filename="/tmp/aztriage-bench/soak.log", level=logging.INFO)
    emulator, info = start_emulator_process(args.estate)
    try:
        result = asyncio.run(soak(info["endpoint"], info["ca_file"], args.seconds, args.interval))
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
    if args.json:
        print(json.dumps(result, indent=2))
    s, e, lag = result["start"], result["end"], result["loop_lag_ms"]
    print(f"estate {args.estate}: {result['vms']} VMs, refresh every {args.interval:g} s, soak {args.seconds:g} s, {result['refreshes']} refreshes (first load {result['first_load_s']} s)")
    print(f"RSS             start {s['rss_mb']} MB  end {e['rss_mb']} MB  ({result['rss_growth_pct']:+} %)")
    print(f"asyncio tasks   start {s['asyncio_tasks']}  end {e['asyncio_tasks']}")
    print(f"workers         start {s['workers_total']} ({s['workers_running']} running)  end {e['workers_total']} ({e['workers_running']} running)")
    print(f"loop lag        p50 {lag['p50']} ms  p99 {lag['p99']} ms  max {lag['max']} ms  ({lag['samples']} ticks)")
    print(f"failed loads    {e['failures']}")
    ok = result["rss_growth_pct"] <= 10 and e["asyncio_tasks"] <= s["asyncio_tasks"] + 2 and e["workers_running"] == 0 and lag["p99"] <= 50
    print("targets:", "met" if ok else "NOT met (RSS within 10 %, no leaked tasks/workers, p99 <= 50 ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
