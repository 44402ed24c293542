"""restore-disk: swap the VM's OS disk (or a data disk) for a disk made from a snapshot of it or
from a restore point of the VM, keeping the old disk. ``source`` names either, by name or id: a
snapshot (snapshot-disks, rescue and the moves take them; a name is looked for in the VM's
resource group) or a restore point (restore-point takes them; a name is looked for among the
restore points of the VM's collections); ``disk`` is ``os`` (default) or a data disk's LUN. A
restore point holds every disk of the VM: the new disk is made from its disk restore point of
the disk being swapped (createOption Restore), and the plan says which. The list of both kinds for
a VM is backend.recovery.sources.restore_sources (what the console offers).

OS disk: the new disk is made from the source, the VM deallocated (Azure swaps the OS disk of a
deallocated VM only), its OS disk set to the new one, the VM started, RDP/SSH checked. Data disk:
the new disk is made, then one PATCH puts it at the same LUN in place of the old one while the VM
runs. Either way the application loses its disk for a moment: destructive to uptime, so the VM's
name is typed. The old disk is detached and kept (aztriage never deletes it); the new disk is the
VM's own from then on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.models import Disk, ResourceId, Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, power_state
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import deallocate_to_swap_step, plan
from backend.recovery.scenarios._copies import DiskCopy, disk_copy_step
from backend.recovery.scenarios._disks import arm_name, data_disk_refs, os_disk_of, resource_id, same_id, short, stamp, swap_os_disk
from backend.recovery.sources import RESTORE_POINT, SNAPSHOT, restore_point_documents, restore_point_source, restore_sources
from backend.recovery.steps import already_in, power_step, preflight_step, reach_step
from backend.safetext import safe_json


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


def _is_id(source: str) -> bool:
    return source.lower().startswith("/subscriptions/")


def _restore_point_id(source: str) -> str | None:
    """The restore point a --source id names (a disk restore point id names its restore point), or None."""
    low = source.lower()
    if "/restorepointcollections/" not in low or "/restorepoints/" not in low:
        return None
    cut = low.find("/diskrestorepoints/")
    return source[:cut] if cut >= 0 else source


def _snapshot_id(subscription: str, group: str, source: str) -> str:
    return source if _is_id(source) else resource_id(subscription, group, "Microsoft.Compute/snapshots", source)


async def gather(backend: Any, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The source the disk is restored from, as ARM sends it (None: it does not exist): a snapshot
    or a restore point given by id, or the one named so (a snapshot in the VM's group, a restore
    point of the VM); when the name fits more than one, their ids, and none is chosen."""
    source = str(params.get("source") or "").strip().rstrip("/")
    if not source:
        # What the operator can choose from, for the sentence that asks for --source.
        documents["restore_choices"] = [s.label for s in await restore_sources(backend, VmFacts.from_documents(documents).vm)]
        return
    rid = ResourceId.parse(vm_id)
    point_id = _restore_point_id(source) if _is_id(source) else None
    if point_id is not None:
        documents["restore_source_kind"] = RESTORE_POINT
        documents["restore_source"] = await backend.get_restore_point(point_id)
        return
    snapshot = await backend.get_snapshot(_snapshot_id(rid.subscription_id, rid.resource_group, source))
    points = [] if _is_id(source) else [d for d in await restore_point_documents(backend, vm_id) if str(d.get("name") or "").lower() == source.lower()]
    found = ([snapshot] if snapshot is not None else []) + points
    if len(found) > 1:
        documents["restore_source_candidates"] = [str(d.get("id") or "") for d in found]
        return
    documents["restore_source_kind"] = RESTORE_POINT if points else SNAPSHOT
    documents["restore_source"] = found[0] if found else None


@dataclass(frozen=True)
class _Source:
    """What the new disk is made from, as the plan words it."""

    id: str  # the snapshot or the restore point (the plan's --source from then on)
    made_from: str  # the snapshot, or the disk restore point of the disk being swapped
    words: str  # "snapshot X" / "restore point X"
    since: str  # "the snapshot" / "the restore point"
    from_restore_point: bool
    blockers: tuple[str, ...]


