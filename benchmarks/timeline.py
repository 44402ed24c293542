"""One VM's timeline over 90 days of a busy subscription: 10,000 activity-log entries in
the VM's resource group (its own operations and its neighbours'), served by the emulator
in a process of its own at 30 ms per request, Azure Monitor's pages of 200.

Measured, medians of --runs runs:
- whole process: ``aztriage timeline --vm web-prod-01 --since 90d --format json``, exec to
  exit (wall), CPU time and peak RSS;
- in process: reading the activity log (the data arriving: 50 pages), then the timeline
  made from what arrived (grouping by correlation id, the merge with health and changes,
  who stopped it, newest-first order): the issue's "<= 1 s after the data arrives".

    .venv/bin/python benchmarks/timeline.py [--entries 10000] [--runs 5] [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import aztriage_command, conditions, emulator_process, median, timed_json, whole_process_medians

SUB = "3f2b8c1e-7a4d-4e2b-9c61-5d8a0f4b2e17"  # the demo's Contoso Production
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-web-prod/providers"
TARGETS = [f"{GROUP}/Microsoft.Compute/virtualMachines/web-prod-0{n}" for n in (1, 2, 3)] + [f"{GROUP}/Microsoft.Network/networkSecurityGroups/nsg-web-prod"]
OPERATIONS = [
    "Microsoft.Compute/virtualMachines/restart/action",
    "Microsoft.Compute/virtualMachines/write",
    "Microsoft.Compute/virtualMachines/extensions/write",
    "Microsoft.Network/networkSecurityGroups/write",
]


def busy_estate(entries: int, now: datetime) -> dict:
    from backend.emulator.activitylog import event_doc
    from backend.emulator.estates import load_estate

    estate = load_estate("demo", now=now)
    span = 89 * 86400
    for n in range(entries // 2):
        target = TARGETS[n % len(TARGETS)]
        operation = OPERATIONS[n % len(OPERATIONS)] if "virtualMachines" in target else OPERATIONS[-1]
        at = now - timedelta(seconds=span * n / (entries // 2))
        correlation = str(uuid.UUID(int=n + 1))
        for status, shift in (("Started", 0), ("Succeeded", 30)):
            estate["activityLog"].append(
                event_doc(
                    subscription_id=SUB,
                    tenant_id="",
                    resource_id=target,
                    operation=operation,
                    status=status,
                    at=(at + timedelta(seconds=shift)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    caller=f"pipeline-{n % 7}@contoso.com",
                    correlation_id=correlation,
                    method="POST",
                    event_name="BeginRequest" if status == "Started" else "EndRequest",
                )
            )
    return estate


async def in_process(info: dict, runs: int) -> dict:
    from backend.azure.backend import AzureBackend
    from backend.report import find_vm
    from backend.settings import ConnectionSettings
    from backend.timeline import activity_entries, build_timeline, related_resources, who_stopped

    settings = ConnectionSettings(arm_endpoint=info["endpoint"], ca_file=info["ca_file"], auth="none")
    backend = AzureBackend(settings.validate())
    try:
        inv = await backend.inventory(instance_views=0)
        vm = find_vm(inv, "web-prod-01")
        now = datetime.now(UTC)
        arrive, made, total, count = [], [], [], 0
        for _ in range(runs):
            started = time.perf_counter()
            events = await backend.activity_log(SUB, start=now - timedelta(days=90), end=now, resource_group="rg-web-prod")
            arrive.append(time.perf_counter() - started)
            count = len(events)
            started = time.perf_counter()
            related = related_resources(vm)
            entries = activity_entries(events, vm, related)
            entries.sort(key=lambda e: e.time, reverse=True)
            who_stopped(vm, events, [])
            made.append(time.perf_counter() - started)
            started = time.perf_counter()
            await build_timeline(backend, vm, since=now - timedelta(days=90), until=now)
            total.append(time.perf_counter() - started)
        return {"events": count, "entries": len(entries), "arrive_s": median(arrive), "made_s": median(made), "build_timeline_s": median(total)}
    finally:
        await backend.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--latency-ms", type=float, default=30)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "busy.json"
        path.write_text(json.dumps(busy_estate(args.entries, datetime.now(UTC))))
        with emulator_process("--estate", str(path), "--latency-ms", str(args.latency_ms)) as info:
            cmd = aztriage_command(info, "timeline", "--vm", "web-prod-01", "--since", "90d", "--format", "json")
            whole = []
            for _ in range(args.runs):
                figures, doc = timed_json(cmd)
                whole.append(figures)
                shown = len(doc["entries"])
            inner = asyncio.run(in_process(info, args.runs))
    print(conditions(f"{args.entries} activity-log entries over 90 days in the VM's group, {args.latency_ms:g} ms per request", load))
    print(f"  whole process (aztriage timeline --since 90d --format json): {whole_process_medians(whole)}; {shown} entries shown")
    print(
        f"  in process: the activity log read ({inner['events']} entries) {inner['arrive_s']:.2f} s; "
        f"the timeline made from it ({inner['entries']} operations of the VM) {inner['made_s'] * 1000:.0f} ms; "
        f"build_timeline as a whole (activity log, health, changes) {inner['build_timeline_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
