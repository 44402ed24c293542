"""`aztriage health`: the Health pane for scripts. VMs whose Resource Health
is not Available (worst first), Service Health events with how many of my
VMs are in their regions, and pending planned maintenance."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.commands.common import check_subscriptions, output_format, print_json, run_with_backend
from tui.textfmt import table

if TYPE_CHECKING:
    from backend.adapter import Backend


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("health", parents=parents, help="VMs not Available, Service Health events and planned maintenance")
    p.set_defaults(func=run)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("table", "json"))

    from datetime import UTC, datetime

    from backend.verdict import VerdictBook

    book = VerdictBook()
    now = datetime.now(UTC)

    async def work(backend: Backend):
        from backend.verdict import read_changes

        inv = await backend.inventory(list(args.subscription) if args.subscription else None)
        # The VMs not Available: what changed on them lately is evidence in their verdicts
        # (one Resource Graph query, after the inventory).
        bad = [vm for vm in inv.vms if vm.availability_state.lower() != "available"]
        return inv, await read_changes(book, backend, inv, bad, now)

    inv, changes_error = run_with_backend(args, work)
    check_subscriptions(args, inv.errors)
    from backend.health import health_view

    view = health_view(inv, book, now)
    if fmt == "json":
        print_json(view.to_json())
    else:
        print(f"Resource Health: {len(view.statuses)} of {len(inv.vms)} VMs not Available (worst first)")
        if view.statuses:
            rows: list[tuple[str, ...]] = [
                (
                    s.vm.name,
                    s.availability_state.upper(),
                    s.reason_type or "-",
                    _when(s.since),
                    s.summary,
                    "; ".join(s.recommended_actions) or "-",
                )
                for s in view.statuses
            ]
            print(table(("VM", "STATE", "REASON", "SINCE (UTC)", "SUMMARY", "RECOMMENDED ACTIONS"), rows, shrink=(4, 5, 0)))
            changed = [(s.vm.name, s.verdict.change) for s in view.statuses if s.verdict is not None and s.verdict.change is not None]
            if changed:
                from backend.verdict import change_line

                print("\nRecent changes (evidence in the verdict):")
                for name, change in changed:
                    print(f"  {name}: {change_line(change, now)}")
        print(f"\nService Health: {len(view.events)} events")
        if view.events:
            rows = [
                (
                    e.event.status.upper() if e.event.status.lower() == "active" else e.event.status,
                    e.event.level or "-",
                    e.event.type,
                    e.event.title,
                    ", ".join(e.event.regions) or "-",
                    ", ".join(e.event.services) or "-",
                    str(len(e.impacted_vms)),
                )
                for e in view.events
            ]
            print(table(("STATUS", "LEVEL", "TYPE", "TITLE", "REGIONS", "SERVICES", "MY VMS"), rows, shrink=(3, 5, 4, 2)))
        print(f"\nPlanned maintenance: {len(view.maintenance)} VMs pending")
        if view.maintenance:
            rows = [(m.vm.name, _when(m.window_start), _when(m.window_end), "yes" if m.self_service_allowed else "no") for m in view.maintenance]
            print(table(("VM", "WINDOW START (UTC)", "WINDOW END (UTC)", "SELF-SERVICE"), rows))
    # In every format: a failed subscription is named, not silently left out of the view.
    for e in inv.errors:
        print(f"subscription {e.subscription_id} failed: {e.code}: {e.message}", file=sys.stderr)
    if changes_error:
        print(f"note: {changes_error}", file=sys.stderr)
    if inv.errors and len(inv.errors) >= len(inv.subscriptions):
        return 1
    return 0
