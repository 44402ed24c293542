"""The recovery entry points the CLI and the console share: find the VM,
read its facts, make a plan, run it, resume it."""

from __future__ import annotations

from typing import Any

from backend.adapter import RecoveryBackend, ResourceReads
from backend.errors import BackendError
from backend.models import ResourceId
from backend.recovery import scenarios
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Plan, PlanError


class VmNotFound(PlanError):
    """No such VM, or the name is ambiguous; one sentence."""


async def find_vm(backend: ResourceReads, name_or_id: str, subscriptions: list[str] | None = None) -> str:
    """The id of a VM given by name (unique across the visible subscriptions) or by ARM id."""
    if name_or_id.lower().startswith("/subscriptions/"):
        vm_id = name_or_id.rstrip("/")
        try:
            parsed = ResourceId.parse(vm_id)
        except ValueError:
            parsed = None
        if parsed is None or not parsed.resource_group or not parsed.name or parsed.type.lower() != "virtualmachines":
            raise VmNotFound(f"{vm_id!r} is not the id of a VM (/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachines/NAME)")
        try:
            await backend.get_vm_document(vm_id)
        except BackendError as exc:
            if exc.status == 404:
                raise VmNotFound(f"no VM with id {vm_id}") from None
            raise
        return vm_id
    found = await backend.find_vm_ids(name_or_id, subscriptions)
    if not found:
        raise VmNotFound(f"no VM named {name_or_id} in the subscriptions this identity can see")
    if len(found) > 1:
        where = ", ".join(f"{ResourceId.parse(v).resource_group} ({ResourceId.parse(v).subscription_id[:8]})" for v in found)
        raise VmNotFound(f"{len(found)} VMs are named {name_or_id} (in {where}): give its id with --vm /subscriptions/...")
    return found[0]


async def read_vm(backend: ResourceReads, vm_id: str) -> VmFacts:
    """The VM with its full instance view (agent, maintenance), locks and health: what the
    scenario choice is made from (the inventory's list view carries only power states)."""
    return VmFacts.from_documents(await backend.vm_documents(vm_id))


async def gather_facts(backend: RecoveryBackend, vm_id: str, scenario_id: str, params: dict[str, Any] | None = None) -> VmFacts:
    """What the scenario's plan is built from; `params` as the plan takes them (a scenario
    may read more than the VM itself, e.g. the rescue VM named in its parameters)."""
    scenario = scenarios.get(scenario_id)
    docs = await backend.vm_documents(vm_id, sizes=scenario.needs_sizes)
    await scenario.gather(backend, vm_id, dict(params or {}), docs)
    return VmFacts.from_documents(docs)


async def make_plan(backend: RecoveryBackend, vm_id: str, scenario_id: str, params: dict[str, Any] | None = None) -> tuple[Plan, VmFacts]:
    """Read the VM and build the scenario's plan (nothing is changed)."""
    scenario = scenarios.get(scenario_id)
    facts = await gather_facts(backend, vm_id, scenario_id, params)
    return scenario.build(facts, dict(params or {})), facts


def rebuild(scenario_id: str, facts: VmFacts, params: dict[str, Any]) -> Plan:
    return scenarios.build_plan(scenario_id, facts, params)
