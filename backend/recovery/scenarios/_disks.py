"""Helpers the scenarios that work on disks share (recreate, rescue, the moves, snapshot-disks,
restore-point, restore-disk): resource names that ARM accepts, the delete options of a VM's
disks, NICs and public IPs, reading a VM that may be gone, waiting for a VM other than the
plan's, swapping a VM's OS disk, and recording what a create left behind when Azure refused it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.errors import BackendError
from backend.models import ResourceId, Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, power_state, provisioning
from backend.recovery.steps import poll_until, settled

MAX_NAME = 80  # disks and snapshots: 1 to 80 characters
MAX_GROUP = 90
RUN_TAG = "aztriage-run"
FOR_TAG = "aztriage-rescue-for"

UNMANAGED_REASON = (
    "uses unmanaged (VHD) disks in storage account {account}: aztriage works only with managed disks "
    "(unmanaged disks were retired on 30 September 2025); convert the VM to managed disks first "
    "(az vm deallocate, then az vm convert), then run this again"
)


def stamp(facts: VmFacts) -> str:
    """UTC yyyymmddHHMMSS of the moment the facts were read: the same on every resume, no fractions."""
    when = facts.fetched_at or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def arm_name(base: str, suffix: str, limit: int = MAX_NAME) -> str:
    """`base` + `suffix` as a valid ARM name: allowed characters only, at most `limit`
    characters, not ending in a dot or a hyphen (the suffix is kept whole)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", base).strip(".-") or "vm"
    return clean[: limit - len(suffix)].rstrip(".-") + suffix


