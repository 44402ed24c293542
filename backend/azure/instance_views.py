"""Per-VM instance views for the facts the inventory's lists do not carry.

The inventory reads VMs with ``statusOnly=true``, which returns the power and
provisioning statuses only. The VM agent's status, pending planned
maintenance and the fault and update domain of a VM in an availability set
are in the VM's own instance view:
``GET .../virtualMachines/{name}/instanceView`` — one request per VM. The
checklist reads them for a bounded number of VMs (see ``choose``) and says
"not checked" for the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from backend.adapter import BackendError
from backend.azure import mapping
from backend.models import Inventory, Vm
from backend.safetext import safe_json



def enrich(vm: Vm, view: Mapping[str, Any]) -> Vm:
    """The VM with the agent, maintenance and domain facts of its instance view."""
    agent, version = mapping.agent_status(view)
    return dataclasses.replace(
        vm,
        agent_status=agent,
        agent_version=version,
        maintenance=mapping.maintenance(view),
        platform_fault_domain=view.get("platformFaultDomain"),
        platform_update_domain=view.get("platformUpdateDomain"),
        instance_view_read=True,
    )


def choose(inv: Inventory, limit: int | None, first: Iterable[str] = ()) -> list[Vm]:
    """Which VMs to read, most useful first, at most ``limit`` (None: all).

    Deallocated VMs sit on no host: no agent runs, no maintenance is due, no
    domain is assigned, so they are never read. Order: the VMs named in
    ``first`` (a report's VM), members of availability sets with two or more
    VMs (their domains), then the rest in inventory order."""
    wanted = {i.lower() for i in first}
    members: dict[str, int] = {}
    for vm in inv.vms:
        if vm.availability_set:
            members[vm.availability_set.lower()] = members.get(vm.availability_set.lower(), 0) + 1
    candidates = [vm for vm in inv.vms if vm.power_state != "deallocated"]

    def rank(vm: Vm) -> int:
        if vm.id.lower() in wanted:
            return 0
        if vm.availability_set and members.get(vm.availability_set.lower(), 0) >= 2:
            return 1
        return 2

    ordered = sorted(candidates, key=rank)  # stable: inventory order within a rank
    return ordered if limit is None else ordered[: max(0, limit)]


async def read_instance_views(backend: Any, vms: Iterable[Vm], *, concurrency: int = 16) -> tuple[dict[str, Vm], dict[str, str]]:
    """Enriched VMs by lower-case id, and the reason for each VM whose read failed."""
    semaphore = asyncio.Semaphore(concurrency)
    read: dict[str, Vm] = {}
    errors: dict[str, str] = {}

    async def one(vm: Vm) -> None:
        async def fetch() -> Any:
            return await backend.client("compute", vm.subscription_id).virtual_machines.instance_view(vm.resource_group, vm.name)

        async with semaphore:
            try:
                view = await backend.call(f"reading the instance view of {vm.name}", fetch)
            except BackendError as exc:
                errors[vm.id.lower()] = str(exc)
                return
        read[vm.id.lower()] = enrich(vm, safe_json(view))

    await asyncio.gather(*(one(vm) for vm in vms))
    return read, errors
