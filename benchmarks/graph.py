"""Inventory engines side by side: Azure Resource Graph versus the ARM lists, on a
tenant of many subscriptions (default scale:100000 over 1,000 subscriptions, 30 ms
per request, ARG's quota at Microsoft's documented example of 15 queries per 5 s).

Each run is the operator's command in a process of its own, the emulator in another:

    aztriage inventory --engine arm|arg --format json   (default options otherwise)

For each engine: the whole process, exec to exit (wall), the in-process figure
(``stats.elapsed_s``), CPU time and peak RSS (wait4), the requests it sent, and the
Resource Graph queries the emulator answered with 429 (the client should draw none:
it waits for the quota to reset instead). Medians of --runs runs. Loopback only.

With --triage-runs N, first `aztriage broken`, `aztriage find NAME` and `aztriage find IP`
(a public address), each N times after one untimed run (the emulator builds the rows those
queries read once, as ARG has its index), each on a fresh quota window: whole process, CPU
time, the ARG queries sent and how many drew a 429, and the CPU the emulator spent answering
meanwhile (on a loaded machine the command waits for the emulator's share of a core as much
as for its own).

    .venv/bin/python benchmarks/graph.py [--vms 100000] [--subscriptions 1000] [--latency-ms 30] [--graph-quota 15/5] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import add_scale_options, aztriage_command, emulator_process, median, scale_conditions, scale_estate, timed_process
from benchmarks.inventory import run_aztriage


def graph_statuses(info: dict) -> list[int]:
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    with urllib.request.urlopen(info["endpoint"] + "/_emulator/requests", context=ctx, timeout=60) as resp:
        log = json.loads(resp.read())
    return [r["status"] for r in log if r["path"].lower().startswith("/providers/microsoft.resourcegraph/")]


def run(info: dict, engine: str) -> dict:
    before = len(graph_statuses(info))
    result = run_aztriage(info, "--engine", engine)
    statuses = graph_statuses(info)[before:]
    return {**result, "graph_queries": len(statuses), "throttled": statuses.count(429)}


def a_vm(info: dict) -> tuple[str, str]:
    """The name and public IP of the last VM by id that has one (ARG queries outside any
    measured run; the first one also has the emulator build its rows)."""
    vm = _graph(info, "resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name | order by id desc | take 1")[0]
    nics = _graph(
        info,
        "resources | where type =~ 'microsoft.network/networkinterfaces' | mv-expand ipconfig = properties.ipConfigurations"
        " | where isnotempty(tostring(ipconfig.properties.publicIPAddress.id))"
        " | project id, pip = tolower(tostring(ipconfig.properties.publicIPAddress.id)) | order by id desc | take 1",
    )
    address = _graph(
        info,
        f"resources | where type =~ 'microsoft.network/publicipaddresses' | where tolower(id) == '{nics[0]['pip']}' | project id, ip = tostring(properties.ipAddress)",
    )
    return vm["name"], address[0]["ip"]


def _graph(info: dict, query: str) -> list[dict]:
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    body = json.dumps({"query": query}).encode()
    req = urllib.request.Request(
        info["endpoint"] + "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer benchmark"},
    )
    with urllib.request.urlopen(req, context=ctx, timeout=600) as resp:
        return json.loads(resp.read())["data"]


def timed_triage(info: dict, command: list[str], quota_window_s: float) -> dict:
    """One `aztriage broken` / `aztriage find` (JSON to /dev/null), with the ARG queries it sent
    and the 429s among them. It starts on a fresh quota window, as an operator's first command
    does (the benchmark's own queries before it would otherwise spend the operator's quota)."""
    from benchmarks.launch import cpu_seconds

    time.sleep(quota_window_s)
    before = len(graph_statuses(info))
    cmd = aztriage_command(info, *command, "--format", "json")
    emulator_cpu = cpu_seconds(info["pid"])
    proc = timed_process(cmd)
    emulator_cpu = cpu_seconds(info["pid"]) - emulator_cpu
    statuses = graph_statuses(info)[before:]
    return {**proc, "queries": len(statuses), "throttled": statuses.count(429), "emulator_cpu_s": emulator_cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    add_scale_options(ap, vms=100_000, subscriptions=1000, runs=3)
    ap.add_argument("--graph-quota", default="15/5", help="queries/seconds (Microsoft's documented example: 15/5)")
    ap.add_argument("--engines", default="arg,arm")
    ap.add_argument("--triage-runs", type=int, default=0, help="also time `aztriage broken`, `aztriage find NAME` and `aztriage find IP` this many times each")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    results: dict[str, list[dict]] = {}
    serve = [*scale_estate(args.vms, args.subscriptions, args.latency_ms), "--graph-quota", args.graph_quota]
    triage: dict[str, list[dict]] = {}
    window_s = float(args.graph_quota.split("/")[1])
    with emulator_process(*serve) as info:
        if args.triage_runs:
            name, address = a_vm(info)
            commands = (("broken", ["broken"]), ("find NAME", ["find", name]), ("find IP", ["find", address]))
            for label, command in commands:
                timed_triage(info, command, window_s)  # the emulator builds what these queries read, once
                triage[label] = [timed_triage(info, command, window_s) for _ in range(args.triage_runs)]
                for r in triage[label]:
                    print(
                        f"  {label} run: whole process {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s (the emulator's {r['emulator_cpu_s']:.2f} s), "
                        f"{r['queries']} ARG queries ({r['throttled']} throttled)",
                        flush=True,
                    )
        for engine in [e for e in args.engines.split(",") if e]:
            results[engine] = []
            for _ in range(args.runs):
                r = run(info, engine)
                results[engine].append(r)
                print(
                    f"  {engine} run: whole process {r['whole_process_s']:.1f} s, in-process {r['in_process_s']:.1f} s, CPU {r['cpu_s']:.1f} s, "
                    f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['requests']} requests ({r['graph_queries']} ARG queries, {r['throttled']} throttled), "
                    f"{r['vms']} VMs, {r['errors']} errors, {r['warnings']} warnings",
                    flush=True,
                )
    print(scale_conditions(args, load, f"ARG quota {args.graph_quota}"))
    print(f"  {'engine':<8} {'whole process':>13} {'in-process':>11} {'CPU':>8} {'requests':>9} {'ARG 429s':>9} {'peak RSS':>9}")
    for engine, runs in results.items():
        m = {k: median([r[k] for r in runs]) for k in ("whole_process_s", "in_process_s", "cpu_s", "requests", "throttled", "peak_rss_mb")}
        print(
            f"  {engine:<8} {m['whole_process_s']:>11.1f} s {m['in_process_s']:>9.1f} s {m['cpu_s']:>6.1f} s {m['requests']:>9.0f} {m['throttled']:>9.0f} {m['peak_rss_mb']:>6.0f} MB   ({len(runs)} runs)"
        )
    for name, runs in triage.items():
        print(
            f"  aztriage {name}: whole process {median([r['wall_s'] for r in runs]):.2f} s, CPU {median([r['cpu_s'] for r in runs]):.2f} s "
            f"(the emulator's {median([r['emulator_cpu_s'] for r in runs]):.2f} s), "
            f"{median([r['queries'] for r in runs]):.0f} ARG queries, {median([r['throttled'] for r in runs]):.0f} throttled (medians of {len(runs)})"
        )
    if args.json:
        print(json.dumps({"inventory": results, "triage": triage}))


if __name__ == "__main__":
    main()
