"""The console on a tenant of many subscriptions (default scale:100000 over 1,000, 30 ms per
request, Resource Graph's quota at Microsoft's documented example of 15 queries per 5 s),
as the operator waits for it: `aztriage --arm-endpoint ... --auth none --no-auto-probe` on a
real pseudo-terminal, the emulator in a process of its own.

Above graph_threshold subscriptions the console shows what is broken first (Resource Graph,
backend/search.py), then loads every VM through Resource Graph. Measured per run, whole
process from the spawn: seconds to the Inventory's status line saying it shows what is
broken, seconds to the table of every VM (" 100000 VMs"), the CPU the console had used by
each, its peak RSS (VmHWM) `--settle` seconds after the table, and the Resource Graph queries
and 429s the emulator saw. Medians of --runs runs. Loopback only.

The background probe is off (--no-auto-probe): with it, the console would probe every
running VM of the tenant, which is not what this measures.

    .venv/bin/python benchmarks/tenant.py [--vms 100000] [--subscriptions 1000] [--latency-ms 30] [--graph-quota 15/5] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import add_scale_options, emulator_process, median, scale_conditions, scale_estate, status_mb
from benchmarks.graph import a_vm, graph_statuses
from benchmarks.launch import PtyConsole, connect_args, cpu_seconds

BROKEN_MARKER = b"what is broken, every VM loading"


def one_run(info: dict, vms: int, settle_s: float, timeout_s: float) -> dict:
    before = len(graph_statuses(info))
    console = PtyConsole([*connect_args(info), "--no-auto-probe"], size=(160, 50))
    try:
        shown = console.wait_for(BROKEN_MARKER, timeout=120)
        if shown is None:
            raise SystemExit("the console did not show what is broken in time")
        broken_s, broken_cpu = shown - console.started, cpu_seconds(console.proc.pid)
        whole = console.wait_for(f" {vms} VMs".encode(), timeout=timeout_s)
        if whole is None:
            raise SystemExit(f"the console showed no table of {vms} VMs in time")
        every_s, every_cpu = whole - console.started, cpu_seconds(console.proc.pid)
        time.sleep(settle_s)
        console.drain()
        rss = status_mb(console.proc.pid, "VmHWM")
    finally:
        console.close()
    statuses = graph_statuses(info)[before:]
    return {
        "broken_s": broken_s,
        "broken_cpu_s": broken_cpu,
        "every_s": every_s,
        "every_cpu_s": every_cpu,
        "peak_rss_mb": rss,
        "graph_queries": len(statuses),
        "throttled": statuses.count(429),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scale_options(ap, vms=100_000, subscriptions=1000, runs=1)
    ap.add_argument("--graph-quota", default="15/5")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after the table of every VM before the peak RSS is read")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the table of every VM")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    serve = [*scale_estate(args.vms, args.subscriptions, args.latency_ms), "--graph-quota", args.graph_quota]
    runs = []
    with emulator_process(*serve) as info:
        a_vm(info)  # the emulator builds its VMs' rows (instance views) once, outside the runs
        for _ in range(args.runs):
            time.sleep(float(args.graph_quota.split("/")[1]))  # a fresh quota window
            r = one_run(info, args.vms, args.settle, args.timeout)
            runs.append(r)
            print(
                f"  run: what is broken {r['broken_s']:.2f} s ({r['broken_cpu_s']:.2f} s CPU), every VM {r['every_s']:.1f} s ({r['every_cpu_s']:.1f} s CPU), "
                f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['graph_queries']} ARG queries ({r['throttled']} throttled)",
                flush=True,
            )
    print(scale_conditions(args, load, f"ARG quota {args.graph_quota}"))
    m = {k: median([r[k] for r in runs]) for k in runs[0]}
    print(f"  console to what is broken (whole process)   {m['broken_s']:.2f} s, {m['broken_cpu_s']:.2f} s CPU")
    print(f"  console to the table of every VM           {m['every_s']:.1f} s, {m['every_cpu_s']:.1f} s CPU")
    print(f"  peak RSS of the console ({args.settle:g} s after)      {m['peak_rss_mb']:.0f} MB   target <= 1024 MB")
    print(f"  Resource Graph queries                      {m['graph_queries']:.0f} ({m['throttled']:.0f} throttled)   (medians of {len(runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
