"""The six scenarios that are one VM power action between a pre-flight check and
a check that RDP/SSH answers: restart, start, deallocate, redeploy, reapply and
perform-maintenance. They differ only in words, in when they apply and in what
they lose (the temporary disk, a dynamic public IP), so they are one table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import INTERRUPTS_WARNING, Kind, Plan
from backend.recovery.scenarios._common import dynamic_ip_warnings, ephemeral_reason, plan, temp_disk_warnings
from backend.recovery.steps import already_in, power_step, preflight_step, reach_step

Model = dict[str, Any]


def _when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "?"


# --- when each action applies: (vm, now) -> why not, or None ------------------------


def _restart_unavailable(vm: Vm, now: datetime) -> str | None:
    if vm.power_state != "running":
        return f"{vm.name} is {vm.power_state}: restart needs it running (use start)"
    return None


def _start_unavailable(vm: Vm, now: datetime) -> str | None:
    if vm.power_state in ("running", "starting"):
        return f"{vm.name} is already {vm.power_state}"
    return None


def _deallocate_unavailable(vm: Vm, now: datetime) -> str | None:
    if vm.power_state == "deallocated":
        return f"{vm.name} is already deallocated"
    return ephemeral_reason(vm, "deallocate")


def _redeploy_unavailable(vm: Vm, now: datetime) -> str | None:
    if vm.power_state == "deallocated":
        return f"{vm.name} is deallocated: start it instead (a start already picks a healthy host)"
    return ephemeral_reason(vm, "redeploy")


def _always_available(vm: Vm, now: datetime) -> str | None:
    return None


def _maintenance_unavailable(vm: Vm, now: datetime) -> str | None:
    """Azure allows starting the maintenance only while
    maintenanceRedeployStatus.isCustomerInitiatedMaintenanceAllowed is true, which it is inside the
    self-service (pre-maintenance) window; the window times say when that is."""
    from backend.verdict import maintenance_window

    m = vm.maintenance
    if m.last_result == "MaintenanceCompleted":
        return "the maintenance of this VM is already done"
    if not m.pending:
        return "no planned maintenance is pending for this VM"
    open_now, when = maintenance_window(vm, now)
    return None if open_now else f"Azure refuses it now: {when}"


# --- what each action loses, and what else the operator should know ---------------------


def _no_losses(vm: Vm) -> list[str]:
    return []


def _host_move_losses(vm: Vm) -> list[str]:
    return temp_disk_warnings(vm) + dynamic_ip_warnings(vm)


def _no_notes(vm: Vm) -> list[str]:
    return []


def _start_notes(vm: Vm) -> list[str]:
    if vm.power_state != "deallocated":
        return []
    notes = [
        f"{pip.name} is a dynamic public IP: the VM gets a new address when it starts (update DNS and saved RDP/SSH files)."
        for nic in vm.nics
        for pip in nic.public_ips
        if (pip.allocation or "").lower() == "dynamic"
    ]
    notes.append("Starting a deallocated VM needs capacity for its size in the region; if Azure has none, the start fails and nothing else changes.")
    return notes


def _maintenance_notes(vm: Vm) -> list[str]:
    m = vm.maintenance
    if not m.maintenance_window_start:
        return []
    return [f"If you do not, Azure does it in its scheduled window: {_when(m.maintenance_window_start)} to {_when(m.maintenance_window_end)}."]


# --- when the world already shows the action's effect ------------------------------------


def _power_is(state: str) -> Callable[[Vm], Callable[[Model], str | None]]:
    return lambda vm: already_in(vm, state)


def _maintenance_done(vm: Vm) -> Callable[[Model], str | None]:
    def done(model: Model) -> str | None:
        status = ((model.get("properties") or {}).get("instanceView") or {}).get("maintenanceRedeployStatus")
        if not status:
            return "no maintenance is pending any more"
        if status.get("lastOperationResultCode") == "MaintenanceCompleted":
            return "Azure reports the maintenance completed"
        return None

    return done


@dataclass(frozen=True)
class PowerScenario:
    """One row: a power action and the words around it. The texts are
    `str.format` templates over the VM's `name`, `power`, and its self-service
    maintenance window (`window_start`, `window_end`)."""

    id: str
    title: str
    action: str  # the Azure VM action (backend vm_action)
    step_key: str  # the step id in journals: stable across versions
    step_title: str
    why: str
    changes: str
    kind: Kind
    allowed_from: tuple[str, ...]
    final_power: str | None
    summary: str
    unavailable_when: Callable[[Vm, datetime], str | None]
    interrupts: bool = True
    undo: str | None = None
    losses: Callable[[Vm], list[str]] = _no_losses
    notes: Callable[[Vm], list[str]] = _no_notes
    done_when: Callable[[Vm], Callable[[Model], str | None]] | None = None
    verify_done: bool = False
    reach: str = "always"  # check RDP/SSH answers afterwards: "always", "if running" (before the action) or "never"

    def unavailable(self, vm: Vm, now: datetime | None = None) -> str | None:
        return self.unavailable_when(vm, now or datetime.now(UTC))

    def build(self, facts: VmFacts, params: dict[str, Any]) -> Plan:
        vm = facts.vm
        now = facts.fetched_at or datetime.now(UTC)
        reason = self.unavailable(vm, now)
        m = vm.maintenance
        words = {"name": vm.name, "power": vm.power_state, "window_start": _when(m.window_start), "window_end": _when(m.window_end)}
        losses = tuple(self.losses(vm))
        step = power_step(
            facts,
            action=self.action,
            key=self.step_key,
            title=self.step_title.format(**words),
            why=self.why.format(**words),
            changes=self.changes,
            kind=self.kind,
            allowed_from=self.allowed_from,
            final_power=self.final_power,
            warnings=((INTERRUPTS_WARNING,) if self.interrupts else ()) + losses,
            undo=self.undo,
            done_when=self.done_when(vm) if self.done_when else None,
            verify_done=self.verify_done,
        )
        checks_reach = self.reach == "always" or (self.reach == "if running" and vm.power_state == "running")
        return plan(
            self.id,
            self.title,
            facts,
            [preflight_step(facts), step, reach_step(facts) if checks_reach else None],
            self.summary.format(**words),
            warnings=list(losses) + self.notes(vm),
            blockers=[reason] if reason else [],
            interrupts=self.interrupts,
        )


# The registry (scenarios/__init__.py) finds a module's scenarios by id in its TABLE.
TABLE: dict[str, PowerScenario] = {
    row.id: row
    for row in (
        PowerScenario(
            id="restart",
            title="Restart",
            action="restart",
            step_key="restart",
            step_title="Restart {name}",
            why="A restart clears a hung guest, a stuck service or exhausted resources. The VM stays on its host and keeps its disks, IP addresses and temporary disk.",
            changes="reboots the guest operating system through Azure",
            kind=Kind.CHANGE,
            allowed_from=("running",),
            final_power="running",
            summary="Restart {name} through Azure and check it answers again.",
            unavailable_when=_restart_unavailable,
        ),
        PowerScenario(
            id="start",
            title="Start",
            action="start",
            step_key="start",
            step_title="Start {name}",
            why="{name} is {power}: nothing runs until it is started.",
            changes="allocates the VM on a host (if deallocated) and boots it; compute billing starts",
            kind=Kind.CHANGE,
            allowed_from=("stopped", "deallocated"),
            final_power="running",
            summary="Start {name} and check it answers.",
            unavailable_when=_start_unavailable,
            interrupts=False,
            undo="stop and deallocate it again (scenario deallocate)",
            notes=_start_notes,
            done_when=_power_is("running"),
        ),
        PowerScenario(
            id="deallocate",
            title="Stop and deallocate",
            action="deallocate",
            step_key="deallocate",
            step_title="Stop and deallocate {name}",
            why="Deallocating releases the host: compute billing stops, and the next start places the VM on healthy hardware. A VM that is only stopped is still billed.",
            changes="shuts the guest down and releases the host; the OS and data disks are kept",
            kind=Kind.DESTRUCTIVE,
            allowed_from=("running", "stopped"),
            final_power="deallocated",
            summary="Stop {name} and release its host; its disks are kept.",
            unavailable_when=_deallocate_unavailable,
            undo="start it again (scenario start); what was on the temporary disk does not come back",
            losses=_host_move_losses,
            done_when=_power_is("deallocated"),
            reach="never",
        ),
        PowerScenario(
            id="redeploy",
            title="Redeploy to a new host",
            action="redeploy",
            step_key="redeploy",
            step_title="Redeploy {name} to a new host",
            why="When the host itself is at fault (Resource Health degraded, RDP/SSH dead although the guest looks fine), moving to a new node is the runbook's next step after a restart.",
            changes="shuts the VM down, moves it to a new Azure host and starts it there; disks and static IPs are kept",
            kind=Kind.DESTRUCTIVE,
            allowed_from=("running", "stopped"),
            final_power="running",
            summary="Move {name} to a new host and check it answers.",
            unavailable_when=_redeploy_unavailable,
            losses=_host_move_losses,
        ),
        PowerScenario(
            id="reapply",
            title="Reapply",
            action="reapply",
            step_key="reapply",
            step_title="Reapply the model of {name}",
            why="A VM left in a failed provisioning state by an earlier operation often only needs Azure to apply its model again; reapply does that without a reboot.",
            changes="re-sends the VM's configuration (network, extensions, disks) to its host; the guest keeps running",
            kind=Kind.CHANGE,
            allowed_from=(),
            final_power=None,
            summary="Reapply the model of {name} and check its provisioning state.",
            unavailable_when=_always_available,
            interrupts=False,
            reach="if running",
        ),
        PowerScenario(
            id="perform-maintenance",
            title="Planned maintenance now",
            action="perform_maintenance",
            step_key="maintenance",
            step_title="Start the planned maintenance of {name} now",
            why="Planned maintenance reboots the VM once; starting it yourself in the self-service window puts that reboot at a time you choose instead of Azure's.",
            changes="Azure moves the VM to an updated host and restarts it",
            kind=Kind.DESTRUCTIVE,
            allowed_from=("running", "stopped"),
            final_power="running",
            summary="Start the pending maintenance of {name} now (self-service window {window_start} to {window_end}).",
            unavailable_when=_maintenance_unavailable,
            losses=temp_disk_warnings,
            notes=_maintenance_notes,
            done_when=_maintenance_done,
            verify_done=True,
        ),
    )
}
