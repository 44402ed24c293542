"""`aztriage inventory`: every VM the identity can see, joined with its health,
network and disks."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tui.commands.common import add_instance_views_option, check_subscriptions, output_format, print_json_listing, run_with_backend

if TYPE_CHECKING:
    from backend.adapter import InventorySource
    from backend.models import Inventory


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inventory", parents=parents, help="list every VM with its state, health, network and disks")
    add_instance_views_option(p)
    p.set_defaults(func=run)


def power_text(power: str) -> str:
    # Upper case marks a bad state so it stands out without colour.
    return power if power in ("running",) else power.upper()


def health_text(state: str) -> str:
    return state if state == "Available" else state.upper()


def agent_text(vm) -> str:
    if vm.power_state == "deallocated":
        return "-"  # no host, no agent
    if not vm.instance_view_read:
        return "not checked"
    return "ready" if vm.agent_status == "Ready" else vm.agent_status.upper()


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("table", "json"))

    async def work(backend: InventorySource):
        return await backend.inventory(list(args.subscription) if args.subscription else None, instance_views=args.instance_views)

    from backend.gcpause import gc_paused

    # The collector stays paused from the inventory through its output. Reading and describing
    # 10,000 VMs builds no reference cycles, and the process ends soon after (tui.cli.entry).
    # Collecting when the inventory is in would walk every object it built, which is all the
    # young generation by then: one collection of about 0.12 s. Resuming the collector at the
    # end of the block would start that very collection at the next allocation, so what the
    # block built is frozen (out of the collector's sight, at no cost) until it has ended, then
    # handed to the oldest generation, which a full collection alone walks.
    with gc_paused():
        inv = run_with_backend(args, work)
        check_subscriptions(args, inv.errors)
        _write(inv, fmt)
        gc.freeze()
    gc.unfreeze()
    for warning in inv.warnings:  # on stderr in every format: JSON readers get them in "warnings" too
        print(f"warning: {warning}", file=sys.stderr)
    if inv.errors and len(inv.errors) >= len(inv.subscriptions):
        return 1
    return 0


def _write(inv: Inventory, fmt: str) -> None:
    from backend.verdict import verdicts

    # Azure's view of each VM (nothing is probed here: `aztriage probe` adds what RDP/SSH say).
    found = verdicts(inv)
    if fmt == "json":

        def vm_docs() -> Iterator[dict[str, Any]]:
            for vm in inv.vms:
                doc = vm.to_json(native=True)
                doc["verdict"] = found[vm.id.lower()].to_json()
                yield doc

        # The document of inv.to_json, its VMs made and written a batch at a time.
        print_json_listing(dataclasses.replace(inv, vms=()).to_json(native=True), vm_docs(), native=True)
    else:
        from tui.textfmt import table

        names = {s.subscription_id: s.display_name for s in inv.subscriptions}
        rows = [
            (
                vm.name,
                vm.resource_group,
                names.get(vm.subscription_id, vm.subscription_id)[:24],
                vm.location,
                vm.size.removeprefix("Standard_"),
                power_text(vm.power_state),
                health_text(vm.availability_state),
                vm.sla_shape,
                ",".join(vm.public_ips) or "-",
                agent_text(vm),
            )
            for vm in inv.vms
        ]
        print(
            table(
                ("NAME", "GROUP", "SUBSCRIPTION", "LOCATION", "SIZE", "POWER", "HEALTH", "SLA", "PUBLIC IP", "AGENT"),
                rows,
                shrink=(1, 0, 8),
                optional=(1, 3, 4, 2),
            )
        )
        engine = " (Azure Resource Graph)" if inv.engine == "arg" else ""
        print(f"\n{len(inv.vms)} VMs in {len(inv.subscriptions)} subscriptions; {inv.requests} requests in {inv.elapsed_s:.2f} s{engine}")
        for e in inv.errors:
            print(f"subscription {e.subscription_id} failed: {e.code}: {e.message}", file=sys.stderr)
