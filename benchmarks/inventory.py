"""Inventory benchmark: scale:10000 over 20 subscriptions, 30 ms per request.

Prints wall time, request count and peak RSS of the subscription-wide
inventory (median of --runs, each in a fresh process), and the same for the
per-VM pattern of scripts and `az vm list -d` (list, then per VM: instance
view, NIC, public IP). Loopback only.

    .venv/bin/python benchmarks/inventory.py [--vms 10000] [--subscriptions 20] [--latency-ms 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import ROOT, emulator_process, median  # noqa: E402


def child(endpoint: str, ca_file: str, mode: str) -> None:
    from backend.azure.backend import AzureBackend
    from backend.settings import ConnectionSettings

    settings = ConnectionSettings(arm_endpoint=endpoint, ca_file=ca_file, auth="none").validate()
    # The SDK's import (about 1 s here) is a once-per-process cost, paid by the console in a
    # thread after its first frame; it is reported apart from the inventory's wall time.
    from backend.azure.warmup import import_sdk

    t0 = time.perf_counter()
    import_sdk()
    import_s = time.perf_counter() - t0

    async def main() -> dict:
        backend = AzureBackend(settings)
        try:
            started = time.perf_counter()
            if mode == "inventory":
                inv = await backend.inventory(instance_views=0)
                vms = len(inv.vms)
                errors = len(inv.errors)
            else:
                vms = await backend.inventory_per_vm()
                errors = 0
            wall = time.perf_counter() - started
            return {"wall_s": wall, "requests": backend.requests, "vms": vms, "errors": errors, "sdk_import_s": import_s}
        finally:
            await backend.close()

    out = asyncio.run(main())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def run_child(info: dict, mode: str) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--child", mode, info["endpoint"], info["ca_file"]],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--subscriptions", type=int, default=20)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--per-vm-runs", type=int, default=1)
    ap.add_argument("--child", nargs=3, metavar=("MODE", "ENDPOINT", "CA"))
    args = ap.parse_args()
    if args.child:
        mode, endpoint, ca = args.child
        child(endpoint, ca, mode)
        return
    with emulator_process("--estate", f"scale:{args.vms}", "--subscriptions", str(args.subscriptions), "--latency-ms", str(args.latency_ms)) as info:
        inv = [run_child(info, "inventory") for _ in range(args.runs)]
        print("inventory runs:", ", ".join(f"{r['wall_s']:.2f} s" for r in inv), flush=True)
        per_vm = [run_child(info, "per-vm") for _ in range(args.per_vm_runs)]

    def summary(name: str, runs: list[dict]) -> dict:
        return {
            "pattern": name,
            "runs": len(runs),
            "vms": runs[0]["vms"],
            "wall_s_median": round(median([r["wall_s"] for r in runs]), 3),
            "requests_median": median([r["requests"] for r in runs]),
            "peak_rss_mb_median": round(median([r["peak_rss_mb"] for r in runs]), 1),
            "sdk_import_s_median": round(median([r["sdk_import_s"] for r in runs]), 3),
        }

    print(f"scale:{args.vms} over {args.subscriptions} subscriptions, {args.latency_ms:g} ms per request")
    a = summary("subscription-wide lists (aztriage)", inv)
    results = [a] + ([summary("per-VM gets (az vm list -d style)", per_vm)] if per_vm else [])
    for s in results:
        print(f"  {s['pattern']:<40} wall {s['wall_s_median']:>7.3f} s  requests {s['requests_median']:>7.0f}  peak RSS {s['peak_rss_mb_median']:>6.1f} MB  ({s['runs']} runs, {s['vms']} VMs)")
    print(f"  (the Azure SDK import, once per process and not in the wall times above: {a['sdk_import_s_median']:.2f} s)")
    per_sub = (a["requests_median"] - 1) / args.subscriptions
    print(f"  requests per subscription (aztriage): {per_sub:.1f}")
    if per_vm:
        print(f"  speed-up vs per-VM: {results[1]['wall_s_median'] / a['wall_s_median']:.1f}x")


if __name__ == "__main__":
    main()
