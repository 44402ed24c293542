"""recreate: delete the VM and create it again from its own disks, the
runbook's "Recreating a Virtual Machine from existing VHD".

What clears a VM that Azure cannot repair in place (a model stuck failed, a
host allocation that keeps failing) without touching the data: the VM
resource goes, its disks, NICs and public IPs stay, and a new VM with the same
name and settings boots from the same OS disk.

The order is the safety:
1. the VM's full model is in the journal (captured when the run started)
   and the exact body of the re-create is journaled before anything changes;
2. deleteOption is set to Detach on the OS disk, every data disk, every NIC
   and every public IP of those NICs, and read back: deleting the VM can then
   delete none of them (Azure deletes what says Delete, the portal's default);
3. only then the VM is deleted (typed confirmation), and the run waits until
   it is gone and checks that every disk, NIC and public IP is still there;
4. the VM is created again: same name, size, location, zone or availability
   set, NICs, data disks at the same LUNs, tags, boot diagnostics, identity,
   security profile and userData, attaching the existing OS disk
   (createOption Attach, no OS profile: the disk already is the OS);
5. it must run;
6. its extensions are installed again, one step each (a PUT of the
   extension, long-running, journaled: a resumed run polls the same one or
   recognises the extension already there), then RDP/SSH must answer when it
   has a public IP.

Extensions are child resources of the VM: Azure deletes them with it, and a
VM created on an existing OS disk starts with none. What ARM returns of each
(publisher, type, typeHandlerVersion, autoUpgradeMinorVersion,
enableAutomaticUpgrade, suppressFailures, the public settings) is in the
captured model and is what it is installed again with, in the order its
provisionAfterExtensions asks for. Protected settings are never returned by
ARM and never kept by aztriage: a handler whose configuration lives in them
(VMAccess, Custom Script, the Log Analytics agent, DSC, Azure Disk
Encryption, domain join, ...) is not installed again, since it would fail,
half-configure or run its script again; the plan and the summary list it for
the operator, who re-supplies its protected settings.

userData (the VM's user data) is returned only to GET ``$expand=userData``
and is gone once the VM is deleted: it exists nowhere else. The run carries
it, so it is read when the plan is made and kept with the captured model and
the re-create request in the journal (a private file), which a resumed run
needs after a kill between the delete and the create. Azure documents
userData as unencrypted, readable by any process on the VM, and not a place
for secrets (unlike customData and the admin password, which ARM never
returns and aztriage never keeps). The plan and the summary say that a copy
is in the journal; the plan, the run's events and the summary never print
its content. ``aztriage runs RUN_ID --format json``, which prints the
captured model so the VM can be recreated by hand, shows it as captured.

Refused, with the reason: ephemeral OS disks (nothing survives the delete),
scale-set members (the scale set owns the model), unmanaged VHD disks
(retired; convert first), a CanNotDelete lock over the VM.

A failure anywhere loses nothing: every step re-checks the world, so the run
resumes; the captured model (``aztriage runs RUN_ID --format json``: the
journal keeps it) is what to recreate from by hand if ever needed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.adapter import ResourceReads
from backend.errors import BackendError
from backend.models import Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts, power_state, provisioning
from backend.recovery.plan import Check, Kind, Plan, Precondition, Step, Verification, Verify, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import dynamic_ip_warnings, plan, temp_disk_warnings
from backend.recovery.scenarios._disks import (
    Kept,
    disk_refusal,
    get_vm,
    nic_ip_options,
    os_disk_of,
    provisioning_state,
    same_id,
    short,
    start_if_stopped,
    vm_delete_options,
    vm_settled,
    wait_for_vm,
)
from backend.recovery.scenarios._factories import summary_step
from backend.recovery.steps import poll_until, preflight_step, reach_step

# Settings of the VM carried over as they are (what the model says; read-only parts dropped).
CARRIED = (
    "hardwareProfile",
    "diagnosticsProfile",
    "availabilitySet",
    "proximityPlacementGroup",
    "host",
    "hostGroup",
    "securityProfile",
    "licenseType",
    "priority",
    "evictionPolicy",
    "billingProfile",
    "additionalCapabilities",
    "capacityReservation",
    "scheduledEventsProfile",
    "userData",  # read with $expand=userData when the plan is made (see the module docstring)
)
DISK_CARRIED = ("caching", "writeAcceleratorEnabled")

# Extension handlers (publisher.type, lower case) whose configuration lives in protected
# settings, which ARM never returns: installed again without them they fail, half-configure
# or run a script a second time. The operator installs them again with their settings.
PROTECTED_HANDLERS = {
    "microsoft.compute.vmaccessagent": "a password or an SSH key",
    "microsoft.ostcextensions.vmaccessforlinux": "a password or an SSH key",
    "microsoft.compute.customscriptextension": "its command line and storage keys",
    "microsoft.azure.extensions.customscript": "its command line and storage keys",
    "microsoft.ostcextensions.customscriptforlinux": "its command line and storage keys",
    "microsoft.enterprisecloud.monitoring.microsoftmonitoringagent": "the workspace key",
    "microsoft.enterprisecloud.monitoring.omsagentforlinux": "the workspace key",
    "microsoft.azure.diagnostics.iaasdiagnostics": "the storage account key",
    "microsoft.azure.diagnostics.linuxdiagnostic": "the storage SAS token",
    "microsoft.powershell.dsc": "the registration key or SAS token",
    "microsoft.azure.security.azurediskencryption": "the encryption settings",
    "microsoft.azure.security.azurediskencryptionforlinux": "the passphrase",
    "microsoft.compute.jsonaddomainextension": "the domain-join password",
}
# What an extension is installed again with: what ARM returns of it (never protected settings).
EXTENSION_CARRIED = ("publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion", "enableAutomaticUpgrade", "settings", "suppressFailures")


@dataclass(frozen=True)
class CapturedExtension:
    name: str
    publisher: str
    type: str
    version: str
    body: dict[str, Any]  # the PUT that installs it again
    protected: str | None  # what its protected settings hold: it is not installed again

    @property
    def handler(self) -> str:
        return f"{self.publisher}.{self.type}"

    def describe(self) -> str:
        return f"{self.name} ({self.handler} {self.version})"


def captured_extensions(model: dict[str, Any]) -> list[CapturedExtension]:
    """The VM's extensions as the captured model has them, in an order that installs each
    after those it names in provisionAfterExtensions."""
    found: dict[str, CapturedExtension] = {}
    after: dict[str, list[str]] = {}
    for doc in model.get("resources") or ():
        if "/extensions/" not in (doc.get("id") or "").lower() and (doc.get("type") or "").lower() != "microsoft.compute/virtualmachines/extensions":
            continue
        props = doc.get("properties") or {}
        name = doc.get("name") or (doc.get("id") or "").rsplit("/", 1)[-1]
        if not name or not props.get("publisher") or not props.get("type"):
            continue
        body_props = {k: copy.deepcopy(props[k]) for k in EXTENSION_CARRIED if props.get(k) is not None}
        body: dict[str, Any] = {"location": doc.get("location") or model.get("location"), "properties": body_props}
        if doc.get("tags"):
            body["tags"] = copy.deepcopy(doc["tags"])
        handler = f"{props['publisher']}.{props['type']}".lower()
        found[name] = CapturedExtension(
            name, props["publisher"], props["type"], str(props.get("typeHandlerVersion") or ""), body, PROTECTED_HANDLERS.get(handler)
        )
        after[name] = [n for n in props.get("provisionAfterExtensions") or () if isinstance(n, str)]
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in ordered or name not in found or name in path:
            return
        for first in after.get(name, ()):
            visit(first, path + (name,))
        ordered.append(name)

    for name in found:
        visit(name)
    return [found[n] for n in ordered]


def _user_data_size(model: dict[str, Any]) -> int | None:
    """Bytes of userData (decoded), None when the VM has none."""
    import base64
    import binascii

    value = (model.get("properties") or {}).get("userData")
    if not value:
        return None
    try:
        return len(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError):
        return len(value)


async def gather(backend: ResourceReads, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """userData comes only with GET $expand=userData (the model was read with the instance view):
    read it into the model the run captures, which is the only copy once the VM is deleted."""
    user_data = await backend.get_vm_user_data(vm_id)
    if user_data:
        documents["model"].setdefault("properties", {})["userData"] = user_data


def unavailable(vm: Vm) -> str | None:
    return disk_refusal(vm, "recreate it")


# --- the body of the re-create, from the captured model ----------------------------------------------


def create_body(model: dict[str, Any]) -> dict[str, Any]:
    """The PUT that creates the VM again on its own disks: the captured model's
    settings, every disk attached (the OS disk too, createOption Attach, no
    osProfile and no image), every NIC, and deleteOption Detach everywhere."""
    props = model.get("properties") or {}
    storage = props.get("storageProfile") or {}
    os_ref = storage.get("osDisk") or {}
    new_props: dict[str, Any] = {k: copy.deepcopy(props[k]) for k in CARRIED if props.get(k) is not None}
    os_disk = _attached(os_ref, osType=os_ref.get("osType"))
    data_disks = [_attached(ref, lun=ref.get("lun")) for ref in storage.get("dataDisks") or ()]
    new_storage: dict[str, Any] = {"osDisk": os_disk, "dataDisks": data_disks}
    if storage.get("diskControllerType"):
        new_storage["diskControllerType"] = storage["diskControllerType"]
    new_props["storageProfile"] = new_storage
    nics = []
    for ref in (props.get("networkProfile") or {}).get("networkInterfaces") or ():
        ref_props = {k: v for k, v in (ref.get("properties") or {}).items() if k != "deleteOption"}
        nics.append({"id": ref["id"], "properties": dict(ref_props, deleteOption="Detach")})
    new_props["networkProfile"] = {"networkInterfaces": nics}
    body: dict[str, Any] = {"location": model.get("location"), "properties": new_props}
    for key in ("tags", "zones", "plan", "extendedLocation"):
        if model.get(key):
            body[key] = copy.deepcopy(model[key])
    identity = model.get("identity") or {}
    if identity.get("type") and identity["type"].lower() != "none":
        body["identity"] = {"type": identity["type"]}
        if identity.get("userAssignedIdentities"):
            body["identity"]["userAssignedIdentities"] = {k: {} for k in identity["userAssignedIdentities"]}
    return body


def _attached(ref: dict[str, Any], **first: Any) -> dict[str, Any]:
    """The create body's reference to the disk of `ref` (the OS disk's or a data disk's, as the
    model has it): attached as it is, deleteOption Detach, with what DISK_CARRIED carries over;
    `first`: what tells it apart (the OS type, or the LUN)."""
    disk: dict[str, Any] = {
        **first,
        "name": ref.get("name"),
        "createOption": "Attach",
        "managedDisk": {"id": (ref.get("managedDisk") or {}).get("id")},
        "deleteOption": "Detach",
    }
    disk.update({k: ref[k] for k in DISK_CARRIED if ref.get(k) is not None})
    return disk


def _system_identity(model: dict[str, Any]) -> bool:
    return "systemassigned" in str((model.get("identity") or {}).get("type") or "").lower().replace(" ", "")


def _nic_ids(model: dict[str, Any]) -> list[str]:
    return [n["id"] for n in ((model.get("properties") or {}).get("networkProfile") or {}).get("networkInterfaces") or () if n.get("id")]


async def _public_ips(ctx: StepContext, model: dict[str, Any]) -> tuple[list[Kept], str | None]:
    """The public IPs of the model's NICs with the deleteOption each NIC says now, read NIC by
    NIC; the first NIC that no longer exists ends the reading (second: its id, else None)."""
    ips: list[Kept] = []
    for nic_id in _nic_ids(model):
        nic = await ctx.backend.get_nic(nic_id)
        if nic is None:
            return ips, nic_id
        ips += nic_ip_options(nic)
    return ips, None


async def _all_kept(ctx: StepContext, model: dict[str, Any]) -> list[Kept]:
    """Every disk, NIC and public IP of the VM with its deleteOption as Azure has it now."""
    ips, gone = await _public_ips(ctx, model)
    if gone:
        raise StepFailed(f"NIC {short(gone)} of {ctx.vm.name} cannot be read: it no longer exists")
    return vm_delete_options(model) + ips


def _would_delete(kept: list[Kept]) -> str | None:
    """What deleting the VM would destroy as things are (deleteOption not Detach), or None."""
    risky = [k for k in kept if not k.safe]
    if not risky:
        return None
    return "deleting the VM now would delete " + ", ".join(k.describe() for k in risky) + ": nothing was deleted"


# --- extensions, installed again ------------------------------------------------------------------------


def _same_handler(doc: dict[str, Any] | None, ext: CapturedExtension) -> bool:
    props = (doc or {}).get("properties") or {}
    return (props.get("publisher") or "").lower() == ext.publisher.lower() and (props.get("type") or "").lower() == ext.type.lower()


def extension_step(vm: Vm, ext: CapturedExtension) -> Step:
    """Install one extension again: a PUT of the child resource, journaled like every
    long-running operation; an extension already there with the same handler (installed
    by this run before an interruption) is recognised, not sent again."""

    async def precondition(ctx: StepContext) -> Check:
        current = await get_vm(ctx, vm.id)
        if current is None:
            return blocked(f"{vm.name} does not exist")
        doc = await ctx.backend.get_extension(vm.id, ext.name)
        if doc is not None and not _same_handler(doc, ext):
            props = doc.get("properties") or {}
            return blocked(
                f"{vm.name} has another extension named {ext.name} ({props.get('publisher')}.{props.get('type')}): remove it, or install {ext.handler} yourself"
            )
        state = provisioning_state(doc)
        if doc is not None and state == "succeeded":
            return already_done(f"{ext.name} is installed")
        if doc is not None and state in ("creating", "updating"):
            return already_done(f"the install of {ext.name} sent before the interruption is running")
        power = power_state(current)
        if power != "running":
            return blocked(f"{vm.name} is {power}: Azure installs extensions only on a running VM; start it, then resume")
        if doc is not None:
            return ready(f"the last install of {ext.name} ended {state or 'unknown'}: sending it again")
        return ready(f"{vm.name} runs and has no {ext.name}")

    async def run(ctx: StepContext) -> str:
        started = time.monotonic()
        try:
            await ctx.backend.put_extension(vm.id, ext.name, ext.body, **await ctx.lro("install"))
        except BackendError as exc:
            raise StepFailed(f"{exc} ({vm.name} is recreated and runs without {ext.name}: resume to try again, or install it yourself)") from exc
        return f"Azure installed {ext.handler} {ext.version} in {time.monotonic() - started:.0f} s"

    def ended(doc: dict[str, Any] | None) -> bool:
        return doc is None or provisioning_state(doc) in ("succeeded", "failed")

    async def verify(ctx: StepContext) -> Verification:
        doc = await poll_until(lambda: ctx.backend.get_extension(vm.id, ext.name), ended, ctx.settings)
        props = (doc or {}).get("properties") or {}
        state = provisioning_state(doc)
        if doc is None:
            return not_verified(f"{ext.name} is not on {vm.name}")
        if state != "succeeded":
            statuses = (props.get("instanceView") or {}).get("statuses") or []
            detail = "; ".join(x.get("message") or x.get("displayStatus") or "" for x in statuses if x.get("message") or x.get("displayStatus"))
            return not_verified(
                f"{ext.name} ended {state or 'unknown'}"
                + (f" ({detail})" if detail else "")
                + f"; {vm.name} runs without it: resume to try again, or install it yourself"
            )
        want = ext.body["properties"]
        differs = [k for k in ("typeHandlerVersion", "settings") if props.get(k) != want.get(k)]
        if not _same_handler(doc, ext):
            differs.insert(0, "handler")
        if differs:
            return not_verified(f"{ext.name} is installed but its {', '.join(differs)} differ from what it had")
        return verified(f"{ext.name} is installed again: {ext.handler} {ext.version}" + (", the same public settings" if want.get("settings") else ""))

    return Step(
        key=f"extension-{ext.name}",
        title=f"Install extension {ext.name} again",
        why="Extensions are child resources of the VM: Azure deleted this one with the VM, and a VM created on its disks starts without it.",
        changes=f"installs {ext.handler} {ext.version} on {vm.name} with the public settings it had (no reboot)",
        kind=Kind.CHANGE,
        needs_agent=True,
        undo=f"remove the extension {ext.name}",
        precondition=precondition,
        run=run,
        verify=verify,
    )


# --- the plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecreateLayout:
    """What a recreate run works from, computed once from the VM's documents: the
    captured model and the body it is created again from, what is kept and how."""

    facts: VmFacts
    vm: Vm
    model: dict[str, Any]
    original_os: str | None  # the OS disk's id: the VM is created again on this disk
    body: dict[str, Any]  # the create request (create_body of the model)
    kept_before: list[Kept]  # every disk, NIC and public IP with its deleteOption now
    at_risk: list[Kept]  # those a delete would destroy as things are (deleteOption Delete)
    has_public_ip: bool
    extensions: list[CapturedExtension]
    reinstall: list[CapturedExtension]  # installed again by the run
    by_hand: list[CapturedExtension]  # protected settings: the operator installs them again
    user_data: str | None
    user_data_size: int | None
    kept_list: str
    create_os: str | None = None  # the OS disk the VM is created on, when not its own (move-to-zone/set: a copy)

    @property
    def boots_from(self) -> str | None:
        return self.create_os or self.original_os


def recreate_layout(facts: VmFacts) -> RecreateLayout:
    vm, model = facts.vm, facts.model
    body = create_body(model)
    kept_before = vm_delete_options(model) + [k for nic in facts.documents.get("nics") or () for k in nic_ip_options(nic)]
    extensions = captured_extensions(model)
    return RecreateLayout(
        facts=facts,
        vm=vm,
        model=model,
        original_os=os_disk_of(model),
        body=body,
        kept_before=kept_before,
        at_risk=[k for k in kept_before if not k.safe],
        has_public_ip=any(nic.public_ips for nic in vm.nics),
        extensions=extensions,
        reinstall=[e for e in extensions if not e.protected],
        by_hand=[e for e in extensions if e.protected],
        user_data=body["properties"].get("userData"),
        user_data_size=_user_data_size(model),
        kept_list=", ".join(f"{k.what} {short(k.resource_id)}" for k in kept_before),
    )


def _blockers(layout: RecreateLayout) -> list[str]:
    blockers: list[str] = []
    reason = unavailable(layout.vm)
    if reason:
        blockers.append(reason)
    for lock in layout.facts.locks or ():
        if lock.level.lower() == "cannotdelete":
            blockers.append(f"{lock.describe()}: Azure refuses to delete the VM while it is there; remove it (or ask its owner) first")
    return blockers


def _warnings(layout: RecreateLayout) -> list[str]:
    vm, at_risk, reinstall, user_data = layout.vm, layout.at_risk, layout.reinstall, layout.user_data
    warnings: list[str] = []
    if at_risk:
        warnings.append(
            "deleteOption is Delete on "
            + ", ".join(k.describe().rsplit(":", 1)[0] for k in at_risk)
            + ": deleting the VM as it is would destroy them; the run sets Detach and reads it back before anything is deleted."
        )
    warnings += temp_disk_warnings(vm) + dynamic_ip_warnings(vm)
    if reinstall:
        warnings.append(
            "Extensions go with the VM resource; once it runs again the run installs "
            + ", ".join(e.describe() for e in reinstall)
            + " again with the public settings they had (Azure never returns protected settings: an extension that also had some needs them set again)."
        )
    for e in layout.by_hand:
        warnings.append(
            f"Extension {e.describe()} keeps {e.protected} in protected settings, which Azure never returns: it is not installed again; install it yourself afterwards."
        )
    if user_data:
        warnings.append(
            f"userData ({layout.user_data_size} bytes) is carried over: it exists nowhere else once the VM is deleted, so a copy is kept with the captured model "
            "in the run's journal (a private file). Azure does not encrypt userData and says it must never hold secrets."
        )
    if _system_identity(layout.model):
        warnings.append("The system-assigned managed identity is created again with a new principal ID: grant its roles (Key Vault, storage, ...) again.")
    if vm.availability_set:
        warnings.append(f"The VM goes back into availability set {short(vm.availability_set)}; Azure may give it another fault domain.")
    if vm.zones:
        warnings.append(
            f"If Azure has no {vm.size} capacity in zone {','.join(vm.zones)} when the VM is created again, the create fails: the disks stay safe and detached, and resuming tries again."
        )
    if vm.power_state in ("stopped", "deallocated"):
        warnings.append(f"{vm.name} is {vm.power_state} now; it is created again running (billing starts).")
    if (vm.priority or "").lower() == "spot":
        warnings.append("It is created again as a Spot VM with the same eviction policy: Azure may refuse it when there is no Spot capacity.")
    return warnings


async def _missing_kept(ctx: StepContext, layout: RecreateLayout) -> list[str]:
    """What the VM is created again from that is gone, or attached to another VM now."""
    out = []
    for k in layout.kept_before:
        if k.what == "NIC":
            doc = await ctx.backend.get_nic(k.resource_id)
        elif k.what == "public IP":
            doc = await ctx.backend.get_public_ip_document(k.resource_id)
        else:
            doc = await ctx.backend.get_disk_document(k.resource_id)
            if doc is not None and doc.get("managedBy") and not same_id(doc.get("managedBy"), layout.vm.id):
                out.append(f"{k.what} {short(k.resource_id)} (now attached to {short(doc['managedBy'])})")
                continue
        if doc is None:
            out.append(f"{k.what} {short(k.resource_id)}")
    return out


def _capture_step(layout: RecreateLayout) -> Step:
    """1. The VM's model, captured (the journal keeps it) before anything changes."""
    facts, vm, original_os, body = layout.facts, layout.vm, layout.original_os, layout.body
    kept_before = layout.kept_before

    async def capture(ctx: StepContext) -> str:
        captured = (ctx.journal.facts(ctx.run_id) or {}).get("model") or {}
        if not same_id(os_disk_of(captured), original_os):
            raise StepFailed("the journal does not hold the VM's model: nothing is changed without it")
        await ctx.save(create_body=body, kept=[k.resource_id for k in kept_before])
        return f"the full model of {vm.name} (as read at {facts.documents.get('fetched_at')}) and the exact re-create request are in the journal"

    return Step(
        key="capture",
        title="Keep the VM's full model in the journal",
        why="The VM resource is about to be deleted: its model (size, zone, NICs, disks and LUNs, tags, identity, security profile, extensions, userData) is what it is created again from, and what a person would need to do it by hand.",
        changes="nothing in Azure (journals the captured model and the exact re-create request)",
        kind=Kind.CHECK,
        run=capture,
    )


