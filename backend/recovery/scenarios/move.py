"""move-to-zone and move-to-set: the VM created again in an availability zone, or
in an availability set, from copies of its disks.

Azure cannot put an existing VM into a zone or a set (``zones`` and
``availabilitySet`` cannot change: 409 PropertyChangeNotAllowed), and a zonal VM
can only attach disks of its zone. So the VM is deallocated (its disks then hold
everything it wrote), each disk is snapshotted, each snapshot becomes a disk copy
in the target zone (or a regional copy for a set), and the VM is created again
with the same name, NICs, tags, identity, security profile, boot diagnostics and
extensions, as ``recreate`` does, booting from the copies. Then it must run and
RDP/SSH must answer.

The original disks are never deleted by the run: they stay, detached, in the
ledger as ``moved-disk`` (kept), with the snapshots; ``aztriage runs --release
RUN_ID`` deletes them once the moved VM is good (each checked again: detached,
and its copy attached to a VM). For a set that does not exist yet, the plan
creates it with 2 fault and 5 update domains (``Aligned``, for managed disks).

Refused, with the reason, where Azure forbids it or the run could lose data: a
region without zones, a size the zone does not offer the subscription (Resource
SKUs), Ultra disks (no snapshot to copy from in every region), a VM in a
proximity placement group, a zonal public IP of another zone, an availability
set in another region or of the Classic SKU, ephemeral OS disks, scale-set
members, unmanaged disks, CanNotDelete locks (recreate's refusals).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from backend.adapter import RecoveryBackend
from backend.models import Disk, ResourceId, Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, power_state
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, not_verified, ready, verified
from backend.recovery.scenarios import recreate as R
from backend.recovery.scenarios._common import dynamic_ip_warnings, plan, temp_disk_warnings
from backend.recovery.scenarios._copies import DiskCopy, disk_copy_step, kept_snapshot_step
from backend.recovery.scenarios._disks import arm_name, disk_props, disk_refusal, resource_id, same_id, short, stamp
from backend.recovery.scenarios._sizes import find, gather_region_sizes, region_sizes
from backend.recovery.scenarios.snapshot_disks import snapshot_name
from backend.recovery.steps import power_step, preflight_step, reach_step

T = TypeVar("T")

ZONAL_SKUS_OK = ("premium_lrs", "standardssd_lrs", "standard_lrs", "premiumv2_lrs")  # ZRS disks have no zone of their own


@dataclass(frozen=True)
class DiskMove:
    disk: Disk
    role: str  # "OS" / "data (LUN n)"
    doc: dict[str, Any]  # the disk as read when the plan was made
    snapshot_id: str
    copy_id: str
    copy_zones: tuple[str, ...]

    @property
    def copy_name(self) -> str:
        return short(self.copy_id)


def _where(params: dict[str, Any]) -> str:
    return f"zone {params['zone']}" if params.get("zone") else f"availability set {short(params.get('availability_set') or '')}"


# Azure's rule for an availability set's name: 1-80 letters, digits, '_', '.', '-'; it starts with a
# letter or digit and ends with a letter, digit or '_'.
SET_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?")


def check_set_name(value: str) -> str:
    """An availability set's name as given (`--availability-set`, or typed in the Recovery pane), or a PlanError."""
    name = value.strip()
    if not SET_NAME.fullmatch(name):
        raise PlanError(
            f"{name[:90]!r} is not an availability set's name: 1-80 letters, digits, '_', '.' or '-', starting with a letter or digit "
            "and ending with a letter, digit or '_' (or give the set's id)"
        )
    return name


def _set_id(vm: Vm, value: str) -> str:
    if value.lower().startswith("/subscriptions/"):
        return value.rstrip("/")
    return resource_id(vm.subscription_id, vm.resource_group, "Microsoft.Compute/availabilitySets", check_set_name(value))


def _disk_doc(facts: VmFacts, disk_id: str | None) -> dict[str, Any]:
    for d in facts.documents.get("disks") or ():
        if same_id(d.get("id"), disk_id):
            return d
    return {}


