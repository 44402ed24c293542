"""`aztriage runs`: the recovery runs in the journal, unfinished ones first."""

from __future__ import annotations

import argparse
import json
import sys

from tui.cli import CliError
from tui.commands.common import output_format
from tui.commands.recover import on_azure
from tui.textfmt import table


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "runs",
        parents=parents,
        help="list recovery runs (interrupted and waiting ones first)",
        description="The recovery journal: every run with its status (running, interrupted, waiting, succeeded, failed), "
        "its steps and the resources it created.",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="show one run with its steps, events and created resources")
    p.add_argument("--abandon", metavar="RUN_ID", help="give up an unfinished run (its created resources stay in the ledger)")
    p.add_argument(
        "--release",
        metavar="RUN_ID",
        help="delete what a finished run kept until released (its snapshots, unused disk copies, its own resource groups); never a customer disk, never a VM",
    )
    p.add_argument(
        "--undo",
        metavar="RUN_ID",
        help="reverse what a finished run changed where its steps can be undone (fix-nsg: delete its allow rules, put a deleted rule back)",
    )
    p.add_argument("--yes", action="store_true", help="with --release or --undo: do not ask (for scripts)")
    p.set_defaults(func=run)


def _order(record) -> tuple:
    rank = {"interrupted": 0, "waiting": 1, "running": 2}.get(record.status, 3)
    return (rank,)


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("table", "json"), default="table")
    from backend.recovery.journal import Journal, JournalError

    if args.release and (args.abandon or args.run_id or args.undo):
        raise CliError("--release takes the run id alone")
    if args.undo and (args.abandon or args.run_id):
        raise CliError("--undo takes the run id alone")
    try:
        # Only read: a listing (or a refusal) before the first run creates no journal.
        journal = Journal.open_existing()
    except JournalError as exc:
        raise CliError(str(exc), exit_code=1) from None
    if journal is None:
        # The same sentence and exit status as when the journal exists without that run.
        if args.release or args.abandon or args.undo:
            raise CliError(f"there is no run {args.release or args.abandon or args.undo} in the journal", exit_code=1)
        if args.run_id:
            raise CliError(f"there is no run {args.run_id} in the journal")
        records = []
    else:
        with journal:
            done = _one_run(args, journal, fmt)
            if done is not None:
                return done
            records = sorted(journal.list_runs(), key=_order)
    if fmt == "json":
        sys.stdout.write(json.dumps([r.to_json() for r in records], indent=2) + "\n")
        return 0
    if not records:
        print("no recovery runs yet (start one with: aztriage recover --vm NAME --scenario ID)")
        return 0
    rows = []
    for r in records:
        done = sum(1 for s in r.steps if s.state in ("verified", "skipped"))
        rows.append(
            (
                r.run_id,
                r.vm_name,
                r.scenario,
                r.status.upper() if r.unfinished else r.status,
                f"{done}/{len(r.steps)}",
                r.created_at.replace("T", " ")[:16],
                r.summary or "-",
            )
        )
    print(table(("RUN", "VM", "SCENARIO", "STATUS", "STEPS", "STARTED (UTC)", "SUMMARY"), rows, shrink=(6,)))
    unfinished = [r for r in records if r.unfinished and r.status != "running"]
    if unfinished:
        print(f"\n{len(unfinished)} unfinished: resume with 'aztriage recover --resume RUN_ID'")
    return 0


def _one_run(args: argparse.Namespace, journal, fmt: str) -> int | None:
    """--release, --abandon or one run's details; None for the listing."""
    from backend.recovery.runner import Runner, RunRefused

    if args.release:
        return _release(args, journal, fmt)
    if args.undo:
        return _undo(args, journal, fmt)
    if args.abandon:
        try:
            record = Runner(None, journal).abandon(args.abandon)  # type: ignore[arg-type]  # abandoning touches only the journal
        except RunRefused as exc:
            raise CliError(str(exc), exit_code=1) from None
        if fmt == "json":
            sys.stdout.write(json.dumps(record.to_json()) + "\n")
        else:
            print(f"run {record.run_id} on {record.vm_name} abandoned; it created {len(record.resources)} resource(s), still listed in its ledger")
        return 0
    if args.run_id:
        record = journal.get_run(args.run_id)
        if record is None:
            raise CliError(f"there is no run {args.run_id} in the journal")
        if fmt == "json":
            doc = record.to_json()
            doc["events"] = journal.events(args.run_id)
            # The VM's documents as read before the first change (a recreate's model to rebuild from).
            doc["captured"] = journal.facts(args.run_id)
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return 0
        _print_one(record, journal.events(args.run_id))
        return 0
    return None


