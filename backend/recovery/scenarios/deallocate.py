"""deallocate: stop the VM and release its host."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts, power_state
from backend.recovery.plan import INTERRUPTS_WARNING, Kind, Plan
from backend.recovery.scenarios._common import dynamic_ip_warnings, ephemeral_reason, plan, temp_disk_warnings
from backend.recovery.steps import power_step, preflight_step


def unavailable(vm: Vm) -> str | None:
    if vm.power_state == "deallocated":
        return f"{vm.name} is already deallocated"
    return ephemeral_reason(vm, "deallocate")


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    reason = unavailable(vm)
    losses = tuple(temp_disk_warnings(vm) + dynamic_ip_warnings(vm))
    return plan(
        "deallocate",
        "Stop and deallocate",
        facts,
        [
            preflight_step(facts),
            power_step(
                facts,
                action="deallocate",
                key="deallocate",
                title=f"Stop and deallocate {vm.name}",
                why="Deallocating releases the host: compute billing stops, and the next start places the VM on healthy hardware. A VM that is only stopped is still billed.",
                changes="shuts the guest down and releases the host; the OS and data disks are kept",
                kind=Kind.DESTRUCTIVE,
                allowed_from=("running", "stopped"),
                final_power="deallocated",
                warnings=(INTERRUPTS_WARNING,) + losses,
                undo="start it again (scenario start); what was on the temporary disk does not come back",
                done_when=lambda model: f"{vm.name} is already deallocated" if power_state(model) == "deallocated" else None,
            ),
        ],
        f"Stop {vm.name} and release its host; its disks are kept.",
        warnings=list(losses),
        blockers=[reason] if reason else [],
        interrupts=True,
    )