def _moves(facts: VmFacts, zones: tuple[str, ...]) -> list[DiskMove]:
    vm = facts.vm
    when = stamp(facts)
    tag = f"-z{zones[0]}-{when}" if zones else f"-set-{when}"
    out = []
    for disk in vm.disks:
        if not disk.id:
            continue
        rid = ResourceId.parse(disk.id)
        doc = _disk_doc(facts, disk.id)
        sku = str((doc.get("sku") or {}).get("name") or disk.sku or "")
        copy_zones = zones if sku.lower() in ZONAL_SKUS_OK else ()
        out.append(
            DiskMove(
                disk=disk,
                role="OS" if disk.lun is None else f"data (LUN {disk.lun})",
                doc=doc,
                snapshot_id=resource_id(rid.subscription_id, rid.resource_group, "Microsoft.Compute/snapshots", snapshot_name(disk.name, when)),
                copy_id=resource_id(rid.subscription_id, rid.resource_group, "Microsoft.Compute/disks", arm_name(disk.name, tag)),
                copy_zones=copy_zones,
            )
        )
    return out


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    await R.gather(backend, vm_id, params, documents)
    await gather_region_sizes(backend, vm_id, documents)
    if params.get("availability_set"):
        sub = ResourceId.parse(vm_id)
        model = documents.get("model") or {}
        value = str(params["availability_set"])
        set_id = (
            value
            if value.lower().startswith("/subscriptions/")
            else resource_id(sub.subscription_id, sub.resource_group, "Microsoft.Compute/availabilitySets", value)
        )
        documents["availability_set"] = await backend.get_availability_set(set_id)
        documents.setdefault("availability_set_location", model.get("location"))


def _copy_step(vm: Vm, move: DiskMove) -> Step:
    props = disk_props(move.doc)
    sku = str((move.doc.get("sku") or {}).get("name") or move.disk.sku or "Premium_LRS")
    copy_props: dict[str, Any] = {"creationData": {"createOption": "Copy", "sourceResourceId": move.snapshot_id}}
    for key in ("osType", "hyperVGeneration", "securityProfile", "supportedCapabilities", "networkAccessPolicy", "encryption"):
        if props.get(key):
            copy_props[key] = copy.deepcopy(props[key])
    where = f"zone {','.join(move.copy_zones)}" if move.copy_zones else "regional (no zone)"
    disk_copy = DiskCopy(
        copy_id=move.copy_id,
        snapshot_id=move.snapshot_id,
        location=move.doc.get("location") or vm.location,
        sku=sku,
        zones=move.copy_zones,
        tags=dict(move.doc.get("tags") or {}, **{"aztriage-moved-from": move.disk.name}),
        properties=copy_props,
        creating_note=f"copy of {vm.name}'s {move.role} disk {move.disk.name}, {where}",
        kept_note=f"copy of {vm.name}'s {move.role} disk, {where}: the moved VM boots from it",
    )

    def mismatch(doc: dict[str, Any]) -> str | None:
        if sorted(doc.get("zones") or ()) != sorted(move.copy_zones):
            return f"the copy {move.copy_name} is in zone {','.join(doc.get('zones') or ()) or 'none'}, not {','.join(move.copy_zones) or 'none'}"
        return None

    return disk_copy_step(
        disk_copy,
        key="copy-os" if move.disk.lun is None else f"copy-lun{move.disk.lun}",
        title=f"Copy the {move.role} disk {move.disk.name} to {move.copy_name}",
        why="The VM is created again on copies of its disks made where it goes: a zonal VM attaches only disks of its zone, and the originals stay untouched.",
        changes=f"creates disk {move.copy_name} ({sku}, {where}) from the snapshot",
        undo="release it with aztriage runs --release RUN_ID while no VM uses it",
        created=f"disk {move.copy_name} created from the snapshot, {where}",
        mismatch=mismatch,
        described=lambda doc: f"copy {move.copy_name} of {move.disk.name}: {sku}, {where}",
    )


def _kept_snapshot_step(facts: VmFacts, move: DiskMove) -> Step:
    note = f"snapshot of {facts.vm.name}'s {move.role} disk before the move: kept until you release it"
    step = kept_snapshot_step(facts, move.disk, move.role, move.snapshot_id, note)
    step.why = "The copies in the new place are made from it, and it stays as the way back until you release it."
    step.changes = step.changes.replace("kept until you delete it", "kept until you release the run")
    return step


