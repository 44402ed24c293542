"""Small helpers the scenario modules share."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import DYNAMIC_IP_WARNING, Kind, Plan, Step, temp_disk_warning
from backend.recovery.steps import already_in, common_warnings, lock_blockers, lock_warnings, power_step
from backend.sizes import has_temp_disk
from backend.verdict import INCIDENT_WARNED_SCENARIOS, Incident, platform_unhealthy


def incident_warning(incident: Incident) -> str:
    return (
        f"{incident.describe()}. Azure is mitigating it: a recovery now may be undone or made worse by the "
        "mitigation; wait for Azure unless the business cannot."
    )


def incident_step(incident: Incident) -> Step:
    """The first step of a plan made during an active Azure incident: it names the incident
    (tracking id, status, ETA, impact start) and changes nothing."""
    from backend.recovery.plan import Kind, verified

    detail = incident.describe()
    if incident.last_update:
        detail += f". Latest update: {incident.last_update}"

    async def verify(ctx: Any) -> Any:
        return verified(f"going ahead during incident {incident.tracking_id} ({incident.status}) at the operator's request", incident=incident.tracking_id)

    return Step(
        key="incident",
        title=f"WARNING: Azure incident {incident.tracking_id} is active ({incident.status})",
        why=detail,
        changes="nothing (names the incident; Azure's mitigation may restore the VM without any change)",
        kind=Kind.CHECK,
        warnings=(incident_warning(incident),),
        verify=verify,
    )


def plan(
    scenario: str,
    title: str,
    facts: VmFacts,
    steps: list[Step | None],
    summary: str,
    *,
    warnings: list[str] | tuple[str, ...] = (),
    blockers: list[str] | tuple[str, ...] = (),
    details: tuple[tuple[str, str, str], ...] = (),
    params: dict[str, Any] | None = None,
    needs_secrets: tuple[str, ...] = (),
    interrupts: bool = False,
) -> Plan:
    """A plan with the warnings and blockers every plan carries (locks, SLA, Spot, scale set).
    A plan that acts on the host or the disks (redeploy, recreate, rescue) while Azure is
    mitigating an incident that covers the VM opens with a step naming the incident."""
    incident = facts.incident if scenario in INCIDENT_WARNED_SCENARIOS else None
    # Named when Azure lists the VM as impacted, or when the VM is unhealthy inside the incident.
    if incident is not None and (incident.listed or platform_unhealthy(facts.vm)):
        steps = [incident_step(incident), *steps]
        warnings = [incident_warning(incident)] + list(warnings)
    all_warnings = list(dict.fromkeys(list(warnings) + common_warnings(facts.vm, interrupts=interrupts) + lock_warnings(facts)))
    all_blockers = list(dict.fromkeys(list(blockers) + lock_blockers(facts)))
    return Plan(
        scenario=scenario,
        title=title,
        vm=facts.vm,
        steps=[s for s in steps if s is not None],
        summary=summary,
        warnings=tuple(all_warnings),
        blockers=tuple(all_blockers),
        details=details,
        params=dict(params or {}),
        needs_secrets=needs_secrets,
    )


def temp_disk_warnings(vm: Vm) -> list[str]:
    """The runbook's temporary-disk warning, unless the size has no temporary disk."""
    if has_temp_disk(vm.size) is False:
        return []
    return [temp_disk_warning(vm)]


def dynamic_ip_warnings(vm: Vm) -> list[str]:
    out = []
    for nic in vm.nics:
        for pip in nic.public_ips:
            if (pip.allocation or "").lower() == "dynamic":
                out.append(DYNAMIC_IP_WARNING.format(ip=pip.ip_address or f"({pip.name}, none assigned now)"))
    return out


def ephemeral_reason(vm: Vm, what: str) -> str | None:
    if vm.os_disk.ephemeral:
        return f"{vm.name} has an ephemeral OS disk, which lives on its host: Azure cannot {what} it"
    return None


def deallocate_to_swap_step(facts: VmFacts, undo: str) -> Step:
    """The VM deallocated before its OS disk is swapped (rescue, restore-disk): Azure swaps the
    OS disk of a stopped (deallocated) VM only."""
    vm = facts.vm
    return power_step(
        facts,
        action="deallocate",
        key="deallocate",
        title=f"Stop and deallocate {vm.name}",
        why="Azure swaps the OS disk of a stopped (deallocated) VM only.",
        changes="stops the VM and releases its host (compute billing stops)",
        kind=Kind.DESTRUCTIVE,
        allowed_from=(),
        final_power="deallocated",
        warnings=tuple(temp_disk_warnings(vm) + dynamic_ip_warnings(vm)),
        undo=undo,
        done_when=already_in(vm, "deallocated"),
    )