def _print_one(record, events) -> None:
    print(f"run {record.run_id}: {record.scenario} on {record.vm_name} - {record.status}")
    print(f"started {record.created_at}, last change {record.updated_at}" + (f", finished {record.finished_at}" if record.finished_at else ""))
    if record.summary:
        print(record.summary)
    print()
    rows = [(str(s.idx + 1), s.kind, s.state, s.title, s.message or "") for s in record.steps]
    print(table(("#", "KIND", "STATE", "STEP", "RESULT"), rows, shrink=(4, 3)))
    if record.resources:
        print("\ncreated resources (kept until you delete them):")
        for res in record.resources:
            print(f"  {res.state:9} {res.kind:9} {res.resource_id}")


def _release(args: argparse.Namespace, journal, fmt: str) -> int:
    """Show what releasing the run deletes and keeps, confirm, then delete (each checked again first)."""
    from backend.recovery.release import DELETE, ReleaseRefused, release, release_plan

    if args.abandon or args.run_id:
        raise CliError("--release takes the run id alone")
    try:
        run, items = release_plan(journal, args.release)
    except ReleaseRefused as exc:
        raise CliError(str(exc), exit_code=1) from None
    deletes = [i for i in items if i.action == DELETE]
    if fmt != "json":
        print(f"run {run.run_id}: {run.scenario} on {run.vm_name} - {run.status}")
        for item in items:
            print(f"  {'DELETE' if item.action == DELETE else 'keep  '} {item.kind:17} {item.name}  ({item.reason})")
    if not deletes:
        if fmt == "json":
            sys.stdout.write(json.dumps({"run_id": run.run_id, "released": [], "kept": [i.to_json() for i in items]}) + "\n")
        else:
            print("nothing to release")
        return 0
    _confirm(args, run.run_id, "deleted", f"delete the {len(deletes)} resource(s) listed")

    def on_item(item, text: str, ok: bool) -> None:
        if fmt == "json":
            sys.stdout.write(json.dumps(dict(item.to_json(), result=text, ok=ok)) + "\n")
        else:
            print(f"{'ok  ' if ok else 'FAIL'} {item.kind} {item.name}: {text}")
        sys.stdout.flush()

    results = on_azure(args, lambda backend: release(backend, journal, run.run_id, on_item=on_item), (ReleaseRefused,))
    return 0 if all(ok for _, _, ok in results) else 1


def _confirm(args: argparse.Namespace, run_id: str, done: str, what: str) -> None:
    """Refused under --read-only; --yes, or the run id typed on a terminal."""
    if args.read_only:
        raise CliError(f"read-only mode: nothing was {done}", exit_code=1)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(f"add --yes to {what} (or run it on a terminal to confirm)")
        typed = input(f"Type the run id ({run_id}) to {what}: ").strip()
        if typed != run_id:
            raise CliError(f"not confirmed: nothing was {done}", exit_code=1)


def _undo(args: argparse.Namespace, journal, fmt: str) -> int:
    """Show what undoing the run does, confirm, then undo its steps, last first (each checks Azure first)."""
    from backend.recovery.undo import UndoRefused, undo, undo_plan

    try:
        run, _, items = undo_plan(journal, args.undo)
    except UndoRefused as exc:
        raise CliError(str(exc), exit_code=1) from None
    if fmt != "json":
        print(f"run {run.run_id}: {run.scenario} on {run.vm_name} - {run.status}")
        for item in items:
            print(f"  {'UNDO' if item.can_undo else 'keep'} step {item.index + 1}: {item.title}  ({item.how})")
    _confirm(args, run.run_id, "undone", "undo the steps listed")

    def on_item(item, text: str, ok: bool) -> None:
        if fmt == "json":
            sys.stdout.write(json.dumps({"step": item.index + 1, "title": item.title, "result": text, "ok": ok}) + "\n")
        else:
            print(f"{'ok  ' if ok else 'FAIL'} step {item.index + 1}: {text}")
        sys.stdout.flush()

    results = on_azure(args, lambda backend: undo(backend, journal, run.run_id, on_item=on_item), (UndoRefused,))
    return 0 if all(ok for _, _, ok in results) else 1