def _set_step(vm: Vm, set_id: str, location: str) -> Step:
    name = short(set_id)
    body = {
        "location": location,
        "sku": {"name": "Aligned"},
        "tags": dict(vm.tags or {}),
        "properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5},
    }

    async def pre(ctx: StepContext) -> Check:
        if await ctx.backend.get_availability_set(set_id) is not None:
            return already_done(f"availability set {name} exists")
        return ready(f"no availability set {name} yet")

    async def run(ctx: StepContext) -> str:
        await ctx.record_resource(
            set_id, kind="availability-set", state="creating", note=f"availability set {name} for {vm.name} (yours: aztriage never deletes it)"
        )
        await ctx.backend.put_availability_set(set_id, body)
        return f"availability set {name} created with 2 fault and 5 update domains"

    async def verify(ctx: StepContext) -> Verification:
        doc = await ctx.backend.get_availability_set(set_id)
        if doc is None:
            return not_verified(f"availability set {name} does not exist")
        props = doc.get("properties") or {}
        await ctx.record_resource(set_id, kind="availability-set", state="created")
        return verified(f"availability set {name}: {props.get('platformFaultDomainCount')} fault and {props.get('platformUpdateDomainCount')} update domains")

    return Step(
        key="availability-set",
        title=f"Create availability set {name}",
        why="The set does not exist yet: a new set gets 2 fault domains (racks) and 5 update domains (maintenance batches); those counts cannot change once a VM is in it.",
        changes=f"creates availability set {name} in {vm.resource_group} (Aligned: managed disks; 2 fault, 5 update domains)",
        kind=Kind.CHANGE,
        undo=f"delete availability set {name} while it holds no VM",
        creates="availability-set",
        precondition=pre,
        run=run,
        verify=verify,
    )


def _keep_originals_step(vm: Vm, moves: list[DiskMove]) -> Step:
    async def run(ctx: StepContext) -> str:
        for m in moves:
            await ctx.record_resource(
                m.disk.id or "",
                kind="moved-disk",
                state="keep",
                note=f"{vm.name}'s original {m.role} disk before the move (now on {m.copy_name}): kept until you release it",
            )
            await ctx.record_resource(m.copy_id, kind="disk-copy", state="in-use", note=f"{vm.name}'s {m.role} disk now: never deleted by aztriage")
        await ctx.save(moved={m.disk.id: m.copy_id for m in moves})
        return "kept, detached: " + ", ".join(m.disk.name for m in moves) + f"; release them with aztriage runs --release {ctx.run_id} once {vm.name} is good"

    return Step(
        key="keep-originals",
        title="Keep the original disks until you release them",
        why="The originals are the way back if the moved VM is not good: nothing deletes them until you say so.",
        changes="nothing in Azure (lists the original disks in the run's ledger, kept until released)",
        kind=Kind.CHECK,
        run=run,
    )


