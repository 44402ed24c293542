"""Memory of the console with every pane opened, as the operator's machine sees it:
scale:10000 over 20 subscriptions, 30 ms per request, the emulator in a process of its own.

`aztriage` runs on a real pseudo-terminal (benchmarks/launch.py's PtyConsole). Once its
table counts every VM, the operator opens each pane in turn (2 Health, 3 Connectivity,
4 Recovery, 5 Checklist, 6 Boot; --dwell seconds each, the background probe running as it
does by default), goes back to 1 Inventory and waits --settle seconds. Reported: the console
process's resident set then (VmRSS, what it holds) and its peak so far (VmHWM), medians of
--runs runs, each a fresh process. Loopback only.

    .venv/bin/python benchmarks/memory.py [--vms 10000] [--subscriptions 20] [--runs 3] [--dwell 3] [--settle 10]

Target (issue 17): <= 400 MB at 10,000 VMs with every pane opened.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import add_scale_options, emulator_process, scale_conditions, scale_estate, spread, status_mb
from benchmarks.launch import PtyConsole, connect_args

PANE_KEYS = (b"2", b"3", b"4", b"5", b"6")


def one_run(info: dict, vms: int, dwell: float, settle: float) -> tuple[float, float, list[float]]:
    console = PtyConsole(connect_args(info), size=(160, 50))
    try:
        if console.wait_for(f" {vms} VMs".encode(), timeout=120) is None:
            raise SystemExit(f"the console showed no table of {vms} VMs in time")
        after_panes = []
        for key in (*PANE_KEYS, b"1"):
            console.drain(0.1)
            os.write(console.master, key)
            deadline = time.perf_counter() + dwell
            while time.perf_counter() < deadline:
                console.drain(0.1)
            after_panes.append(status_mb(console.proc.pid, "VmRSS"))
        deadline = time.perf_counter() + settle
        while time.perf_counter() < deadline:
            console.drain(0.2)
        return status_mb(console.proc.pid, "VmRSS"), status_mb(console.proc.pid, "VmHWM"), after_panes
    finally:
        console.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scale_options(ap, runs=3)
    ap.add_argument("--dwell", type=float, default=3.0, help="seconds on each pane")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds back on Inventory before the figure")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    held, peaks = [], []
    with emulator_process(*scale_estate(args.vms, args.subscriptions, args.latency_ms)) as info:
        for _ in range(args.runs):
            now, peak, panes = one_run(info, args.vms, args.dwell, args.settle)
            held.append(now)
            peaks.append(peak)
            steps = ", ".join(f"{k.decode()}: {mb:.0f}" for k, mb in zip((*PANE_KEYS, b"1"), panes))
            print(f"  run: after each pane (MB) {steps}; {args.settle:g} s later {now:.0f} MB, peak {peak:.0f} MB", flush=True)
    print(scale_conditions(args, load))
    print(f"  the console with every pane opened (whole process, VmRSS)  {spread(held, 'MB', counted='runs')}   target <= 400 MB")
    print(f"  its peak (VmHWM)                                           {spread(peaks, 'MB')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