# What must outlive the delete, with its deleteOption as Azure has it now; or why it cannot be read.
OptionsRead = Callable[[StepContext], Awaitable[tuple[list[Kept], str | None]]]
DETACH_UNDO = "set deleteOption back to Delete where it was (the captured model says where)"


def _detach_checks(read: OptionsRead, everything: str, counted: Callable[[list[Kept]], str], unreadable_note: str = "") -> tuple[Precondition, Verify]:
    """The precondition and the verification of a step that sets deleteOption Detach on what `read`
    returns (the disks and NICs, or the public IPs): already done when every one says Detach,
    verified by reading them back; `counted` says what the verification found."""

    async def precondition(ctx: StepContext) -> Check:
        options, unreadable = await read(ctx)
        if unreadable:
            return blocked(unreadable + unreadable_note)
        risky = [k for k in options if not k.safe]
        if not risky:
            return already_done(f"{everything} already says Detach")
        return ready("deleteOption is Delete on " + ", ".join(k.describe() for k in risky))

    async def verify(ctx: StepContext) -> Verification:
        options, unreadable = await read(ctx)
        if unreadable:
            return not_verified(unreadable)
        risky = [k for k in options if not k.safe]
        if risky:
            return not_verified("still Delete: " + ", ".join(k.describe() for k in risky))
        return verified(counted(options))

    return precondition, verify


