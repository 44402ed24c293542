"""Checklist benchmark: every rule over a scale:N estate, without HTTP.

The estate's documents are joined into an Inventory exactly as the adapter
joins them (backend.azure.backend.join_subscription), then every rule runs and
the summary (per VM, per subscription, per rule) is built. Prints the median
wall time of --runs and the number of findings. The console re-runs this on
every refresh, in a thread; about a second at 10,000 VMs is the budget.

    .venv/bin/python benchmarks/checks.py [--vms 10000] [--subscriptions 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


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
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
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
    print(f"checklist over {len(inv.vms)} VMs in {len(inv.subscriptions)} subscriptions: {findings} findings, median {statistics.median(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
