"""restore-disk: swap the VM's OS disk (or a data disk) for a disk made from a snapshot of it,
keeping the old disk. The snapshot is chosen by name or id (``source``; snapshot-disks, rescue
and the moves take them); ``disk`` is ``os`` (default) or a data disk's LUN.

OS disk: the new disk is made from the snapshot, the VM deallocated (Azure swaps the OS disk of
a deallocated VM only), its OS disk set to the new one, the VM started, RDP/SSH checked. Data
disk: the new disk is made, then one PATCH puts it at the same LUN in place of the old one while
the VM runs. Either way the application loses its disk for a moment: destructive to uptime, so
the VM's name is typed. The old disk is detached and kept (aztriage never deletes it); the new
disk is the VM's own from then on."""

from __future__ import annotations

from typing import Any

from backend.models import Disk, ResourceId, Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, power_state
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import deallocate_to_swap_step, plan
from backend.recovery.scenarios._copies import DiskCopy, disk_copy_step
from backend.recovery.scenarios._disks import arm_name, data_disk_refs, os_disk_of, resource_id, same_id, short, stamp
from backend.recovery.steps import power_step, preflight_step, reach_step


def unavailable(vm: Vm) -> str | None:
    if vm.os_disk.ephemeral:
        return f"{vm.name} has an ephemeral OS disk: it lives on the host and cannot be swapped"
    if not vm.os_disk.managed:
        return f"{vm.name} has unmanaged disks: convert them to managed disks first (az vm convert)"
    return None


def _target(vm: Vm, params: dict[str, Any]) -> Disk:
    which = str(params.get("disk") or "os").strip().lower()
    if which == "os":
        return vm.os_disk
    try:
        lun = int(which.removeprefix("lun"))
    except ValueError:
        raise PlanError(f"--disk must be os or a data disk's LUN (0, 1, ...), not {params.get('disk')!r}") from None
    for disk in vm.disks:
        if disk.lun == lun:
            return disk
    luns = ", ".join(str(d.lun) for d in vm.disks if d.lun is not None) or "none"
    raise PlanError(f"{vm.name} has no data disk at LUN {lun} (its LUNs: {luns})")


def _snapshot_id(vm: Vm, source: str) -> str:
    if source.lower().startswith("/subscriptions/"):
        return source.rstrip("/")
    return resource_id(vm.subscription_id, vm.resource_group, "Microsoft.Compute/snapshots", source)