def _disk_options_step(layout: RecreateLayout) -> Step:
    """2. deleteOption Detach on the OS disk, the data disks and the NICs."""
    vm = layout.vm

    async def read(ctx: StepContext) -> tuple[list[Kept], str | None]:
        current = await get_vm(ctx, vm.id)
        if current is None:
            return [], f"{vm.name} no longer exists"
        return vm_delete_options(current), None

    async def run(ctx: StepContext) -> str:
        current = await get_vm(ctx, vm.id)
        if current is None:
            raise StepFailed(f"{vm.name} no longer exists")
        props = current.get("properties") or {}
        storage = props.get("storageProfile") or {}
        patch_storage: dict[str, Any] = {"osDisk": {"deleteOption": "Detach"}}
        if storage.get("dataDisks"):
            patch_storage["dataDisks"] = [dict(ref, deleteOption="Detach") for ref in storage["dataDisks"]]
        nics = [
            {"id": ref["id"], "properties": dict(ref.get("properties") or {}, deleteOption="Detach")}
            for ref in (props.get("networkProfile") or {}).get("networkInterfaces") or ()
        ]
        patch: dict[str, Any] = {"properties": {"storageProfile": patch_storage}}
        if nics:
            patch["properties"]["networkProfile"] = {"networkInterfaces": nics}
        await ctx.backend.update_vm(vm.id, patch, **await ctx.lro("detach-options"))
        return "deleteOption set to Detach on the OS disk, the data disks and the NICs"

    def counted(options: list[Kept]) -> str:
        return f"{sum(1 for k in options if k.what != 'NIC')} disks and {sum(1 for k in options if k.what == 'NIC')} NICs say Detach"

    precondition, verify = _detach_checks(
        read, "every disk and NIC", counted, ": nothing can be protected any more; check its disks and recreate it from the captured model"
    )
    return Step(
        key="detach-disks-nics",
        title="Set deleteOption to Detach on the disks and NICs",
        why="Azure deletes, with the VM, every disk and NIC whose deleteOption says Delete (the portal's default for new VMs): with Detach they outlive it.",
        changes=f"sets deleteOption Detach on the OS disk, {len(vm.data_disks)} data disk{'s' if len(vm.data_disks) != 1 else ''} and {len(vm.nics)} NIC{'s' if len(vm.nics) != 1 else ''} of {vm.name} (no reboot)",
        kind=Kind.CHANGE,
        undo=DETACH_UNDO,
        precondition=precondition,
        run=run,
        verify=verify,
    )