def _resolve(facts: VmFacts, target: Disk, source: str) -> _Source:
    vm = facts.vm
    docs = facts.documents
    candidates = docs.get("restore_source_candidates")
    doc = docs.get("restore_source")
    if candidates:
        listed = "; ".join(candidates)
        return _Source(
            source,
            source,
            source,
            "the source",
            False,
            (f"{len(candidates)} snapshots or restore points are named {source} ({listed}): give --source as an id",),
        )
    if docs.get("restore_source_kind") != RESTORE_POINT:
        snapshot_id = _snapshot_id(vm.subscription_id, vm.resource_group, source)
        words = f"snapshot {short(snapshot_id)}"
        blockers = []
        if doc is None:
            blockers.append(
                f"{words} does not exist" if _is_id(source) else f"no snapshot in {vm.resource_group} and no restore point of {vm.name} is named {source}"
            )
        else:
            of = str((((doc.get("properties") or {}).get("creationData")) or {}).get("sourceResourceId") or "")
            if not same_id(of, target.id):
                blockers.append(f"{words} is of {short(of) or 'another disk'}, not of {target.name}: restore a disk from a snapshot of itself")
        return _Source(snapshot_id, snapshot_id, words, "the snapshot", False, tuple(blockers))
    point_id = str((doc or {}).get("id") or _restore_point_id(source) or source)
    words = f"restore point {short(point_id)}"
    if doc is None:
        return _Source(point_id, point_id, words, "the restore point", True, (f"{words} does not exist",))
    blockers = []
    state = str(((doc.get("properties") or {}).get("provisioningState")) or "").lower()
    if state in ("creating", "updating", ""):
        blockers.append(f"{words} is still being created: restore from it once it has succeeded (aztriage recover --scenario restore-disk again then)")
    elif state != "succeeded":
        blockers.append(f"{words} is {state}: a disk is restored only from a restore point that succeeded; take another (restore-point)")
    held = restore_point_source(safe_json(doc), vm)
    entry = held.disk("os" if target.lun is None else target.lun) if held is not None else None
    if entry is None or not same_id(entry.disk_id, target.id):
        storage = (((doc.get("properties") or {}).get("sourceMetadata") or {}).get("storageProfile")) or {}
        names = [short(str((e.get("managedDisk") or {}).get("id") or "?")) for e in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or ())] if e]
        blockers.append(
            f"{words} holds no restore point of {target.name} (it holds {', '.join(names) or 'no disk'}): restore a disk from a restore point of itself"
        )
        return _Source(point_id, point_id, words, "the restore point", True, tuple(blockers))
    return _Source(
        point_id, entry.source_id, f"{words} (its disk restore point of {target.name}, {short(entry.source_id)})", "the restore point", True, tuple(blockers)
    )


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
        return await swap_os_disk(ctx, vm, new_id)

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


def _swap_data_step(vm: Vm, old: Disk, new_id: str, since: str) -> Step:
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
        warnings=(f"Whatever was written to {old.name} since {since} was taken is not on {new_name}: it stays on {old.name}, which is kept.",),
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
    source = str(params.get("source") or "").strip().rstrip("/")
    if not source:
        choices = facts.documents.get("restore_choices") or []
        raise PlanError(
            "restore-disk needs --source SNAPSHOT|RESTORE_POINT: the snapshot or restore point (its name, or its id) to make the new disk from; "
            + (
                f"{vm.name} has: {'; '.join(choices)}"
                if choices
                else f"{vm.name} has no snapshot of its disks and no restore point (take one: snapshot-disks, restore-point)"
            )
        )
    target = _target(vm, params)
    chosen = _resolve(facts, target, source)
    blockers = [r for r in (unavailable(vm),) if r] + list(chosen.blockers)
    disk_doc: dict[str, Any] = next((d for d in facts.documents.get("disks") or () if same_id(d.get("id"), target.id)), {})
    new_id = resource_id(vm.subscription_id, vm.resource_group, "Microsoft.Compute/disks", arm_name(target.name, f"-restored-{stamp(facts)}"))
    option = "Restore" if chosen.from_restore_point else "Copy"
    props: dict[str, Any] = {"creationData": {"createOption": option, "sourceResourceId": chosen.made_from}}
    for key in ("osType", "hyperVGeneration", "securityProfile", "supportedCapabilities"):
        if (disk_doc.get("properties") or {}).get(key) is not None:
            props[key] = (disk_doc.get("properties") or {})[key]
    copy = DiskCopy(
        copy_id=new_id,
        snapshot_id=chosen.made_from,
        location=disk_doc.get("location") or vm.location,
        sku=((disk_doc.get("sku") or {}).get("name")) or target.sku or "Premium_LRS",
        zones=tuple(disk_doc.get("zones") or vm.zones or ()),
        tags={"aztriage-vm": vm.name, "aztriage-restored-from": short(chosen.id)},
        properties=props,
        creating_note=f"restored copy of {target.name} from {short(chosen.id)} for {vm.name}",
        kept_note=f"restored copy of {target.name}, to be swapped in",
        from_restore_point=chosen.from_restore_point,
    )
    new_name = short(new_id)
    steps: list[Step | None] = [
        preflight_step(facts),
        disk_copy_step(
            copy,
            key="restore-copy",
            title=f"Make {new_name} from {chosen.words}",
            why=f"The new disk holds {target.name} as it was when {chosen.since} was taken; {target.name} itself is not touched.",
            changes=f"creates disk {new_name} ({copy.sku}) from {chosen.words} (createOption {option})",
            undo=f"delete {new_name} if it is not swapped in",
            created=f"disk {new_name} created from {chosen.words}",
            mismatch=lambda doc: None,
            described=lambda doc: f"disk {new_name} is a copy of {chosen.words}",
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
                done_when=already_in(vm, "running"),
            ),
            reach_step(facts),
        ]
        warnings.append(f"Whatever was written to {target.name} since {chosen.since} was taken is not on {new_name}: it stays on {target.name}, which is kept.")
    else:
        steps.append(_swap_data_step(vm, target, new_id, chosen.since))
    which = "OS disk" if target.lun is None else f"data disk at LUN {target.lun}"
    return plan(
        "restore-disk",
        f"Restore a disk from a {'restore point' if chosen.from_restore_point else 'snapshot'}",
        facts,
        steps,
        f"Swap {vm.name}'s {which} {target.name} for {new_name}, made from {chosen.words}; {target.name} is kept.",
        warnings=warnings,
        blockers=blockers,
        params={"disk": "os" if target.lun is None else str(target.lun), "source": chosen.id},
        interrupts=target.lun is None,
    )