def _blockers(facts: VmFacts, params: dict[str, Any], layout: R.RecreateLayout, set_doc: dict[str, Any] | None, set_id: str | None) -> list[str]:
    vm = facts.vm
    out = list(R._blockers(layout))
    props = facts.model.get("properties") or {}
    if props.get("proximityPlacementGroup"):
        out.append(
            f"{vm.name} is in proximity placement group {short((props['proximityPlacementGroup'] or {}).get('id') or '')}: Azure places its VMs together; take it out of the group first (az vm update --ppg '')"
        )
    ultra = [d.name for d in vm.disks if (d.sku or "").lower().startswith("ultra")]
    if ultra:
        out.append(
            f"{', '.join(ultra)} {'is an Ultra disk' if len(ultra) == 1 else 'are Ultra disks'}: Azure cannot snapshot Ultra disks in every region, so there is nothing to copy from; move the data to a Premium SSD first"
        )
    zone = str(params.get("zone") or "")
    if zone:
        region = region_sizes(facts)
        size = find(region, vm.size)
        if region is not None and size is not None:
            if not size.zones:
                out.append(f"{vm.location} has no availability zones: use move-to-set instead")
            else:
                refusal = size.refusal(vm.location, (zone,))
                if zone not in size.zones:
                    out.append(f"{vm.location} has no zone {zone} (it has {', '.join(size.zones)})")
                elif refusal:
                    out.append(f"{refusal}: pick another zone, or resize first")
        if list(vm.zones) == [zone]:
            out.append(f"{vm.name} already is in zone {zone}")
        for nic in vm.nics:
            for pip in nic.public_ips:
                if pip.zones and len(pip.zones) == 1 and pip.zones[0] != zone:
                    out.append(
                        f"public IP {pip.name} is pinned to zone {pip.zones[0]}: a VM in zone {zone} cannot use it (give the VM a zone-redundant or regional public IP first)"
                    )
    if set_id:
        if same_id(vm.availability_set, set_id):
            out.append(f"{vm.name} already is in availability set {short(set_id)}")
        if set_doc is not None:
            if "".join(str(set_doc.get("location") or "").split()).lower() != "".join(vm.location.split()).lower():
                out.append(f"availability set {short(set_id)} is in {set_doc.get('location')}, not in {vm.location}: a set holds VMs of its own region only")
            if str((set_doc.get("sku") or {}).get("name") or "Classic").lower() != "aligned":
                out.append(
                    f"availability set {short(set_id)} is a Classic set (unmanaged disks): a VM with managed disks needs an Aligned set; name a new set and the run creates one"
                )
    return out


