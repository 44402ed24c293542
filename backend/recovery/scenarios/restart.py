"""restart: reboot the VM on its host."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import INTERRUPTS_WARNING, Kind, Plan
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import power_step, preflight_step, reach_step


def unavailable(vm: Vm) -> str | None:
    if vm.power_state != "running":
        return f"{vm.name} is {vm.power_state}: restart needs it running (use start)"
    return None


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    reason = unavailable(vm)
    return plan(
        "restart",
        "Restart",
        facts,
        [
            preflight_step(facts),
            power_step(
                facts,
                action="restart",
                key="restart",
                title=f"Restart {vm.name}",
                why="A restart clears a hung guest, a stuck service or exhausted resources. The VM stays on its host and keeps its disks, IP addresses and temporary disk.",
                changes="reboots the guest operating system through Azure",
                kind=Kind.CHANGE,
                allowed_from=("running",),
                final_power="running",
                warnings=(INTERRUPTS_WARNING,),
                undo=None,
            ),
            reach_step(facts),
        ],
        f"Restart {vm.name} through Azure and check it answers again.",
        blockers=[reason] if reason else [],
        interrupts=True,
    )