async def gather(backend: Any, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The snapshot the disk is restored from (None: it does not exist)."""
    source = str(params.get("source") or "").strip()
    if not source:
        return
    rid = ResourceId.parse(vm_id)
    snapshot = (
        source.rstrip("/")
        if source.lower().startswith("/subscriptions/")
        else resource_id(rid.subscription_id, rid.resource_group, "Microsoft.Compute/snapshots", source)
    )
    documents["restore_source"] = await backend.get_snapshot(snapshot)


def _swap_os_step(vm: Vm, old: Disk, new_id: str) -> Step:
    new_name = short(new_id)

    async def precondition(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        if same_id(os_disk_of(model), new_id):
            return already_done(f"{vm.name}'s OS disk is already {new_name}")
        if power_state(model) not in ("stopped", "deallocated"):
            return blocked(f"{vm.name} is {power_state(model)}: Azure swaps the OS disk only of a stopped (deallocated) VM")
        return ready(f"{vm.name} is {power_state(model)}")

    async def run(ctx: StepContext) -> str:
        patch = {"properties": {"storageProfile": {"osDisk": {"name": new_name, "managedDisk": {"id": new_id}}}}}
        await ctx.backend.update_vm(vm.id, patch, **await ctx.lro("swap"))
        return f"{vm.name}'s OS disk is now {new_name}"

    return Step(
        key="swap-os-disk",
        title=f"Swap {vm.name}'s OS disk {old.name} for {new_name}",
        why="The VM keeps its identity, NICs, IPs and data disks; only the disk it boots from changes.",
        changes=f"sets the OS disk of {vm.name} to {new_name}; {old.name} is detached and kept",
        kind=Kind.CHANGE,
        undo=f"swap back: aztriage's restore-disk cannot pick a disk, so set the OS disk to {old.name} again (az vm update --os-disk {old.name}, deallocated VM)",
        precondition=precondition,
        run=run,
        verify=lambda ctx: _verify_swapped(ctx, vm, old, new_id, None),
    )


def _swap_data_step(vm: Vm, old: Disk, new_id: str) -> Step:
    new_name = short(new_id)
    lun = old.lun

    async def precondition(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        at = next((r for r in data_disk_refs(model) if r.get("lun") == lun), None)
        if at is not None and same_id((at.get("managedDisk") or {}).get("id"), new_id):
            return already_done(f"{new_name} is already at LUN {lun}")
        return ready(f"LUN {lun} holds {(at or {}).get('name') or 'nothing'}")

    async def run(ctx: StepContext) -> str:
        model = await ctx.current_model()
        refs = []
        for ref in data_disk_refs(model):
            if ref.get("lun") == lun:
                ref = {"lun": lun, "name": new_name, "createOption": "Attach", "caching": ref.get("caching") or "None", "managedDisk": {"id": new_id}}
            refs.append(ref)
        await ctx.backend.update_vm(vm.id, {"properties": {"storageProfile": {"dataDisks": refs}}}, **await ctx.lro("swap"))
        return f"LUN {lun} of {vm.name} is now {new_name}"

    return Step(
        key=f"swap-lun{lun}",
        title=f"Swap data disk {old.name} (LUN {lun}) for {new_name}",
        why="One change of the VM puts the restored disk where the old one was: the same LUN, so the guest finds it where it expects it.",
        changes=f"detaches {old.name} from LUN {lun} of {vm.name} (kept) and attaches {new_name} there; the guest loses that disk for a moment",
        kind=Kind.DESTRUCTIVE,
        warnings=(f"Whatever was written to {old.name} since the snapshot is not on {new_name}: it stays on {old.name}, which is kept.",),
        undo=f"attach {old.name} at LUN {lun} again in place of {new_name}",
        precondition=precondition,
        run=run,
        verify=lambda ctx: _verify_swapped(ctx, vm, old, new_id, lun),
    )


async def _verify_swapped(ctx: StepContext, vm: Vm, old: Disk, new_id: str, lun: int | None) -> Verification:
    model = await ctx.current_model()
    if lun is None:
        now = os_disk_of(model)
    else:
        now = next(((r.get("managedDisk") or {}).get("id") for r in data_disk_refs(model) if r.get("lun") == lun), None)
    if not same_id(now, new_id):
        return not_verified(f"{vm.name} still has {short(now or '?')} where {short(new_id)} should be")
    kept = await ctx.backend.get_disk_document(old.id or "")
    if kept is None:
        return not_verified(f"the old disk {old.name} is gone")
    if kept.get("managedBy"):
        return not_verified(f"the old disk {old.name} is still attached to {short(kept['managedBy'])}")
    await ctx.record_resource(
        new_id,
        kind="disk-copy",
        state="in-use",
        note=f"{'the OS disk' if lun is None else f'the data disk at LUN {lun}'} of {vm.name} now (yours: aztriage never deletes it)",
    )
    return verified(f"{vm.name} has {short(new_id)} {'as its OS disk' if lun is None else f'at LUN {lun}'}; the old disk {old.name} is kept, detached")


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    source = str(params.get("source") or "").strip()
    if not source:
        raise PlanError("restore-disk needs --source SNAPSHOT: the snapshot (name in the VM's resource group, or id) to make the new disk from")
    target = _target(vm, params)
    snapshot_id = _snapshot_id(vm, source)
    snapshot = facts.documents.get("restore_source")
    blockers = [r for r in (unavailable(vm),) if r]
    if snapshot is None:
        blockers.append(f"snapshot {short(snapshot_id)} does not exist")
    else:
        of = str((((snapshot.get("properties") or {}).get("creationData")) or {}).get("sourceResourceId") or "")
        if not same_id(of, target.id):
            blockers.append(
                f"snapshot {short(snapshot_id)} is of {short(of) or 'another disk'}, not of {target.name}: restore a disk from a snapshot of itself"
            )
    disk_doc: dict[str, Any] = next((d for d in facts.documents.get("disks") or () if same_id(d.get("id"), target.id)), {})
    new_id = resource_id(vm.subscription_id, vm.resource_group, "Microsoft.Compute/disks", arm_name(target.name, f"-restored-{stamp(facts)}"))
    props: dict[str, Any] = {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot_id}}
    for key in ("osType", "hyperVGeneration", "securityProfile", "supportedCapabilities"):
        if (disk_doc.get("properties") or {}).get(key) is not None:
            props[key] = (disk_doc.get("properties") or {})[key]
    copy = DiskCopy(
        copy_id=new_id,
        snapshot_id=snapshot_id,
        location=disk_doc.get("location") or vm.location,
        sku=((disk_doc.get("sku") or {}).get("name")) or target.sku or "Premium_LRS",
        zones=tuple(disk_doc.get("zones") or vm.zones or ()),
        tags={"aztriage-vm": vm.name, "aztriage-restored-from": short(snapshot_id)},
        properties=props,
        creating_note=f"restored copy of {target.name} from {short(snapshot_id)} for {vm.name}",
        kept_note=f"restored copy of {target.name}, to be swapped in",
    )
    new_name = short(new_id)
    steps: list[Step | None] = [
        preflight_step(facts),
        disk_copy_step(
            copy,
            key="restore-copy",
            title=f"Make {new_name} from snapshot {short(snapshot_id)}",
            why=f"The new disk holds {target.name} as it was when the snapshot was taken; {target.name} itself is not touched.",
            changes=f"creates disk {new_name} ({copy.sku}) from snapshot {short(snapshot_id)}",
            undo=f"delete {new_name} if it is not swapped in",
            created=f"disk {new_name} created from {short(snapshot_id)}",
            mismatch=lambda doc: None,
            described=lambda doc: f"disk {new_name} is a copy of snapshot {short(snapshot_id)}",
        ),
    ]
    warnings = []
    if target.lun is None:
        steps += [
            deallocate_to_swap_step(facts, "start it (until the swap it still has its old OS disk)"),
            _swap_os_step(vm, target, new_id),
            power_step(
                facts,
                action="start",
                key="start",
                title=f"Start {vm.name} on {new_name}",
                why="The VM boots from the restored disk.",
                changes="starts the VM",
                kind=Kind.CHANGE,
                allowed_from=("stopped", "deallocated"),
                final_power="running",
                undo="stop it",
                done_when=lambda m: f"{vm.name} is already running" if power_state(m) == "running" else None,
            ),
            reach_step(facts),
        ]
        warnings.append(f"Whatever was written to {target.name} since the snapshot is not on {new_name}: it stays on {target.name}, which is kept.")
    else:
        steps.append(_swap_data_step(vm, target, new_id))
    return plan(
        "restore-disk",
        "Restore a disk from a snapshot",
        facts,
        steps,
        f"Swap {vm.name}'s {'OS disk' if target.lun is None else f'data disk at LUN {target.lun}'} {target.name} for {new_name}, made from snapshot {short(snapshot_id)}; {target.name} is kept.",
        warnings=warnings,
        blockers=blockers,
        params={"disk": "os" if target.lun is None else str(target.lun), "source": snapshot_id},
        interrupts=target.lun is None,
    )
