"""perform-maintenance: start pending platform maintenance now (self-service window)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import INTERRUPTS_WARNING, Kind, Plan
from backend.recovery.scenarios._common import plan, temp_disk_warnings
from backend.recovery.steps import parse_time, power_step, preflight_step, reach_step


def _when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "?"


def unavailable(vm: Vm, now: datetime | None = None) -> str | None:
    """Why Azure would refuse to start the maintenance now, or None. Azure allows it only while
    maintenanceRedeployStatus.isCustomerInitiatedMaintenanceAllowed is true, which it is inside the
    self-service (pre-maintenance) window; the window times say when that is."""
    from backend.verdict import maintenance_window

    m = vm.maintenance
    if m.last_result == "MaintenanceCompleted":
        return "the maintenance of this VM is already done"
    if not m.pending:
        return "no planned maintenance is pending for this VM"
    open_now, when = maintenance_window(vm, now or datetime.now(timezone.utc))
    return None if open_now else f"Azure refuses it now: {when}"


def _maintenance_done(model: dict[str, Any]) -> str | None:
    status = ((model.get("properties") or {}).get("instanceView") or {}).get("maintenanceRedeployStatus")
    if not status:
        return "no maintenance is pending any more"
    if status.get("lastOperationResultCode") == "MaintenanceCompleted":
        return "Azure reports the maintenance completed"
    return None


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    now = parse_time(facts.documents.get("fetched_at")) or datetime.now(timezone.utc)
    reason = unavailable(vm, now)
    m = vm.maintenance
    warnings = list(temp_disk_warnings(vm))
    if m.maintenance_window_start:
        warnings.append(f"If you do not, Azure does it in its scheduled window: {_when(m.maintenance_window_start)} to {_when(m.maintenance_window_end)}.")
    step = power_step(
        facts,
        action="perform_maintenance",
        key="maintenance",
        title=f"Start the planned maintenance of {vm.name} now",
        why="Planned maintenance reboots the VM once; starting it yourself in the self-service window puts that reboot at a time you choose instead of Azure's.",
        changes="Azure moves the VM to an updated host and restarts it",
        kind=Kind.DESTRUCTIVE,
        allowed_from=("running", "stopped"),
        final_power="running",
        warnings=(INTERRUPTS_WARNING,) + tuple(temp_disk_warnings(vm)),
        undo=None,
        done_when=_maintenance_done,
        verify_done=True,
    )
    return plan(
        "perform-maintenance",
        "Planned maintenance now",
        facts,
        [preflight_step(facts), step, reach_step(facts)],
        f"Start the pending maintenance of {vm.name} now (self-service window {_when(m.window_start)} to {_when(m.window_end)}).",
        warnings=warnings,
        blockers=[reason] if reason else [],
        interrupts=True,
    )
