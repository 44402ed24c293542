"""reapply: send the VM's own model back to its host."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Kind, Plan
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import power_step, preflight_step, reach_step


def unavailable(vm: Vm) -> str | None:
    return None


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    return plan(
        "reapply",
        "Reapply",
        facts,
        [
            preflight_step(facts),
            power_step(
                facts,
                action="reapply",
                key="reapply",
                title=f"Reapply the model of {vm.name}",
                why="A VM left in a failed provisioning state by an earlier operation often only needs Azure to apply its model again; reapply does that without a reboot.",
                changes="re-sends the VM's configuration (network, extensions, disks) to its host; the guest keeps running",
                kind=Kind.CHANGE,
                allowed_from=(),
                final_power=None,
                undo=None,
            ),
            reach_step(facts) if vm.power_state == "running" else None,
        ],
        f"Reapply the model of {vm.name} and check its provisioning state.",
    )