def resource_id(subscription: str, group: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{rtype}/{name}"


def same_id(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.lower().rstrip("/") == b.lower().rstrip("/"))


def short(resource: str) -> str:
    return resource.rstrip("/").rsplit("/", 1)[-1]


# --- refusals both scenarios share -------------------------------------------------------------


def disk_refusal(vm: Vm, what: str) -> str | None:
    """Why `what` cannot be done to this VM's disks (ephemeral, scale set, unmanaged), or None."""
    if vm.os_disk.ephemeral:
        return f"{vm.name} has an ephemeral OS disk: it lives on the host and is lost with the VM, so there is nothing to {what} from; redeploy or reimage it instead"
    if vm.vmss_id:
        return f"{vm.name} is a member of scale set {short(vm.vmss_id)}: its scale set owns its model and disks; reimage or replace the instance through the scale set instead"
    unmanaged = [d for d in vm.disks if not d.id and d.vhd_uri]
    if unmanaged:
        return f"{vm.name} " + UNMANAGED_REASON.format(account=unmanaged[0].storage_account or "?")
    return None


# --- delete options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """One thing that must outlive the VM's delete, and what its deleteOption says now."""

    what: str  # "OS disk", "data disk (LUN 0)", "NIC", "public IP"
    resource_id: str
    delete_option: str

    @property
    def safe(self) -> bool:
        return self.delete_option.lower() == "detach"

    def describe(self) -> str:
        return f"{self.what} {short(self.resource_id)}: {self.delete_option}"


def _option(ref: dict[str, Any]) -> str:
    return str(ref.get("deleteOption") or (ref.get("properties") or {}).get("deleteOption") or "Detach")


def vm_delete_options(model: dict[str, Any]) -> list[Kept]:
    props = model.get("properties") or {}
    storage = props.get("storageProfile") or {}
    out = []
    os_ref = storage.get("osDisk") or {}
    if (os_ref.get("managedDisk") or {}).get("id"):
        out.append(Kept("OS disk", os_ref["managedDisk"]["id"], _option(os_ref)))
    for ref in storage.get("dataDisks") or ():
        if (ref.get("managedDisk") or {}).get("id"):
            out.append(Kept(f"data disk (LUN {ref.get('lun')})", ref["managedDisk"]["id"], _option(ref)))
    for ref in (props.get("networkProfile") or {}).get("networkInterfaces") or ():
        if ref.get("id"):
            out.append(Kept("NIC", ref["id"], _option(ref)))
    return out


def nic_ip_options(nic: dict[str, Any]) -> list[Kept]:
    """The public IPs of a NIC with the deleteOption its ip configurations give them."""
    out = []
    for cfg in (nic.get("properties") or {}).get("ipConfigurations") or ():
        pip = ((cfg.get("properties") or {}).get("publicIPAddress")) or {}
        if pip.get("id"):
            out.append(Kept("public IP", pip["id"], _option(pip)))
    return out


# --- reading VMs that may be gone, and waiting for them ----------------------------------------------


async def get_vm(ctx: StepContext, vm_id: str) -> dict[str, Any] | None:
    return await ctx.backend.get_vm_or_none(vm_id)


async def wait_for_vm(
    ctx: StepContext,
    vm_id: str,
    predicate: Callable[[dict[str, Any] | None], bool],
    *,
    timeout: float | None = None,
) -> dict[str, Any] | None:
    """Read a VM (None once it is gone) until `predicate` holds or the timeout passes."""
    return await poll_until(lambda: get_vm(ctx, vm_id), predicate, ctx.settings, timeout=timeout)


def vm_settled(model: dict[str, Any] | None) -> bool:
    """Nothing more will happen to this VM on its own: gone, failed, or settled."""
    if model is None:
        return True
    state, _ = provisioning(model)
    return state == "failed" or settled(model)


async def start_if_stopped(ctx: StepContext, vm_id: str, name: str, operation: str) -> str:
    """A create sent again after a failed one leaves the VM as the failure did
    (deallocated): start it, as the first create would have."""
    model = await wait_for_vm(ctx, vm_id, vm_settled)
    if model is not None and provisioning(model)[0] == "succeeded" and power_state(model) in ("stopped", "deallocated"):
        await ctx.backend.vm_action(vm_id, "start", **await ctx.lro(operation))
        return f"; {name} was {power_state(model)} after the retried create: started it"
    return ""


def os_disk_of(model: dict[str, Any] | None) -> str | None:
    ref = (((model or {}).get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}
    return (ref.get("managedDisk") or {}).get("id")


def data_disk_refs(model: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((((model or {}).get("properties") or {}).get("storageProfile") or {}).get("dataDisks") or [])


def lun_of(model: dict[str, Any] | None, disk_id: str) -> int | None:
    for ref in data_disk_refs(model):
        if same_id((ref.get("managedDisk") or {}).get("id"), disk_id):
            return ref.get("lun")
    return None


def free_lun(model: dict[str, Any] | None) -> int:
    used = {ref.get("lun") for ref in data_disk_refs(model)}
    lun = 0
    while lun in used:
        lun += 1
    return lun


async def swap_os_disk(ctx: StepContext, vm: Vm, disk_id: str) -> str:
    """Make `disk_id` the OS disk of `vm` (Azure swaps the OS disk of a deallocated VM only); the run's line."""
    name = short(disk_id)
    patch = {"properties": {"storageProfile": {"osDisk": {"name": name, "managedDisk": {"id": disk_id}}}}}
    await ctx.backend.update_vm(vm.id, patch, **await ctx.lro("swap"))
    return f"{vm.name}'s OS disk is now {name}"


def tag_of(doc: dict[str, Any] | None, key: str) -> str | None:
    return ((doc or {}).get("tags") or {}).get(key)


def disk_props(doc: dict[str, Any] | None) -> dict[str, Any]:
    return (doc or {}).get("properties") or {}


def security_type(props: dict[str, Any]) -> str:
    return str((props.get("securityProfile") or {}).get("securityType") or "Standard")


# --- the ledger around a create ---------------------------------------------------------------------------


async def tracked_create(
    ctx: StepContext,
    resource: str,
    *,
    kind: str,
    note: str,
    create: Callable[[], Awaitable[Any]],
    exists: Callable[[], Awaitable[bool]],
) -> Any:
    """Record `resource` in the ledger, then create it. When the create fails, the ledger
    says what is left: "not-created" (it does not exist) or "failed" (it exists, in a
    failed state: a resume sends the create again); "creating" when that cannot be told."""
    await ctx.record_resource(resource, kind=kind, state="creating", note=note)
    try:
        return await create()
    except BackendError:
        try:
            there: bool | None = await exists()
        except BackendError:
            there = None
        if there is not None:
            await ctx.record_resource(resource, kind=kind, state="failed" if there else "not-created", note=note)
        raise


def exists_by(read: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[bool]]:
    """`tracked_create`'s `exists`, from a read of the resource that returns None when it is not there."""

    async def exists() -> bool:
        return await read() is not None

    return exists


# Terminal provisioning states a create can leave a resource in when its operation did not succeed.
LEFT_FAILED = ("failed", "canceled")


def provisioning_state(doc: dict[str, Any] | None) -> str:
    """The resource's provisioningState, lower-case ("" when it does not say)."""
    return str(((doc or {}).get("properties") or {}).get("provisioningState") or "").lower()


def made_by_this_run(ctx: StepContext, resource: str, doc: dict[str, Any] | None) -> bool:
    """`resource` is in this run's ledger as one the run created or was creating (its
    create sent, possibly failed), and it carries no other run's tag: the only kind of
    resource a run may delete in order to create it again."""
    tag = tag_of(doc, RUN_TAG)
    if tag and tag != ctx.run_id:
        return False
    return any(same_id(r.resource_id, resource) and r.state in ("creating", "failed") for r in ctx.journal.resources(ctx.run_id))


async def wait_gone(read: Callable[[], Awaitable[dict[str, Any] | None]], settings: Any) -> dict[str, Any] | None:
    """Read until the resource is gone or the settle timeout passes; returns the last read (None once gone)."""
    return await poll_until(read, lambda doc: doc is None, settings)


def rg_of(resource: str) -> str:
    return ResourceId.parse(resource).resource_group
