"""Inventory benchmark: scale:10000 over 20 subscriptions, 30 ms per request.

Two ways of getting the same estate, each run as the operator runs it, in a process of
its own, the emulator in another:

- aztriage: `aztriage inventory --format json` with default options (the instance views
  of at most 500 VMs included), its output written to a file.
- the per-VM pattern of scripts and `az vm list -d` (this file's `per_vm_inventory`, not
  part of the product): list the VMs, then per VM its instance view, each NIC and each
  public IP, through the SDK's operations; one VM after another as azure-cli does, or
  --per-vm-concurrency at once as a script might.

For each run: the whole process, exec to exit, as the user waits for it (the Python
start, the SDK's import and the output included); the in-process figure (the inventory
call alone: aztriage's `stats.elapsed_s`, the peer's own clock); the process's CPU time
(user + system, from wait4) and the requests it sent. CPU time and request counts do not
depend on what else the machine is running; wall times do. Medians of --runs runs.
Loopback only.

    .venv/bin/python benchmarks/inventory.py [--vms 10000] [--subscriptions 20] [--latency-ms 30] [--runs 5]
        [--per-vm-runs 1] [--per-vm-concurrency 1]

The peer at --per-vm-concurrency 1 (the default) is `az vm list -d` itself: about 25,000
requests one after another: 860 s (14 minutes) at 30 ms each on the sixth stop's machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import add_scale_options, aztriage_command, emulator_process, median, scale_conditions, scale_estate, timed_json


async def per_vm_inventory(backend: Any, concurrency: int = 1) -> int:
    """The per-VM pattern, kept here for comparison only: list each subscription's VMs, then
    per VM its instance view (GET the VM with $expand=instanceView), each NIC and each NIC's
    public IP, one SDK call each. With ``concurrency`` 1 this is `az vm list -d` as azure-cli
    does it (`list_vm`: `[get_vm_details(...) for v in vm_list]`, one VM after another); a
    script may read several VMs at once. Returns the number of VMs seen."""
    subs = await backend.list_subscriptions()
    semaphore = asyncio.Semaphore(concurrency)
    count = 0

    async def per_vm(sub_id: str, vm: Any) -> None:
        compute = backend.client("compute", sub_id)
        network = backend.client("network", sub_id)
        rg = vm["id"].split("/")[4]
        async with semaphore:
            await compute.virtual_machines.get(rg, vm["name"], expand="instanceView")
            for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
                parts = ref["id"].split("/")
                nic = await network.network_interfaces.get(parts[4], parts[-1])
                for cfg in nic["properties"].get("ipConfigurations", []):
                    pip_id = (cfg.get("properties", {}).get("publicIPAddress") or {}).get("id")
                    if pip_id:
                        p = pip_id.split("/")
                        await network.public_ip_addresses.get(p[4], p[-1])

    for sub in subs:
        vms = [vm async for vm in backend.client("compute", sub.subscription_id).virtual_machines.list_all()]
        count += len(vms)
        await asyncio.gather(*(per_vm(sub.subscription_id, vm) for vm in vms))
    return count


def per_vm_child(endpoint: str, ca_file: str, concurrency: str) -> None:
    """The peer as a process of its own: prints its in-process wall time, requests, VMs."""
    from backend.azure.backend import AzureBackend
    from backend.settings import ConnectionSettings

    settings = ConnectionSettings(arm_endpoint=endpoint, ca_file=ca_file, auth="none").validate()

    async def main() -> dict:
        backend = AzureBackend(settings)
        try:
            started = time.perf_counter()
            vms = await per_vm_inventory(backend, int(concurrency))
            return {"in_process_s": time.perf_counter() - started, "requests": backend.requests, "vms": vms}
        finally:
            await backend.close()

    print(json.dumps(asyncio.run(main())))


def run_aztriage(info: dict, *options: str) -> dict:
    """One `aztriage inventory --format json` (with ``options``) against the emulator."""
    proc, doc = timed_json(aztriage_command(info, "inventory", "--format", "json", *options))
    return {
        "whole_process_s": proc["wall_s"],
        "cpu_s": proc["cpu_s"],
        "peak_rss_mb": proc["peak_rss_mb"],
        "in_process_s": doc["stats"]["elapsed_s"],
        "requests": doc["stats"]["requests"],
        "vms": len(doc["vms"]),
        "views_read": sum(1 for vm in doc["vms"] if vm["instance_view_read"]),
        "errors": len(doc["errors"]),
        "warnings": len(doc.get("warnings", ())),
        "engine": doc["stats"].get("engine", "arm"),
    }


def run_per_vm(info: dict, concurrency: int) -> dict:
    proc, doc = timed_json([sys.executable, __file__, "--per-vm-child", info["endpoint"], info["ca_file"], str(concurrency)])
    return {"whole_process_s": proc["wall_s"], "cpu_s": proc["cpu_s"], "peak_rss_mb": proc["peak_rss_mb"], **doc}


def say_run(label: str, r: dict) -> dict:
    print(
        f"  {label} whole process {r['whole_process_s']:.2f} s, in-process {r['in_process_s']:.2f} s, CPU {r['cpu_s']:.2f} s, {r['requests']} requests",
        flush=True,
    )
    return r


def summary(runs: list[dict]) -> dict:
    keys = ("whole_process_s", "in_process_s", "cpu_s", "requests", "peak_rss_mb")
    return {"runs": len(runs), "vms": runs[0]["vms"], **{k: round(median([r[k] for r in runs]), 3) for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser()
    add_scale_options(ap)
    ap.add_argument("--per-vm-runs", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the result as JSON too")
    ap.add_argument(
        "--per-vm-concurrency",
        type=int,
        default=1,
        help="VMs the per-VM peer reads at once (1: az vm list -d, one VM after another, as azure-cli does)",
    )
    ap.add_argument("--per-vm-child", nargs=3, metavar=("ENDPOINT", "CA", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.per_vm_child:
        per_vm_child(*args.per_vm_child)
        return
    load = os.getloadavg()[0]
    with emulator_process(*scale_estate(args.vms, args.subscriptions, args.latency_ms)) as info:
        ours = [say_run("aztriage run:", run_aztriage(info)) for _ in range(args.runs)]
        peer = [say_run("per-VM run:  ", run_per_vm(info, args.per_vm_concurrency)) for _ in range(args.per_vm_runs)]
    a = summary(ours)
    print(scale_conditions(args, load))
    print(f"  {'':<44} {'whole process':>13} {'in-process':>11} {'CPU':>8} {'requests':>9} {'peak RSS':>9}")
    rows = [("aztriage inventory --format json (defaults)", a)]
    if peer:
        who = "az vm list -d" if args.per_vm_concurrency == 1 else f"a script, {args.per_vm_concurrency} VMs at once"
        rows.append((f"per-VM gets ({who})", summary(peer)))
    for name, s in rows:
        print(
            f"  {name:<44} {s['whole_process_s']:>11.2f} s {s['in_process_s']:>9.2f} s {s['cpu_s']:>6.2f} s {s['requests']:>9.0f} {s['peak_rss_mb']:>6.0f} MB   ({s['runs']} runs, {s['vms']} VMs)"
        )
    views = median([r["views_read"] for r in ours])
    print(f"  aztriage: {(a['requests'] - 1 - views) / args.subscriptions:.1f} requests per subscription plus {views:.0f} instance views (cap 500)")
    if peer:
        p = rows[1][1]
        print(
            f"  per-VM is {p['whole_process_s'] / a['whole_process_s']:.1f}x slower whole-process, {p['in_process_s'] / a['in_process_s']:.1f}x in-process (target >= 20x)"
        )
    if args.json:
        print(json.dumps({"aztriage": a, "per_vm": rows[1][1] if peer else None, "runs": {"aztriage": ours, "per_vm": peer}}))


if __name__ == "__main__":
    main()