def build(facts: VmFacts, params: dict[str, Any], scenario: str) -> Plan:
    vm = facts.vm
    zone = str(params.get("zone") or "").strip()
    set_value = str(params.get("availability_set") or "").strip()
    if scenario == "move-to-zone" and zone not in ("1", "2", "3"):
        raise PlanError("move-to-zone needs --zone 1, 2 or 3")
    if scenario == "move-to-set" and not set_value:
        raise PlanError("move-to-set needs --availability-set NAME (an existing set of the VM's group and region, or a new one the run creates)")
    set_id = _set_id(vm, set_value) if scenario == "move-to-set" else None
    set_doc = facts.documents.get("availability_set") if set_id else None
    zones = (zone,) if zone else ()
    layout = R.recreate_layout(facts)
    moves = _moves(facts, zones)
    copies = {same_id_key(m.disk.id): m for m in moves}
    body = copy.deepcopy(layout.body)
    storage = body["properties"]["storageProfile"]
    storage["osDisk"]["managedDisk"]["id"] = (
        copies[same_id_key(layout.original_os)].copy_id if same_id_key(layout.original_os) in copies else storage["osDisk"]["managedDisk"]["id"]
    )
    storage["osDisk"]["name"] = short(storage["osDisk"]["managedDisk"]["id"] or "") or storage["osDisk"].get("name")
    for ref in storage.get("dataDisks") or ():
        m = copies.get(same_id_key(ref["managedDisk"]["id"]))
        if m is not None:
            ref["managedDisk"]["id"], ref["name"] = m.copy_id, m.copy_name
    body.pop("zones", None)
    body["properties"].pop("availabilitySet", None)
    if zones:
        body["zones"] = list(zones)
    if set_id:
        body["properties"]["availabilitySet"] = {"id": set_id}
    create_os = storage["osDisk"]["managedDisk"]["id"]
    layout = dataclasses.replace(layout, body=body, create_os=create_os)
    where = _where({"zone": zone, "availability_set": set_id})
    running = vm.power_state == "running"

    create = R._create_step(layout)
    create.title = f"Create {vm.name} in {where} on the copies"
    create.why = "The same VM (name, size, NICs, tags, identity, security profile, boot diagnostics) in its new place, booting from the copies of its disks."
    create.changes = (
        f"creates VM {vm.name} ({vm.size}) in {where}, attaching the copies {', '.join(m.copy_name for m in moves)} (createOption Attach); deleteOption Detach"
    )
    deallocate = power_step(
        facts,
        action="deallocate",
        key="deallocate",
        title=f"Deallocate {vm.name} so its disks hold everything it wrote",
        why="The copies are made from snapshots: with the VM deallocated nothing writes to its disks after they are taken.",
        changes="stops the VM and releases its host",
        kind=Kind.DESTRUCTIVE,
        allowed_from=("running", "stopped", "deallocated"),
        final_power=None,
        warnings=tuple(temp_disk_warnings(vm) + dynamic_ip_warnings(vm)),
        undo=f"start it again (aztriage recover --vm {vm.name} --scenario start) while it is not yet deleted",
        done_when=lambda model: f"{vm.name} is deallocated" if power_state(model) == "deallocated" else None,
        verify_done=True,
    )
    assert deallocate.precondition is not None and deallocate.verify is not None
    deallocate.precondition = _unless_moved(vm, deallocate.precondition, already_done(f"{vm.name} was deleted (or created again) by this run"))
    deallocate.verify = _unless_moved(vm, deallocate.verify, verified(f"{vm.name} was deallocated before the move"))
    steps: list[Step | None] = [
        preflight_step(facts),
        R._capture_step(layout),
        deallocate,
        *(_kept_snapshot_step(facts, m) for m in moves),
        *(_copy_step(vm, m) for m in moves),
        _set_step(vm, set_id, vm.location) if set_id and set_doc is None else None,
        R._disk_options_step(layout),
        R._ip_options_step(layout) if layout.has_public_ip else None,
        R._check_kept_step(layout),
        R._delete_step(layout),
        create,
        R._running_step(layout),
        *(R.extension_step(vm, e) for e in layout.reinstall),
        reach_step(facts),
        _keep_originals_step(vm, moves),
    ]
    warnings = [w for w in R._warnings(layout) if "goes back into availability set" not in w and "capacity in zone" not in w]
    warnings.append(
        f"The original disks ({', '.join(d.name for d in vm.disks)}) are kept, detached, with their snapshots: aztriage runs --release RUN_ID deletes them once the moved VM is good."
    )
    if not running:
        warnings.append(f"{vm.name} is {vm.power_state} now; it is created again running.")
    out = plan(
        scenario,
        "Move to an availability zone" if zones else "Move to an availability set",
        facts,
        steps,
        f"Create {vm.name} again in {where} from copies of its {len(moves)} disk{'s' if len(moves) != 1 else ''}; the originals are kept until released.",
        warnings=warnings,
        blockers=_blockers(facts, params, layout, set_doc, set_id),
        details=(
            (
                "placement",
                f"zone {','.join(vm.zones)}" if vm.zones else (f"availability set {short(vm.availability_set)}" if vm.availability_set else "none"),
                where,
            ),
            *((f"{m.role} disk", m.disk.name, f"{m.copy_name} ({'zone ' + ','.join(m.copy_zones) if m.copy_zones else 'regional'})") for m in moves),
        ),
        params={"zone": zone} if zones else {"availability_set": set_id},
        interrupts=True,
    )
    out.warnings = tuple(w for w in out.warnings if "nothing in this plan deletes" not in w)
    return out


def same_id_key(resource: str | None) -> str:
    return (resource or "").lower().rstrip("/")


def _unless_moved(vm: Vm, check: Callable[[StepContext], Awaitable[T]], moved: T) -> Callable[[StepContext], Awaitable[T]]:
    """A run resumed after the delete finds no VM (or the VM already created again): the
    deallocation is long done, and `moved` says so instead of `check`."""

    async def checked(ctx: StepContext) -> T:
        if await ctx.backend.get_vm_or_none(vm.id) is None or _created_again(ctx):
            return moved
        return await check(ctx)

    return checked


def _created_again(ctx: StepContext) -> bool:
    return any(same_id(r.resource_id, ctx.vm.id) and r.kind == "vm" for r in ctx.journal.resources(ctx.run_id))


@dataclass(frozen=True)
class MoveScenario:
    id: str

    def build(self, facts: VmFacts, params: dict[str, Any]) -> Plan:
        return build(facts, params, self.id)

    def unavailable(self, vm: Vm) -> str | None:
        return disk_refusal(vm, "move")

    async def gather(self, backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
        await gather(backend, vm_id, params, documents)


TABLE = {s.id: s for s in (MoveScenario("move-to-zone"), MoveScenario("move-to-set"))}