def _ip_options_step(layout: RecreateLayout) -> Step:
    """3. deleteOption Detach on the public IPs."""
    model = layout.model

    async def read(ctx: StepContext) -> tuple[list[Kept], str | None]:
        ips, gone = await _public_ips(ctx, model)
        return ips, (f"NIC {short(gone)} no longer exists" if gone else None)

    async def run(ctx: StepContext) -> str:
        changed = []
        for i, nic_id in enumerate(_nic_ids(model)):
            nic = await ctx.backend.get_nic(nic_id)
            if nic is None:
                raise StepFailed(f"NIC {short(nic_id)} no longer exists")
            if all(k.safe for k in nic_ip_options(nic)):
                continue
            body_nic = copy.deepcopy(nic)
            for cfg in (body_nic.get("properties") or {}).get("ipConfigurations") or ():
                pip = (cfg.get("properties") or {}).get("publicIPAddress")
                if pip and pip.get("id"):
                    pip.setdefault("properties", {})["deleteOption"] = "Detach"
            await ctx.backend.put_nic(nic_id, body_nic, **await ctx.lro(f"nic-{i}", journal_token=False))
            changed.append(short(nic_id))
        return f"deleteOption set to Detach on the public IPs of {', '.join(changed)}" if changed else "nothing to change"

    precondition, verify = _detach_checks(read, "every public IP", lambda ips: f"{len(ips)} public IP{'s say' if len(ips) != 1 else ' says'} Detach")
    return Step(
        key="detach-public-ips",
        title="Set deleteOption to Detach on the public IPs",
        why="A public IP whose NIC ip configuration says Delete is deleted with the VM, and its address is gone for good.",
        changes="sets deleteOption Detach on the public IP of each NIC ip configuration",
        kind=Kind.CHANGE,
        undo=DETACH_UNDO,
        precondition=precondition,
        run=run,
        verify=verify,
    )


