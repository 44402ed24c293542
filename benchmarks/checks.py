"""Checklist benchmark: every rule over a scale:N estate.

In process, without HTTP: the estate's documents are joined into an Inventory
exactly as the adapter joins them (backend.azure.join.join_subscription), then
every rule runs and the summary (per VM, per subscription, per rule) is built.
The console re-runs this on every refresh, in a thread; about a second at
10,000 VMs is the budget.

Whole process, as the operator waits for it: `aztriage check --format json`
spawned against the emulator (in a process of its own, --latency-ms per
request), exec to exit, output written: the Python start, the imports, the
inventory and the checklist. Medians of --runs runs. Loopback only.

    .venv/bin/python benchmarks/checks.py [--vms 10000] [--subscriptions 20] [--latency-ms 30] [--runs 5] [--no-whole-process]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import add_scale_options, aztriage_command, emulator_process, scale_estate, timed_process, whole_process_medians


def build_inventory(vms: int, subscriptions: int):
    from backend.azure.join import join_subscription
    from backend.models import Inventory, Subscription
    from benchmarks._estate import scale_lists

    estate, docs = scale_lists(vms, subscriptions)
    parts = [join_subscription(sub, d) for sub, d in docs.items()]
    return Inventory(
        subscriptions=tuple(Subscription(s["subscriptionId"], s["displayName"]) for s in estate["subscriptions"]),
        vms=tuple(vm for p in parts for vm in p.vms),
        load_balancers={k: v for p in parts for k, v in p.load_balancers.items()},
        availability_sets={k: v for p in parts for k, v in p.availability_sets.items()},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scale_options(parser)
    parser.add_argument("--no-whole-process", action="store_true", help="only the in-process figure")
    args = parser.parse_args()

    from backend.checks import CheckContext, RoleSettings, run_checks

    inv = build_inventory(args.vms, args.subscriptions)
    ctx = CheckContext(roles=RoleSettings(tag="role", pattern=r"^(?P<role>[a-z]+)-"), usages={})
    times = []
    findings = 0
    for _ in range(args.runs):
        started = time.perf_counter()
        result = run_checks(inv, ctx)
        result.summary()
        times.append(time.perf_counter() - started)
        findings = len(result.findings)
    print(
        f"checklist over {len(inv.vms)} VMs in {len(inv.subscriptions)} subscriptions: {findings} findings, in process median {statistics.median(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)})"
    )
    if not args.no_whole_process:
        whole_process(args)
    return 0


def whole_process(args: argparse.Namespace) -> None:
    """`aztriage check --format json` from exec to exit against the emulator."""
    import os
    import tempfile

    with emulator_process(*scale_estate(args.vms, args.subscriptions, args.latency_ms)) as info:
        cmd = aztriage_command(info, "check", "--format", "json")
        runs = [timed_process(cmd, env={"XDG_STATE_HOME": tempfile.gettempdir() + "/aztriage-bench/state"}) for _ in range(args.runs)]
    print(
        f"aztriage check --format json, whole process ({args.latency_ms:g} ms per request): {whole_process_medians(runs)}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
