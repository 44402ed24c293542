"""resize: change the VM's size to any size its region offers the subscription,
showing the difference.

A size the VM's current hardware cluster offers (or any size, when the VM is
deallocated) is one PATCH: Azure restarts a running VM to apply it. A size the
cluster does not offer is the runbook's "move to a different node": deallocate,
resize, start again, as one plan. The sizes come from Resource SKUs (every size of
the region, with the subscription's region and zone restrictions) and the VM's
own vmSizes list (what its cluster offers)."""

from __future__ import annotations

from typing import Any

from backend.adapter import RecoveryBackend
from backend.models import Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, VmSize, power_state, provisioning
from backend.recovery.plan import INTERRUPTS_WARNING, Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import dynamic_ip_warnings, plan, temp_disk_warnings
from backend.recovery.scenarios._sizes import RegionSize, find, gather_region_sizes, region_sizes
from backend.recovery.steps import power_step, preflight_step, reach_step, settled, wait_for_model
from backend.sizes import has_temp_disk


def unavailable(vm: Vm) -> str | None:
    return None


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    await gather_region_sizes(backend, vm_id, documents)


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
        (
            "premium SSD",
            {True: "yes", False: "no", None: "?"}[VmSize(current_name, None, None, None, None).premium_io],
            {True: "yes", False: "no", None: "?"}[target.premium_io],
        ),
    )


def on_cluster(facts: VmFacts, name: str) -> bool:
    """Can the VM take `name` where it is now (one PATCH)? A deallocated VM holds no host: any size."""
    if facts.vm.power_state == "deallocated":
        return True
    return facts.size(name) is not None


def choices(facts: VmFacts) -> list[tuple[VmSize, str]]:
    """Every size the VM could be given, with how: "" (in place), "deallocate first", or why Azure refuses it.
    The region's sizes when they were read, else those of the VM's cluster."""
    vm = facts.vm
    region = region_sizes(facts)
    out: list[tuple[VmSize, str]] = []
    if region is None:
        return [(s, "") for s in facts.sizes or () if s.name.lower() != vm.size.lower()]
    for rs in sorted(region, key=lambda r: r.name.lower()):
        if rs.name.lower() == vm.size.lower():
            continue
        refusal = rs.refusal(vm.location, tuple(vm.zones))
        out.append((rs.size, f"refused: {refusal}" if refusal else ("" if on_cluster(facts, rs.name) else "deallocate first")))
    return out