def _check_kept_step(layout: RecreateLayout) -> Step:
    """4. Everything read back as kept before the delete."""
    vm = layout.vm

    async def check_kept(ctx: StepContext) -> str:
        current = await get_vm(ctx, vm.id)
        if current is None:
            raise StepFailed(f"{vm.name} no longer exists")
        kept = await _all_kept(ctx, current)
        deletes = _would_delete(kept)
        if deletes:
            raise StepFailed(deletes)
        await ctx.save(kept=[k.resource_id for k in kept])
        return f"all {len(kept)} say Detach: deleting the VM deletes none of " + ", ".join(f"{k.what} {short(k.resource_id)}" for k in kept)

    return Step(
        key="check-kept",
        title="Read back that nothing will be deleted with the VM",
        why="The delete comes next: this proves, from what Azure says now, that every disk, NIC and public IP survives it.",
        changes="nothing (reads the VM and its NICs)",
        kind=Kind.CHECK,
        run=check_kept,
    )


def _delete_step(layout: RecreateLayout) -> Step:
    """5. The VM deleted; its disks, NICs and public IPs stay."""
    vm, original_os, kept_before, kept_list = layout.vm, layout.original_os, layout.kept_before, layout.kept_list

    async def delete_pre(ctx: StepContext) -> Check:
        current = await get_vm(ctx, vm.id)
        if current is None:
            return already_done(f"{vm.name} is deleted")
        state, _ = provisioning(current)
        if state in ("updating", "creating"):
            return blocked(f"another operation is in progress on {vm.name} (provisioning state {state}): wait for it, then resume")
        if not same_id(os_disk_of(current), original_os):
            return blocked(f"{vm.name} no longer boots from {short(original_os or '')}: it changed since the run started; nothing was deleted")
        deletes = _would_delete(await _all_kept(ctx, current))
        if deletes:
            return blocked(deletes)
        return ready(f"{vm.name} is {power_state(current)}; every disk, NIC and public IP says Detach")

    async def delete_run(ctx: StepContext) -> str:
        await ctx.backend.delete_vm(vm.id, **await ctx.lro("delete"))
        return f"Azure deleted the VM resource {vm.name}"

    async def delete_verify(ctx: StepContext) -> Verification:
        gone = await wait_for_vm(ctx, vm.id, lambda m: m is None)
        if gone is not None:
            return not_verified(f"{vm.name} still exists (provisioning {provisioning(gone)[0]})")
        missing = await _missing_kept(ctx, layout)
        if missing:
            return not_verified("gone with the VM: " + ", ".join(missing))
        return verified(f"{vm.name} is deleted; its {len(kept_before)} disks, NICs and public IPs are all still there, detached")

    return Step(
        key="delete",
        title=f"Delete the VM resource {vm.name}",
        why="The VM is created again from its disks; the old VM resource has to go first (a name exists once per group).",
        changes=f"deletes the VM resource {vm.name} and its extensions; keeps {kept_list}",
        kind=Kind.DESTRUCTIVE,
        warnings=tuple(temp_disk_warnings(vm) + dynamic_ip_warnings(vm)) + (("Interrupts service until the VM is created again.",)),
        undo="none for the VM resource itself; the next steps create it again from the kept disks",
        precondition=delete_pre,
        run=delete_run,
        verify=delete_verify,
    )


