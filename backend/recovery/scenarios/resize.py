"""resize: change the VM's size to one it can take, showing the difference."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, VmSize, power_state, provisioning
from backend.recovery.plan import INTERRUPTS_WARNING, Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan, temp_disk_warnings
from backend.recovery.steps import preflight_step, reach_step, settled, wait_for_model
from backend.sizes import has_temp_disk


def unavailable(vm: Vm) -> str | None:
    return None


def _gib(mb: int | None) -> str:
    return "?" if mb is None else f"{mb / 1024:g} GiB"


def _temp(size: VmSize | None, name: str) -> str:
    if size is not None and size.resource_disk_mb is not None:
        return "none" if size.resource_disk_mb == 0 else _gib(size.resource_disk_mb)
    known = has_temp_disk(name)
    return "?" if known is None else ("yes" if known else "none")


def _vm_size_of(model: dict[str, Any]) -> str:
    return ((model.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize") or ""


def difference(current: VmSize | None, current_name: str, target: VmSize) -> tuple[tuple[str, str, str], ...]:
    def num(v: int | None) -> str:
        return "?" if v is None else str(v)

    return (
        ("size", current_name, target.name),
        ("vCPUs", num(current.cores if current else None), num(target.cores)),
        ("memory", _gib(current.memory_mb if current else None), _gib(target.memory_mb)),
        ("max data disks", num(current.max_data_disks if current else None), num(target.max_data_disks)),
        ("temporary disk", _temp(current, current_name), _temp(target, target.name)),
        ("premium SSD", {True: "yes", False: "no", None: "?"}[VmSize(current_name, None, None, None, None).premium_io], {True: "yes", False: "no", None: "?"}[target.premium_io]),
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    wanted = (params.get("size") or "").strip()
    if facts.sizes is None:
        raise PlanError(f"the sizes {vm.name} can take could not be read: {facts.sizes_error or 'no answer'}")
    offered = sorted(s.name for s in facts.sizes if s.name.lower() != vm.size.lower())
    sample = ", ".join(offered[:8]) + (" ..." if len(offered) > 8 else "")
    if not wanted:
        raise PlanError(f"resize needs --size: {vm.name} ({vm.size}) can take {sample or 'no other size where it runs now'}")
    target = facts.size(wanted)
    if target is None:
        hint = " (deallocate it first to see every size of the region)" if vm.power_state != "deallocated" else ""
        raise PlanError(f"{vm.name} cannot take size {wanted} where it runs now{hint}; it can take {sample or 'no other size'}")
    if target.name.lower() == vm.size.lower():
        raise PlanError(f"{vm.name} already is {vm.size}")
    current = facts.size(vm.size)
    blockers: list[str] = []
    premium = [d.name for d in vm.disks if (d.sku or "").lower().startswith(("premium", "ultra"))]
    if premium and target.premium_io is False:
        blockers.append(f"{target.name} cannot use Premium SSD, and {', '.join(premium)} {'is' if len(premium) == 1 else 'are'} Premium: pick a size with 's' in its name")
    if target.max_data_disks is not None and len(vm.data_disks) > target.max_data_disks:
        blockers.append(f"{vm.name} has {len(vm.data_disks)} data disks and {target.name} takes at most {target.max_data_disks}")
    now_temp, new_temp = has_temp_disk(vm.size), has_temp_disk(target.name)
    if now_temp is not None and new_temp is not None and now_temp != new_temp:
        blockers.append(
            f"Azure cannot resize between a size with a temporary disk and one without ({vm.size} {'has' if now_temp else 'has no'} one, {target.name} {'has' if new_temp else 'has no'} one)"
        )
    running = vm.power_state == "running"
    losses = tuple(temp_disk_warnings(vm))
    step_warnings = ((INTERRUPTS_WARNING,) if running else ()) + losses
    before_power = vm.power_state

    async def precondition(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        state, _ = provisioning(model)
        if _vm_size_of(model).lower() == target.name.lower():
            if state == "failed":
                # An update whose operation failed leaves the new size in the model and the VM
                # provisioning-failed: the same update is sent again (Azure provisions it anew).
                return ready(f"{vm.name} has the size {target.name} but its last update failed: it is sent again")
            return already_done(f"{vm.name} already is {target.name}")
        if state in ("updating", "creating", "deleting"):
            return blocked(f"another operation is in progress on {vm.name} (provisioning state {state}): wait for it to finish, then resume")
        return ready(f"{vm.name} is {_vm_size_of(model)}, {power_state(model)}")

    async def run(ctx: StepContext) -> str:
        patch = {"properties": {"hardwareProfile": {"vmSize": target.name}}}
        await ctx.backend.update_vm(vm.id, patch, **await ctx.lro("resize"))
        return f"Azure accepted the new size {target.name}"

    async def verify(ctx: StepContext) -> Verification:
        model = await wait_for_model(ctx, lambda m: settled(m) and _vm_size_of(m).lower() == target.name.lower())
        size, power = _vm_size_of(model), power_state(model)
        state, _ = provisioning(model)
        if size.lower() != target.name.lower():
            return not_verified(f"{vm.name} is still {size}", size=size)
        if state == "failed":
            return not_verified(f"{vm.name} is {size} but Azure reports provisioning failed", size=size)
        if before_power == "running" and power != "running":
            return not_verified(f"{vm.name} is {size} but {power}, not running again", size=size, power=power)
        return verified(f"{vm.name} is {size} and {power}", size=size, power=power)

    resize = Step(
        key="resize",
        title=f"Resize {vm.name} from {vm.size} to {target.name}",
        why="The runbook's resize: more (or different) capacity, and the VM comes back on a host that has that size.",
        changes=f"changes the size to {target.name}" + ("; Azure restarts the running VM to apply it" if running else ""),
        kind=Kind.DESTRUCTIVE,
        warnings=step_warnings,
        undo=f"resize back to {vm.size} (aztriage recover --vm {vm.name} --scenario resize --size {vm.size})",
        precondition=precondition,
        run=run,
        verify=verify,
    )
    return plan(
        "resize",
        "Resize",
        facts,
        [preflight_step(facts), resize, reach_step(facts) if running else None],
        f"Resize {vm.name} from {vm.size} to {target.name}.",
        warnings=list(losses),
        blockers=blockers,
        details=difference(current, vm.size, target),
        params={"size": target.name},
        interrupts=running,
    )