def _target(facts: VmFacts, wanted: str) -> tuple[VmSize, RegionSize | None]:
    vm = facts.vm
    region = region_sizes(facts)
    if region is None and facts.sizes is None:
        raise PlanError(f"the sizes {vm.name} can take could not be read: {facts.documents.get('region_skus_error') or facts.sizes_error or 'no answer'}")
    listed = choices(facts)
    here = [s.name for s, how in listed if not how]
    moved = [s.name for s, how in listed if how == "deallocate first"]
    sample = ", ".join(here[:8]) + (" ..." if len(here) > 8 else "")
    if moved:
        sample = (
            f"{sample} where it runs now; " if here else ""
        ) + f"{len(moved)} more of the region after a deallocation ({', '.join(moved[:4])}{' ...' if len(moved) > 4 else ''})"
    if not wanted:
        raise PlanError(f"resize needs --size: {vm.name} ({vm.size}) can take {sample or 'no other size'}")
    if wanted.lower() == vm.size.lower():
        raise PlanError(f"{vm.name} already is {vm.size}")
    in_region = find(region, wanted)
    target = in_region.size if in_region is not None else facts.size(wanted)
    if target is None:
        where = f"{vm.location} does not offer it to this subscription" if region is not None else "where it runs now"
        raise PlanError(f"{vm.name} cannot take size {wanted}: {where}; it can take {sample or 'no other size'}")
    return target, in_region


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    target, in_region = _target(facts, (params.get("size") or "").strip())
    in_place = on_cluster(facts, target.name)
    listed_now = find(region_sizes(facts), vm.size)
    current = facts.size(vm.size) or (listed_now.size if listed_now is not None else None)
    blockers: list[str] = []
    if in_region is not None:
        refusal = in_region.refusal(vm.location, tuple(vm.zones))
        if refusal:
            blockers.append(f"{refusal}: pick another size, or ask for it with a quota request (Azure portal: Help + support)")
    premium = [d.name for d in vm.disks if (d.sku or "").lower().startswith(("premium", "ultra"))]
    if premium and target.premium_io is False:
        blockers.append(
            f"{target.name} cannot use Premium SSD, and {', '.join(premium)} {'is' if len(premium) == 1 else 'are'} Premium: pick a size with 's' in its name"
        )
    if target.max_data_disks is not None and len(vm.data_disks) > target.max_data_disks:
        blockers.append(f"{vm.name} has {len(vm.data_disks)} data disks and {target.name} takes at most {target.max_data_disks}")
    now_temp, new_temp = has_temp_disk(vm.size), has_temp_disk(target.name)
    if now_temp is not None and new_temp is not None and now_temp != new_temp:
        blockers.append(
            f"Azure cannot resize between a size with a temporary disk and one without ({vm.size} {'has' if now_temp else 'has no'} one, {target.name} {'has' if new_temp else 'has no'} one)"
        )
    running = vm.power_state == "running"
    moves = not in_place  # deallocate, resize, start: another host of the region
    losses = tuple(temp_disk_warnings(vm)) + (tuple(dynamic_ip_warnings(vm)) if moves else ())
    before_power = vm.power_state

    def resized(model: dict[str, Any]) -> bool:
        return _vm_size_of(model).lower() == target.name.lower()

    async def precondition(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        state, _ = provisioning(model)
        if resized(model):
            if state == "failed":
                # An update whose operation failed leaves the new size in the model and the VM
                # provisioning-failed: the same update is sent again (Azure provisions it anew).
                return ready(f"{vm.name} has the size {target.name} but its last update failed: it is sent again")
            return already_done(f"{vm.name} already is {target.name}")
        if state in ("updating", "creating", "deleting"):
            return blocked(f"another operation is in progress on {vm.name} (provisioning state {state}): wait for it to finish, then resume")
        if moves and power_state(model) != "deallocated":
            return blocked(f"{vm.name} is {power_state(model)}: its hardware cluster does not offer {target.name}, so it must be deallocated first")
        return ready(f"{vm.name} is {_vm_size_of(model)}, {power_state(model)}")

    async def run(ctx: StepContext) -> str:
        patch = {"properties": {"hardwareProfile": {"vmSize": target.name}}}
        await ctx.backend.update_vm(vm.id, patch, **await ctx.lro("resize"))
        return f"Azure accepted the new size {target.name}"

    async def verify(ctx: StepContext) -> Verification:
        model = await wait_for_model(ctx, lambda m: settled(m) and resized(m))
        size, power = _vm_size_of(model), power_state(model)
        state, _ = provisioning(model)
        if size.lower() != target.name.lower():
            return not_verified(f"{vm.name} is still {size}", size=size)
        if state == "failed":
            return not_verified(f"{vm.name} is {size} but Azure reports provisioning failed", size=size)
        if in_place and before_power == "running" and power != "running":
            return not_verified(f"{vm.name} is {size} but {power}, not running again", size=size, power=power)
        return verified(f"{vm.name} is {size} and {power}", size=size, power=power)

    undo = f"resize back to {vm.size} (aztriage recover --vm {vm.name} --scenario resize --size {vm.size})"
    resize = Step(
        key="resize",
        title=f"Resize {vm.name} from {vm.size} to {target.name}",
        why="The runbook's resize: more (or different) capacity, and the VM comes back on a host that has that size.",
        changes=f"changes the size to {target.name}" + ("; Azure restarts the running VM to apply it" if running and in_place else ""),
        kind=Kind.DESTRUCTIVE if in_place and running else Kind.CHANGE,
        warnings=((INTERRUPTS_WARNING,) if running and in_place else ()) + (losses if in_place else ()),
        undo=undo,
        precondition=precondition,
        run=run,
        verify=verify,
    )
    steps: list[Step | None] = [preflight_step(facts)]
    if moves:

        def deallocated_or_resized(model: dict[str, Any]) -> str | None:
            if resized(model):
                return f"{vm.name} already is {target.name}"
            if power_state(model) == "deallocated":
                return f"{vm.name} is deallocated"
            return None

        steps.append(
            power_step(
                facts,
                action="deallocate",
                key="deallocate",
                title=f"Deallocate {vm.name} to release its host",
                why=f"The hardware cluster {vm.name} runs on does not offer {target.name}; a deallocated VM can take any size of the region (the runbook's move to a different node).",
                changes="stops the VM and releases its host (compute billing stops until it starts again)",
                kind=Kind.DESTRUCTIVE,
                allowed_from=("running", "stopped", "deallocated"),
                final_power=None,  # deallocated, or already resized (and maybe started) when a run resumes
                warnings=((INTERRUPTS_WARNING,) if running else ()) + losses,
                undo=f"start it again (aztriage recover --vm {vm.name} --scenario start)",
                done_when=deallocated_or_resized,
                verify_done=True,
            )
        )
    steps.append(resize)
    if moves and running:
        steps.append(
            power_step(
                facts,
                action="start",
                key="start",
                title=f"Start {vm.name} as {target.name}",
                why=f"{vm.name} was running before the resize; Azure allocates it on a host that offers {target.name}.",
                changes="starts the VM (compute billing resumes)",
                kind=Kind.CHANGE,
                allowed_from=("deallocated", "stopped", "running"),
                final_power="running",
                undo=f"deallocate it (aztriage recover --vm {vm.name} --scenario deallocate)",
                done_when=lambda model: f"{vm.name} is running" if power_state(model) == "running" and resized(model) else None,
                verify_done=True,
            )
        )
    if running:
        steps.append(reach_step(facts))
    how = (
        " (deallocate, resize, start: its cluster does not offer it)"
        if moves and running
        else (" (deallocate, resize: its cluster does not offer it)" if moves else "")
    )
    details = difference(current, vm.size, target) + (
        ("host", "its current hardware cluster", "any host of the region that offers it" if moves else "the same cluster"),
    )
    return plan(
        "resize",
        "Resize",
        facts,
        steps,
        f"Resize {vm.name} from {vm.size} to {target.name}{how}.",
        warnings=list(losses),
        blockers=blockers,
        details=details,
        params={"size": target.name},
        interrupts=running,
    )