def _create_step(layout: RecreateLayout) -> Step:
    """6. The VM created again from its own disks and NICs (or, moving it, from their copies)."""
    vm, model, original_os, body = layout.vm, layout.model, layout.boots_from, layout.body
    user_data = layout.user_data

    async def create_pre(ctx: StepContext) -> Check:
        current = await get_vm(ctx, vm.id)
        if current is not None:
            if not same_id(os_disk_of(current), original_os):
                return blocked(
                    f"a VM named {vm.name} exists and does not boot from {short(original_os or '')}: the disks are safe and detached; remove that VM or recreate under another name by hand"
                )
            if provisioning(current)[0] == "failed":
                return ready(f"{vm.name} exists on its OS disk but its creation failed: sending it again")
            return already_done(f"{vm.name} exists again on its OS disk {short(original_os or '')}")
        missing = await _missing_kept(ctx, layout)
        if missing:
            return blocked("cannot recreate: missing or in use " + ", ".join(missing))
        return ready("every disk, NIC and public IP is there and detached")

    async def create_run(ctx: StepContext) -> str:
        await ctx.record_resource(vm.id, kind="vm", state="creating", note=f"{vm.name} created again on its own disks (yours: aztriage never deletes it)")
        await ctx.backend.put_vm(vm.id, body, **await ctx.lro("create"))
        return f"Azure created {vm.name} again" + await start_if_stopped(ctx, vm.id, vm.name, "start")

    async def create_verify(ctx: StepContext) -> Verification:
        current = await wait_for_vm(ctx, vm.id, lambda m: m is None or provisioning(m)[0] in ("succeeded", "failed"))
        if current is None:
            return not_verified(f"{vm.name} does not exist")
        state, _ = provisioning(current)
        if state != "succeeded":
            return not_verified(f"{vm.name} exists but its provisioning is {state}")
        problems = []
        if not same_id(os_disk_of(current), original_os):
            problems.append("it does not boot from the original OS disk")
        want_data = {ref["lun"]: ref["managedDisk"]["id"].lower() for ref in body["properties"]["storageProfile"]["dataDisks"]}
        got_data = {
            ref.get("lun"): ((ref.get("managedDisk") or {}).get("id") or "").lower()
            for ref in ((current.get("properties") or {}).get("storageProfile") or {}).get("dataDisks") or ()
        }
        if want_data != got_data:
            problems.append("its data disks are not at their LUNs")
        if sorted(n.lower() for n in _nic_ids(current)) != sorted(n.lower() for n in _nic_ids(model)):
            problems.append("its NICs differ")
        if user_data and await ctx.backend.get_vm_user_data(vm.id) != user_data:
            problems.append("its userData is not the one it had")
        if problems:
            return not_verified(f"{vm.name} was created but " + "; ".join(problems))
        await ctx.record_resource(vm.id, kind="vm", state="created")
        return verified(
            f"{vm.name} exists again: OS disk {short(original_os or '')}, {len(want_data)} data disk{'s' if len(want_data) != 1 else ''} at LUN {', '.join(str(lun) for lun in sorted(want_data)) or '-'}, {len(_nic_ids(current))} NIC{'s' if len(_nic_ids(current)) != 1 else ''}"
            + (", the same userData" if user_data else "")
        )

    return Step(
        key="create",
        title=f"Create {vm.name} again on its own disks",
        why="The same VM, on the same OS disk and data disks, NICs, size, zone or availability set, tags, identity, security profile and boot diagnostics.",
        changes=f"creates VM {vm.name} ({vm.size}) attaching OS disk {short(original_os or '')} (createOption Attach) and the rest as they were; deleteOption stays Detach",
        kind=Kind.CHANGE,
        undo=None,
        creates="vm",
        precondition=create_pre,
        run=create_run,
        verify=create_verify,
    )


