"""`aztriage broken`: what is wrong across the tenant, from Azure Resource Graph in four
queries, before (or instead of) loading every VM (backend/search.py)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.commands.common import output_format, print_json, run_with_backend
from tui.textfmt import table

if TYPE_CHECKING:
    from backend.adapter import ResourceGraph


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "broken", parents=parents, help="VMs not Available, active service events and pending maintenance across the tenant (Azure Resource Graph)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from backend.search import broken

    fmt = output_format(args, ("table", "json"))

    async def work(backend: ResourceGraph):
        return await broken(backend, list(args.subscription) if args.subscription else None)

    found = run_with_backend(args, work)
    if fmt == "json":
        print_json(
            {
                "vms": [
                    {
                        "id": b.vm.id,
                        "name": b.vm.name,
                        "resource_group": b.vm.resource_group,
                        "subscription_id": b.vm.subscription_id,
                        "location": b.vm.location,
                        "power_state": b.vm.power_state,
                        "availability_state": b.health.availability_state,
                        "reason": b.health.reason,
                        "since": b.health.since.isoformat() if b.health.since else None,
                    }
                    for b in found.vms
                ],
                "events": [
                    {"id": e.id, "subscription_id": e.subscription_id, "type": e.type, "title": e.title, "regions": list(e.regions)} for e in found.events
                ],
                "stopped_by_owner": found.stopped_by_owner,
                "maintenance": [
                    {
                        "vm_id": m.vm_id,
                        "vm": m.vm_name,
                        "subscription_id": m.subscription_id,
                        "resource_group": m.resource_group,
                        "status": m.status,
                        "impact_type": m.impact_type,
                        "scope": m.scope,
                        "not_before": m.not_before.isoformat() if m.not_before else None,
                    }
                    for m in found.maintenance
                ],
                "warnings": list(found.warnings),
                "stats": {"queries": found.queries},
            }
        )
    else:
        print(
            f"VMs not Available: {len(found.vms)}"
            + (f" (and {found.stopped_by_owner} stopped, deallocated or starting by their owners' choice, not listed)" if found.stopped_by_owner else "")
        )
        if found.vms:
            rows = [(b.vm.name, b.vm.resource_group, b.vm.power_state, b.health.availability_state.upper(), b.health.reason or "-") for b in found.vms]
            print(table(("VM", "GROUP", "POWER", "HEALTH", "REASON"), rows, shrink=(4, 1)))
        print(f"\nActive service events: {len(found.events)}")
        if found.events:
            seen: dict[str, tuple[str, str, str, int]] = {}
            for e in found.events:  # an event is listed once per subscription it touches
                seen.setdefault(e.id, (e.type, e.title, ", ".join(e.regions) or "-", 0))
                kind, title, regions, count = seen[e.id]
                seen[e.id] = (kind, title, regions, count + 1)
            print(table(("TRACKING ID", "TYPE", "TITLE", "REGIONS", "SUBSCRIPTIONS"), [(k, *v[:3], str(v[3])) for k, v in seen.items()], shrink=(2, 3)))
        print(f"\nPending platform maintenance: {len(found.maintenance)}")
        if found.maintenance:
            pending = [
                (m.vm_name, m.resource_group, m.status, m.impact_type, m.scope, m.not_before.strftime("%Y-%m-%d %H:%M UTC") if m.not_before else "-")
                for m in found.maintenance
            ]
            print(table(("VM", "GROUP", "STATUS", "IMPACT", "SCOPE", "NOT BEFORE"), pending, shrink=(1,)))
        print(f"\n{found.queries} Resource Graph queries")
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
