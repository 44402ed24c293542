"""Which VMs get their own instance view read, and what it adds to them.

The inventory reads VMs with ``statusOnly=true``, which returns the power and
provisioning statuses only. The VM agent's status, pending planned
maintenance and the fault and update domain of a VM in an availability set
are in the VM's own instance view, one request per VM
(``InventorySource.read_instance_views``). The checklist reads them for a
bounded number of VMs (``choose``) and says "not checked" for the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from backend import mapping
from backend.models import Inventory, Vm


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


def shares(subscription_ids: Iterable[str], limit: int) -> dict[str, int]:
    """How many of ``limit`` reads each subscription (by lower-case id) may start as soon
    as its own VM list is in: an even split, the remainder to the first subscriptions by
    id. What a subscription leaves unused goes, once every list is in, to the VMs that
    ``choose`` ranks first among those not read (``AzureBackend.inventory``)."""
    ids = sorted({s.lower() for s in subscription_ids})
    if not ids:
        return {}
    base, extra = divmod(max(0, limit), len(ids))
    return {sub: base + (1 if n < extra else 0) for n, sub in enumerate(ids)}
