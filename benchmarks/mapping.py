"""Mapping benchmark: CPU time to turn the wire documents of scale:N into models.

What the inventory spends on the client side once a list answer has arrived:
parsing each list (orjson), the trust boundary (``backend.safetext``:
``json_is_clean`` over the answer's bytes, ``safe_json`` over a page that
needs it), and every list of every subscription reduced and joined into
``Vm``s (``backend.azure.join.join_subscription``). No network, no emulator
process. Process CPU time, the cyclic collector paused as in the inventory.
``--dirty`` makes every answer take the slow path (as if every page held a
string to make safe), the worst case of the boundary.

Beside it, the whole process that pays it (``--whole-runs``, 0 skips it):
`aztriage inventory --format json --instance-views 0` from exec to exit against
an emulator process serving the same estate (no added latency): wall, CPU and
peak RSS, Python's start, the imports, the requests and the output included.

    .venv/bin/python benchmarks/mapping.py [--vms 10000] [--subscriptions 20] [--runs 7]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from benchmarks._emulator import aztriage_command, emulator_process, median, scale_estate, timed_process, whole_process_medians


def wire_lists(vms: int, subscriptions: int) -> dict[str, dict[str, bytes]]:
    """Per subscription, per list: the list's answer as JSON bytes."""
    from benchmarks._estate import scale_lists

    _estate, per_sub = scale_lists(vms, subscriptions, health=True, now=datetime(2026, 12, 1, tzinfo=UTC))
    return {sub: {name: orjson.dumps({"value": docs}) for name, docs in lists.items()} for sub, lists in per_sub.items()}


def one_run(wire: dict[str, dict[str, bytes]], dirty: bool) -> tuple[float, float, int]:
    """(CPU of the whole client side, CPU of the trust boundary alone, VMs)."""
    from backend.azure.join import join_subscription
    from backend.safetext import json_is_clean, safe_json

    gc.disable()
    try:
        started = time.process_time()
        boundary = 0.0
        count = 0
        for sub, lists in wire.items():
            docs = {}
            for name, body in lists.items():
                items = orjson.loads(body)["value"]
                t0 = time.process_time()
                if dirty or not json_is_clean(body):
                    items = safe_json(items)
                boundary += time.process_time() - t0
                docs[name] = items
            count += len(join_subscription(sub, docs).vms)
        return time.process_time() - started, boundary, count
    finally:
        gc.enable()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--subscriptions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dirty", action="store_true", help="every answer through safe_json (worst case)")
    ap.add_argument("--whole-runs", type=int, default=3, help="whole-process runs of `aztriage inventory` (0: none)")
    args = ap.parse_args()
    wire = wire_lists(args.vms, args.subscriptions)
    size = sum(len(b) for lists in wire.values() for b in lists.values())
    times, bounds = [], []
    count = 0
    for _ in range(args.runs):
        cpu, boundary, count = one_run(wire, args.dirty)
        times.append(cpu)
        bounds.append(boundary)
    print(f"mapping scale:{args.vms} over {args.subscriptions} subscriptions: {count} VMs, {size / 2**20:.0f} MiB of JSON")
    print(f"  CPU per inventory (parse, boundary, join): median {median(times) * 1000:.0f} ms (runs {', '.join(f'{t * 1000:.0f}' for t in times)} ms)")
    print(f"  of which the trust boundary{' (every page walked)' if args.dirty else ''}: median {median(bounds) * 1000:.1f} ms")
    if args.whole_runs:
        whole_process(args.vms, args.subscriptions, args.whole_runs)


def whole_process(vms: int, subscriptions: int, runs: int) -> None:
    with emulator_process(*scale_estate(vms, subscriptions)) as info:
        cmd = aztriage_command(info, "inventory", "--instance-views", "0", "--format", "json")
        figures = [timed_process(cmd) for _ in range(runs)]
    print(f"  whole process, aztriage inventory --format json --instance-views 0: {whole_process_medians(figures)}")


if __name__ == "__main__":
    main()
