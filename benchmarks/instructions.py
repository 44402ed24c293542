"""Instructions, not seconds: what the inventory's client-side work costs, counted by valgrind.

The development machines are shared and noisy: the same headless inventory used 4.1-5.4 s of
CPU from one run to the next, so a change of a few percent hides in the wall and CPU times.
Instruction counts (valgrind's callgrind, "Collected") are the same from run to run, so one
run of each tree compares them. Each part is counted as the difference from a run that does
everything before it:

- join: scale:N's list documents (already parsed, as the adapter hands them over) joined
  into VMs (``backend.azure.join.join_subscription``: the reducers and ``mapping``);
- verdicts: every VM's verdict (``backend.verdict.VerdictBook``, as the console asks for them);
- rows: the Inventory pane's row of every VM (``widgets.vm_table.vm_row``).

Needs valgrind (Debian: ``apt-get install valgrind``); a minute or so per part and tree at scale:2000.
``--tree DIR`` counts another checkout of the project (a git worktree of an older commit)
with the same documents, for a before and after.

    .venv/bin/python benchmarks/instructions.py [--vms 2000] [--subscriptions 4] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("join", "verdicts", "rows")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def child(tree: str, docs_file: str, upto: str) -> None:
    """Everything up to and including `upto` ("none": the imports and the documents only)."""
    import gc

    sys.path.insert(0, tree)
    from backend.azure.join import join_subscription
    from backend.models import Inventory
    from backend.verdict import VerdictBook
    from widgets.vm_table import vm_row

    gc.disable()  # as the inventory runs (backend.gcpause)
    with open(docs_file, "rb") as f:
        per_sub = pickle.load(f)
    if upto == "none":
        return
    parts = [join_subscription(sub, docs) for sub, docs in per_sub.items()]
    if upto == "join":
        return
    inventory = Inventory(subscriptions=(), vms=tuple(vm for p in parts for vm in p.vms), events=tuple(e for p in parts for e in p.events))
    book = VerdictBook()
    verdicts = [book.verdict(vm, inventory, NOW) for vm in inventory.vms]
    if upto == "verdicts":
        return
    for vm, verdict in zip(inventory.vms, verdicts, strict=True):
        vm_row(vm, vm.subscription_id, verdict, False)


def instructions(tree: str, docs_file: str, upto: str) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--child", tree, docs_file, upto],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
    if not found:
        raise SystemExit(f"valgrind printed no instruction count:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=2000)
    ap.add_argument("--subscriptions", type=int, default=4)
    ap.add_argument("--tree", action="append", default=[], help="another checkout to count (repeatable); this one is counted first")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind).")
    sys.path.insert(0, str(ROOT))
    from benchmarks._estate import scale_lists

    _estate, per_sub = scale_lists(args.vms, args.subscriptions, health=True, now=NOW)
    with tempfile.NamedTemporaryFile(suffix=".pickle") as docs:
        pickle.dump({sub: {name: list(items) for name, items in lists.items()} for sub, lists in per_sub.items()}, docs)
        docs.flush()
        print(f"instructions (valgrind callgrind), scale:{args.vms} over {args.subscriptions} subscriptions, millions")
        print(f"  {'tree':<40} " + " ".join(f"{p:>9}" for p in PARTS))
        for tree in [str(ROOT), *args.tree]:
            counts = [instructions(tree, docs.name, upto) for upto in ("none", *PARTS)]
            steps = [(b - a) / 1e6 for a, b in itertools.pairwise(counts)]
            print(f"  {tree:<40} " + " ".join(f"{s:>9.0f}" for s in steps), flush=True)


if __name__ == "__main__":
    main()
