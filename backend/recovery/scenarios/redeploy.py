"""redeploy: move the VM to a new host."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import INTERRUPTS_WARNING, Kind, Plan
from backend.recovery.scenarios._common import dynamic_ip_warnings, ephemeral_reason, plan, temp_disk_warnings
from backend.recovery.steps import power_step, preflight_step, reach_step


def unavailable(vm: Vm) -> str | None:
    if vm.power_state == "deallocated":
        return f"{vm.name} is deallocated: start it instead (a start already picks a healthy host)"
    return ephemeral_reason(vm, "redeploy")


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    reason = unavailable(vm)
    losses = tuple(temp_disk_warnings(vm) + dynamic_ip_warnings(vm))
    return plan(
        "redeploy",
        "Redeploy to a new host",
        facts,
        [
            preflight_step(facts),
            power_step(
                facts,
                action="redeploy",
                key="redeploy",
                title=f"Redeploy {vm.name} to a new host",
                why="When the host itself is at fault (Resource Health degraded, RDP/SSH dead although the guest looks fine), moving to a new node is the runbook's next step after a restart.",
                changes="shuts the VM down, moves it to a new Azure host and starts it there; disks and static IPs are kept",
                kind=Kind.DESTRUCTIVE,
                allowed_from=("running", "stopped"),
                final_power="running",
                warnings=(INTERRUPTS_WARNING,) + losses,
                undo=None,
            ),
            reach_step(facts),
        ],
        f"Move {vm.name} to a new host and check it answers.",
        warnings=list(losses),
        blockers=[reason] if reason else [],
        interrupts=True,
    )
