"""start: start a stopped or deallocated VM."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts, power_state
from backend.recovery.plan import Kind, Plan
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import power_step, preflight_step, reach_step


def unavailable(vm: Vm) -> str | None:
    if vm.power_state in ("running", "starting"):
        return f"{vm.name} is already {vm.power_state}"
    return None


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    reason = unavailable(vm)
    warnings = []
    if vm.power_state == "deallocated":
        for nic in vm.nics:
            for pip in nic.public_ips:
                if (pip.allocation or "").lower() == "dynamic":
                    warnings.append(f"{pip.name} is a dynamic public IP: the VM gets a new address when it starts (update DNS and saved RDP/SSH files).")
        warnings.append("Starting a deallocated VM needs capacity for its size in the region; if Azure has none, the start fails and nothing else changes.")
    return plan(
        "start",
        "Start",
        facts,
        [
            preflight_step(facts),
            power_step(
                facts,
                action="start",
                key="start",
                title=f"Start {vm.name}",
                why=f"{vm.name} is {vm.power_state}: nothing runs until it is started.",
                changes="allocates the VM on a host (if deallocated) and boots it; compute billing starts",
                kind=Kind.CHANGE,
                allowed_from=("stopped", "deallocated"),
                final_power="running",
                undo="stop and deallocate it again (scenario deallocate)",
                done_when=lambda model: f"{vm.name} is already running" if power_state(model) == "running" else None,
            ),
            reach_step(facts),
        ],
        f"Start {vm.name} and check it answers.",
        warnings=warnings,
        blockers=[reason] if reason else [],
    )