def _running_step(layout: RecreateLayout) -> Step:
    """7. It runs."""
    vm = layout.vm

    async def running_verify(ctx: StepContext) -> Verification:
        current = await wait_for_vm(
            ctx,
            vm.id,
            lambda m: (
                m is None or provisioning(m)[0] == "failed" or power_state(m) == "running" or (vm_settled(m) and power_state(m) in ("stopped", "deallocated"))
            ),
        )
        if current is None:
            return not_verified(f"{vm.name} does not exist")
        power = power_state(current)
        if power != "running":
            return not_verified(f"{vm.name} is {power}, not running", power=power)
        return verified(f"{vm.name} is running", power=power)

    return Step(
        key="running",
        title=f"Check that {vm.name} runs",
        why="Azure creating the VM is not the same as the VM running on its host.",
        changes="nothing (reads the instance view)",
        kind=Kind.CHECK,
        verify=running_verify,
    )


def _report_step(layout: RecreateLayout) -> Step:
    """8. What was kept, what was recreated, what is left to do."""
    vm, model, at_risk, extensions = layout.vm, layout.model, layout.at_risk, layout.extensions
    reinstall, by_hand, user_data, user_data_size = layout.reinstall, layout.by_hand, layout.user_data, layout.user_data_size
    kept_list = layout.kept_list

    async def summary_lines(ctx: StepContext) -> list[str]:
        lines = [
            f"{vm.name} recreated from its own disks ({vm.size}, {vm.location}"
            + (f", zone {','.join(vm.zones)}" if vm.zones else "")
            + (f", availability set {short(vm.availability_set)}" if vm.availability_set else "")
            + ")"
        ]
        lines.append(f"kept and re-attached: {kept_list}")
        lines.append(
            "deleteOption is Detach on all of them now (it was Delete on " + ", ".join(short(k.resource_id) for k in at_risk) + ")"
            if at_risk
            else "deleteOption is Detach on all of them"
        )
        if reinstall:
            lines.append("extensions installed again with their public settings: " + ", ".join(e.describe() for e in reinstall))
        if extensions:
            present = sorted(e.get("name") or "" for e in await ctx.backend.list_extensions(vm.id))
            lines.append(f"extensions on {vm.name} now: {', '.join(present) or 'none'}")
        for e in by_hand:
            lines.append(f"to do: install extension {e.describe()} again with its protected settings ({e.protected}): Azure never returns them")
        if user_data:
            lines.append(f"userData carried over ({user_data_size} bytes); a copy stays in the journal with the captured model")
        if _system_identity(model):
            lines.append("to do: grant the new system-assigned identity its roles again")
        lines.append(f"the captured model stays in the journal: aztriage runs {ctx.run_id} --format json")
        return lines

    return summary_step("What was kept, what was recreated, and what is left for you to do.", summary_lines)


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    layout = recreate_layout(facts)
    vm, original_os, kept_before = layout.vm, layout.original_os, layout.kept_before
    steps: list[Step | None] = [
        preflight_step(facts),
        _capture_step(layout),
        _disk_options_step(layout),
        _ip_options_step(layout) if layout.has_public_ip else None,
        _check_kept_step(layout),
        _delete_step(layout),
        _create_step(layout),
        _running_step(layout),
        *(extension_step(vm, e) for e in layout.reinstall),
        reach_step(facts),
        _report_step(layout),
    ]
    out = plan(
        "recreate",
        "Recreate from its disks",
        facts,
        steps,
        f"Delete {vm.name} keeping its {len(vm.disks)} disk{'s' if len(vm.disks) != 1 else ''}, NICs and public IPs, and create it again from them.",
        warnings=_warnings(layout),
        blockers=_blockers(layout),
        details=(
            ("OS disk", short(original_os or "?"), "same disk, attached"),
            ("data disks", ", ".join(f"LUN {d.lun}: {d.name}" for d in vm.data_disks) or "none", "same, same LUNs"),
            ("deleteOption", ", ".join(sorted({k.delete_option for k in kept_before})) or "-", "Detach"),
        ),
        interrupts=True,
    )
    # The common lock warning says nothing here deletes anything: here something does.
    out.warnings = tuple(w for w in out.warnings if "nothing in this plan deletes" not in w)
    return out
