"""Microsoft.Compute semantics: instance views, power transitions, disk attachment, delete options.

Functions here take the ``Store`` as their first argument; they never touch HTTP.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from .ids import ArmError, build_id, normalize_id, parse_id
from .lro import iso

if TYPE_CHECKING:  # pragma: no cover
    from .lro import Operation
    from .store import Store

VM_TYPE_L = "microsoft.compute/virtualmachines"
DISK_TYPE_L = "microsoft.compute/disks"
SNAPSHOT_TYPE_L = "microsoft.compute/snapshots"
EXT_TYPE_L = "microsoft.compute/virtualmachines/extensions"

POWER_DISPLAY = {
    "running": "VM running",
    "starting": "VM starting",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
    "unknown": "VM status unknown",
}
PROVISIONING_DISPLAY = {
    "succeeded": "Provisioning succeeded",
    "updating": "Updating",
    "creating": "Creating",
    "deleting": "Deleting",
    "failed": "Provisioning failed",
    "canceled": "Provisioning canceled",
}
AGENT_VERSION = "2.7.41491.1102"


# --------------------------------------------------------------------------- instance view
def _guest(g: dict, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in g and g[k] is not None:
            return g[k]
    return default


def agent_ready(guest: dict) -> bool:
    v = _guest(guest, "vmAgent", "vm_agent", "agent", "agentStatus", "agent_status", default="Ready")
    if isinstance(v, bool):
        return v
    if isinstance(v, dict):
        v = v.get("status", "Ready")
    return str(v).replace(" ", "").lower() == "ready"


def agent_view(guest: dict, now: float) -> dict:
    version = _guest(guest, "vmAgentVersion", "agent_version", default=AGENT_VERSION)
    if agent_ready(guest):
        status = {
            "code": "ProvisioningState/succeeded",
            "level": "Info",
            "displayStatus": "Ready",
            "message": "GuestAgent is running and processing the extensions.",
            "time": iso(now),
        }
    else:
        status = {
            "code": "ProvisioningState/Unavailable",
            "level": "Warning",
            "displayStatus": "Not Ready",
            "message": "VM status blob is found but not yet populated.",
            "time": iso(now),
        }
    return {"vmAgentVersion": version, "statuses": [status], "extensionHandlers": []}


def _prov_status(state: str, now: float, error: dict | None = None) -> dict:
    s = state.lower()
    if s == "failed":
        code = "ProvisioningState/failed"
        if error and error.get("code"):
            code += "/" + error["code"]
        out = {"code": code, "level": "Error", "displayStatus": "Provisioning failed", "time": iso(now)}
        if error and error.get("message"):
            out["message"] = error["message"]
        return out
    return {
        "code": f"ProvisioningState/{s}",
        "level": "Info",
        "displayStatus": PROVISIONING_DISPLAY.get(s, state),
        "time": iso(now),
    }


def _power_status(state: str) -> dict:
    return {"code": f"PowerState/{state}", "level": "Info", "displayStatus": POWER_DISPLAY.get(state, f"VM {state}")}


def disk_refs(doc: dict) -> list[tuple[str, dict]]:
    """[(role, ref)] for the OS disk ('os') and data disks ('data') of a VM document."""
    sp = (doc.get("properties") or {}).get("storageProfile") or {}
    out: list[tuple[str, dict]] = []
    if isinstance(sp.get("osDisk"), dict):
        out.append(("os", sp["osDisk"]))
    for d in sp.get("dataDisks") or []:
        if isinstance(d, dict):
            out.append(("data", d))
    return out


def derive_instance_view(doc: dict, guest: dict, now: float) -> dict:
    """The instance view of a VM whose document did not carry one."""
    props = doc.get("properties") or {}
    os_profile = props.get("osProfile") or {}
    osd = ((props.get("storageProfile") or {}).get("osDisk")) or {}
    power = str(_guest(guest, "powerState", "power_state", default="running")).lower()
    iv: dict[str, Any] = {
        "computerName": _guest(guest, "computerName", "computer_name", default=os_profile.get("computerName") or doc.get("name")),
    }
    os_name = _guest(guest, "osName", "os_name")
    if os_name:
        iv["osName"] = os_name
    os_version = _guest(guest, "osVersion", "os_version")
    if os_version:
        iv["osVersion"] = os_version
    iv["hyperVGeneration"] = _guest(guest, "hyperVGeneration", "hyper_v_generation", default="V1")
    if power not in ("deallocated", "deallocating"):
        iv["vmAgent"] = agent_view(guest, now)
    iv["disks"] = [
        {"name": ref.get("name") or parse_id_name((ref.get("managedDisk") or {}).get("id")), "statuses": [_prov_status("succeeded", now)]}
        for _, ref in disk_refs(doc)
    ]
    boot = ((props.get("diagnosticsProfile") or {}).get("bootDiagnostics")) or {}
    if boot.get("enabled"):
        uri = boot.get("storageUri")
        if uri:
            base = uri.rstrip("/")
            disk = osd.get("name") or doc.get("name")
            iv["bootDiagnostics"] = {
                "consoleScreenshotBlobUri": f"{base}/bootdiagnostics-{disk}/{disk}.screenshot.bmp",
                "serialConsoleLogBlobUri": f"{base}/bootdiagnostics-{disk}/{disk}.serialconsole.log",
            }
        else:
            iv["bootDiagnostics"] = {}
    prov = (props.get("provisioningState") or "Succeeded").lower()
    iv["statuses"] = [_prov_status(prov, now), _power_status(power)]
    return iv


def parse_id_name(rid: str | None) -> str | None:
    return rid.rstrip("/").rsplit("/", 1)[-1] if rid else None


def power_of(iv: dict) -> str:
    for st in iv.get("statuses") or []:
        code = st.get("code") or ""
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1].lower()
    return "unknown"


def set_power(iv: dict, state: str) -> None:
    statuses = [s for s in iv.get("statuses") or [] if not (s.get("code") or "").startswith("PowerState/")]
    statuses.append(_power_status(state))
    iv["statuses"] = statuses


def set_provisioning_status(iv: dict, state: str, now: float, error: dict | None = None) -> None:
    statuses = [s for s in iv.get("statuses") or [] if not (s.get("code") or "").startswith("ProvisioningState/")]
    iv["statuses"] = [_prov_status(state, now, error)] + statuses


# --------------------------------------------------------------------------- disks
def _sku_tier(sku: str) -> str:
    return "Premium" if sku.lower().startswith(("premium", "ultra")) else "Standard"


def new_disk_doc(
    store: Store,
    disk_id: str,
    *,
    location: str,
    size_gb: int | None,
    sku: str | None,
    create_option: str,
    source: dict | None = None,
    os_type: str | None = None,
    zones: list | None = None,
    hyper_v: str | None = None,
    extra_props: dict | None = None,
) -> dict:
    p = parse_id(disk_id)
    src_props = (source or {}).get("properties") or {}
    props: dict[str, Any] = {}
    os_type = os_type or src_props.get("osType")
    if os_type:
        props["osType"] = os_type
    hv = hyper_v or src_props.get("hyperVGeneration")
    if hv:
        props["hyperVGeneration"] = hv
    for k in ("securityProfile", "supportedCapabilities", "purchasePlan", "supportsHibernation"):
        if k in src_props:
            props[k] = copy.deepcopy(src_props[k])
    creation: dict[str, Any] = {"createOption": create_option}
    if source is not None:
        creation["sourceResourceId"] = source["id"]
        if src_props.get("uniqueId"):
            creation["sourceUniqueId"] = src_props["uniqueId"]
    props["creationData"] = creation
    size = size_gb or src_props.get("diskSizeGB") or 30
    props["diskSizeGB"] = size
    props["diskSizeBytes"] = int(size) * 1024**3
    props["encryption"] = copy.deepcopy(src_props.get("encryption") or {"type": "EncryptionAtRestWithPlatformKey"})
    props["networkAccessPolicy"] = "AllowAll"
    props["publicNetworkAccess"] = "Enabled"
    props["timeCreated"] = iso(store.now())
    props["uniqueId"] = str(uuid.uuid4())
    props["diskState"] = "Unattached"
    props["provisioningState"] = "Succeeded"
    if extra_props:
        props.update(extra_props)
    sku = sku or ((source or {}).get("sku") or {}).get("name") or "Premium_LRS"
    doc: dict[str, Any] = {
        "id": disk_id,
        "name": p.name,
        "type": "Microsoft.Compute/disks",
        "location": location,
        "sku": {"name": sku, "tier": _sku_tier(sku)},
        "properties": props,
    }
    if zones:
        doc["zones"] = list(zones)
    return doc


def attach_disk(store: Store, disk_id: str, vm_id: str) -> None:
    disk = store.own(disk_id)
    vm_doc = store.get(vm_id)
    disk["managedBy"] = vm_doc["id"] if vm_doc else vm_id
    disk.setdefault("properties", {})["diskState"] = "Attached"


def detach_disk(store: Store, disk_id: str) -> None:
    if store.get(disk_id) is None:
        return
    disk = store.own(disk_id)
    disk.pop("managedBy", None)
    disk.setdefault("properties", {})["diskState"] = "Unattached"


def _managed_id(ref: dict) -> str | None:
    md = ref.get("managedDisk")
    if isinstance(md, dict) and md.get("id"):
        return normalize_id(md["id"])
    return None


def prepare_vm_write(store: Store, vm_id: str, new_doc: dict, old_doc: dict | None) -> None:
    """Validate a VM create/update and apply its side effects on disks and NICs.

    - data disks marked ``toBeDetached`` are removed from the model;
    - disks with createOption FromImage/Empty/Copy and no id are created;
    - disks newly referenced become Attached (managedBy = VM), disks no longer
      referenced become Unattached;
    - an OS disk swap needs a stopped or deallocated VM;
    - NICs get ``virtualMachine`` set / cleared.
    Raises ArmError before changing anything when the request is invalid.
    """
    vm_l = vm_id.lower()
    p = parse_id(vm_id)
    props = new_doc.setdefault("properties", {})
    sp = props.get("storageProfile")
    if isinstance(sp, dict) and isinstance(sp.get("dataDisks"), list):
        sp["dataDisks"] = [d for d in sp["dataDisks"] if not (isinstance(d, dict) and d.get("toBeDetached"))]

    location = new_doc.get("location") or (old_doc or {}).get("location") or "eastus"
    zones = new_doc.get("zones") or (old_doc or {}).get("zones")
    to_create: list[tuple[dict, dict]] = []  # (ref, disk doc)
    for role, ref in disk_refs(new_doc):
        if _managed_id(ref) or ref.get("vhd") or ref.get("diffDiskSettings"):
            continue
        co = (ref.get("createOption") or "").lower()
        if co == "attach":
            raise ArmError(
                400,
                "InvalidParameter",
                f"Required parameter 'managedDisk.id' is missing (null) for the {'OS' if role == 'os' else 'data'} disk with createOption Attach.",
            )
        name = ref.get("name") or (f"{p.name}_OsDisk_1_{uuid.uuid4().hex}" if role == "os" else f"{p.name}_disk{ref.get('lun', 0)}_{uuid.uuid4().hex[:12]}")
        disk_id = build_id(p.subscription, p.resource_group, "Microsoft.Compute", ("disks",), (name,))
        if store.get(disk_id) is not None:
            raise ArmError(409, "Conflict", f"Disk '{name}' already exists in resource group '{p.resource_group}'.")
        source = None
        if co in ("copy", "restore"):
            src_id = ((ref.get("sourceResource") or {}).get("id")) or None
            if not src_id:
                raise ArmError(400, "InvalidParameter", "sourceResource.id is required when createOption is Copy.")
            if co == "restore":  # from a disk restore point, as Disks_CreateOrUpdate restores one
                from .restore_points import restore_source

                source = restore_source(store, src_id, "Restore")
            else:
                source = store.get(src_id)
            if source is None:
                raise ArmError(404, "NotFound", f"Resource '{src_id}' was not found.")
        os_type = ref.get("osType")
        if role == "os" and not os_type:
            os_type = "Windows" if (props.get("osProfile") or {}).get("windowsConfiguration") else "Linux"
        size = ref.get("diskSizeGB") or (127 if os_type == "Windows" and role == "os" else 30)
        sku = ((ref.get("managedDisk") or {}).get("storageAccountType")) or "Premium_LRS"
        doc = new_disk_doc(
            store,
            disk_id,
            location=location,
            size_gb=size,
            sku=sku,
            create_option={"fromimage": "FromImage", "empty": "Empty", "copy": "Copy", "restore": "Restore"}.get(co, "Empty"),
            source=source,
            os_type=os_type if role == "os" else None,
            zones=zones,
        )
        to_create.append((ref, doc))

    new_ids = {i.lower(): (role, ref) for role, ref in disk_refs(new_doc) if (i := _managed_id(ref))}
    old_ids = {i.lower() for role, ref in disk_refs(old_doc or {}) if (i := _managed_id(ref))}
    for d_l in new_ids.keys() - old_ids:
        disk = store.get(d_l)
        if disk is None:
            raise ArmError(404, "NotFound", f"Disk '{parse_id_name(d_l)}' was not found ({new_ids[d_l][1]['managedDisk']['id']}).")
        owner = disk.get("managedBy")
        if owner and owner.lower() != vm_l:
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk '{disk.get('name')}' is already attached to VM '{owner}'.",
            )
    if old_doc is not None:
        old_os = next((_managed_id(r) for role, r in disk_refs(old_doc) if role == "os"), None)
        new_os = next((_managed_id(r) for role, r in disk_refs(new_doc) if role == "os"), None)
        if old_os and new_os and old_os.lower() != new_os.lower():
            power = store.power_state(vm_id)
            if power not in ("stopped", "deallocated"):
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Operation 'swapOsDisk' is not allowed on VM '{p.name}' since the VM is {power}. Stop (deallocate) the VM before swapping its OS disk.",
                )
            old_disk, new_disk = store.get(old_os), store.get(new_os)
            if old_disk and new_disk:
                g_old = (old_disk.get("properties") or {}).get("hyperVGeneration")
                g_new = (new_disk.get("properties") or {}).get("hyperVGeneration")
                if g_old and g_new and g_old != g_new:
                    raise ArmError(
                        409,
                        "PropertyChangeNotAllowed",
                        "Swapping OS Disk is not supported since HyperVisor property on the OSDisk and VM do not match.",
                    )

    nic_new = {normalize_id(n["id"]).lower() for n in _nic_refs(new_doc)}
    nic_old = {normalize_id(n["id"]).lower() for n in _nic_refs(old_doc or {})}
    for n_l in nic_new - nic_old:
        nic = store.get(n_l)
        if nic is None:
            raise ArmError(404, "NotFound", f"Resource '{n_l}' was not found.")
        owner = ((nic.get("properties") or {}).get("virtualMachine") or {}).get("id")
        if owner and owner.lower() != vm_l:
            raise ArmError(
                400,
                "NicInUse",
                f"Network Interface {nic['id']} is used by existing resource {owner}. "
                "In order to delete the network interface, it must be dissociated from the resource.",
            )

    # ---- valid: apply
    for ref, doc in to_create:
        store.put(doc)
        ref.setdefault("managedDisk", {})["id"] = doc["id"]
        new_ids[doc["id"].lower()] = ("new", ref)
    for d_l in new_ids.keys() - old_ids:
        attach_disk(store, d_l, vm_id)
    for d_l in old_ids - new_ids.keys():
        detach_disk(store, d_l)
    for n_l in nic_new - nic_old:
        nic = store.own(n_l)
        nic.setdefault("properties", {})["virtualMachine"] = {"id": vm_id}
    for n_l in nic_old - nic_new:
        if store.get(n_l) is not None:
            store.own(n_l).get("properties", {}).pop("virtualMachine", None)


def _nic_refs(doc: dict) -> list[dict]:
    np = (doc.get("properties") or {}).get("networkProfile") or {}
    return [n for n in np.get("networkInterfaces") or [] if isinstance(n, dict) and n.get("id")]


def _delete_option(ref: dict) -> str:
    opt = ref.get("deleteOption") or (ref.get("properties") or {}).get("deleteOption") or "Detach"
    return str(opt)


def delete_vm_now(store: Store, vm_id: str) -> None:
    """Delete a VM the way Azure does: honour deleteOption on its disks, NICs and public IPs."""
    doc = store.get(vm_id)
    if doc is None:
        return
    why = f"deleteOption=Delete on VM {doc['id']}"
    for _role, ref in disk_refs(doc):
        d_id = _managed_id(ref)
        if not d_id or store.get(d_id) is None:
            continue
        if _delete_option(ref).lower() == "delete":
            store.remove(d_id, reason=why)
        else:
            detach_disk(store, d_id)
    for nref in _nic_refs(doc):
        nic = store.get(nref["id"])
        if nic is None:
            continue
        if _delete_option(nref).lower() == "delete":
            for ipc in (nic.get("properties") or {}).get("ipConfigurations") or []:
                pip_ref = ((ipc.get("properties") or {}).get("publicIPAddress")) or {}
                pip_id = pip_ref.get("id")
                if not pip_id or store.get(pip_id) is None:
                    continue
                if _delete_option(pip_ref).lower() == "delete":
                    store.remove(pip_id, reason=why)
                else:
                    store.own(pip_id).get("properties", {}).pop("ipConfiguration", None)
            store.remove(nref["id"], reason=why)
        else:
            store.own(nref["id"]).get("properties", {}).pop("virtualMachine", None)
    store.remove(vm_id, reason="delete")


# --------------------------------------------------------------------------- actions
MakeOp = Callable[..., "Operation"]


def _conflict(action: str, name: str | None, why: str) -> ArmError:
    return ArmError(409, "OperationNotAllowed", f"Operation '{action}' is not allowed on VM '{name}' {why}")


def check_not_deleting(store: Store, vm_id: str, action: str) -> None:
    doc = store.must(vm_id)
    if (doc.get("properties") or {}).get("provisioningState") == "Deleting":
        raise _conflict(
            action,
            doc.get("name"),
            "since the VM is marked for deletion. You can only retry the Delete operation (or wait for an ongoing one to complete).",
        )


def _transition(
    store: Store,
    vm_id: str,
    make_op: MakeOp,
    kind: str,
    *,
    during: str | None,
    final: str | None,
    health: str | None = None,
    on_success_extra: Callable[[Operation], None] | None = None,
) -> Operation:
    """A VM action as an LRO: the VM's power state and Resource Health read DURING while it runs
    (HEALTH instead for the health where Resource Health words it otherwise, as for a restart), and
    both read FINAL once it succeeds; None for both leaves the state as it is (reapply)."""
    during_health = health or during
    group = f"power:{vm_id.lower()}"
    store.preempt(group)
    settled = store.settled(vm_id)

    def success(op: Operation) -> None:
        if store.get(vm_id) is None:
            return
        if final:
            settle_power(store, vm_id, final)
        store.set_provisioning(vm_id, "Succeeded")
        if on_success_extra:
            on_success_extra(op)
        if final:
            store.set_vm_health(vm_id, final)

    def failure(op: Operation) -> None:
        if store.get(vm_id) is None:
            return
        if during:
            settle_power(store, vm_id, settled)
        if op.status == "Canceled" or op.forced == "Canceled":
            store.set_provisioning(vm_id, "Succeeded")
        else:
            store.set_provisioning(vm_id, "Failed", error=op.error)
        if during_health:
            store.set_vm_health(vm_id, settled)

    op = make_op(kind, group=group, on_success=success, on_failure=failure)
    if during:
        store.set_power(vm_id, during)
    store.set_provisioning(vm_id, "Updating")
    if during_health:
        store.set_vm_health(vm_id, during_health)
    return op


def epoch(text: Any) -> float | None:
    """Seconds since the epoch of an ARM time ('...Z', '+00:00', up to seven fraction digits), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    from datetime import datetime

    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = head + "." + rest[:digits][:6].ljust(6, "0") + rest[digits:]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def maintenance_allowed(status: dict, now: float) -> bool:
    """isCustomerInitiatedMaintenanceAllowed as Azure reports it: true only inside the pre-maintenance window."""
    if status.get("lastOperationResultCode") == "MaintenanceCompleted":
        return False
    start, end = epoch(status.get("preMaintenanceWindowStartTime")), epoch(status.get("preMaintenanceWindowEndTime"))
    if start is None or end is None:
        return bool(status.get("isCustomerInitiatedMaintenanceAllowed"))
    return start <= now <= end


def settle_power(store: Store, vm_id: str, power: str) -> None:
    """The VM's power state as an operation left it (settled), and the agent's status to match."""
    store.set_power(vm_id, power, settled=True)
    refresh_agent(store, vm_id)


def refresh_agent(store: Store, vm_id: str) -> None:
    iv = store.instance_view(vm_id)
    power = power_of(iv)
    if power in ("deallocated", "deallocating"):
        iv.pop("vmAgent", None)
    elif power == "running":
        iv["vmAgent"] = agent_view(store.guest_facts(vm_id), store.now())
    store.touch(vm_id.lower())


def vm_action(store: Store, vm_id: str, action: str, body: Any, make_op: MakeOp) -> Operation:
    """Start a VM action. ``make_op(kind, *, group, on_success, on_failure, result=None)`` registers the LRO."""
    a = action.lower()
    doc = store.must(vm_id)
    name = doc.get("name")
    check_not_deleting(store, vm_id, action)
    settled = store.settled(vm_id)
    power = store.power_state(vm_id)

    if a == "start":
        return _transition(store, vm_id, make_op, "start", during="starting", final="running")
    if a == "restart":
        if power in ("deallocated", "deallocating"):
            raise _conflict("restart", name, "since the VM is deallocated or marked to be deallocated.")
        return _transition(store, vm_id, make_op, "restart", during="starting", health="restarting", final="running")
    if a == "poweroff":
        if settled == "deallocated" and power == "deallocated":
            return _transition(store, vm_id, make_op, "powerOff", during=None, final=None)
        return _transition(store, vm_id, make_op, "powerOff", during="stopping", final="stopped")
    if a == "deallocate":
        return _transition(store, vm_id, make_op, "deallocate", during="deallocating", final="deallocated")
    if a == "redeploy":

        def new_host(op: Operation) -> None:
            g = store.own_guest(vm_id)
            g["host"] = uuid.uuid4().hex
            g["redeploys"] = int(g.get("redeploys", 0)) + 1
            iv = store.instance_view(vm_id)
            rnd = random.Random(g["host"])
            iv["platformFaultDomain"] = rnd.randint(0, 2)
            iv["platformUpdateDomain"] = rnd.randint(0, 4)
            store.touch(vm_id.lower())

        return _transition(store, vm_id, make_op, "redeploy", during="starting", health="redeploying", final="running", on_success_extra=new_host)
    if a == "reapply":
        return _transition(store, vm_id, make_op, "reapply", during=None, final=None)
    if a == "performmaintenance":
        mrs = store.instance_view(vm_id).get("maintenanceRedeployStatus") or {}
        if not mrs.get("isCustomerInitiatedMaintenanceAllowed"):
            raise _conflict("performMaintenance", name, "since the Subscription of this VM is not eligible.")

        def clear(op: Operation) -> None:
            store.instance_view(vm_id).pop("maintenanceRedeployStatus", None)
            g = store.own_guest(vm_id)
            g["host"] = uuid.uuid4().hex
            store.touch(vm_id.lower())

        return _transition(store, vm_id, make_op, "performMaintenance", during="starting", health="maintenance", final="running", on_success_extra=clear)
    if a == "runcommand":
        return run_command(store, vm_id, body, make_op)
    raise ArmError(404, "InvalidResourceType", f"The resource type 'virtualMachines/{action}' could not be found in the namespace 'Microsoft.Compute'.")


def run_command(store: Store, vm_id: str, body: Any, make_op: MakeOp) -> Operation:
    doc = store.must(vm_id)
    name = doc.get("name")
    if not isinstance(body, dict) or not body.get("commandId"):
        raise ArmError(400, "InvalidParameter", "Required parameter 'commandId' is missing (null).")
    group = f"runcommand:{vm_id.lower()}"
    if store.pending(group):
        raise ArmError(
            409,
            "Conflict",
            "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
        )
    if store.power_state(vm_id) != "running":
        raise ArmError(409, "OperationNotAllowed", f"The operation requires the VM '{name}' to be running (or set to run).")
    command_id = body["commandId"]
    guest = store.guest_facts(vm_id)

    def success(op: Operation) -> None:
        if store.get(vm_id) is None:
            raise ArmError(404, "NotFound", f"The virtual machine '{name}' was deleted while the command ran.")
        if not agent_ready(store.guest_facts(vm_id)):
            raise ArmError(
                409,
                "VMAgentStatusCommunicationError",
                f"VM '{name}' has not reported status for VM agent or extensions. Verify that the OS is up and healthy, "
                "the VM has a running VM agent, and that it can establish outbound connections to Azure storage.",
            )
        stdout, stderr = command_output(guest, command_id, body, store.instance_view(vm_id).get("computerName") or name or "")
        op.result = {
            "value": [
                {
                    "code": "ComponentStatus/StdOut/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": stdout,
                },
                {
                    "code": "ComponentStatus/StdErr/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": stderr,
                },
            ]
        }

    return make_op("runCommand", group=group, on_success=success, on_failure=None)


def command_output(guest: dict, command_id: str, body: dict, computer: str) -> tuple[str, str]:
    """StdOut/StdErr of a run command: from guest facts ``runCommand[commandId]`` or a plain default.

    Guest facts may give a string (stdout) or {"stdout", "stderr"}.
    """
    table = _guest(guest, "runCommand", "run_command", default={}) or {}
    out = table.get(command_id) if isinstance(table, dict) else None
    if isinstance(out, dict):
        return str(out.get("stdout", "")), str(out.get("stderr", ""))
    if isinstance(out, str):
        return out, ""
    script = body.get("script") or []
    if isinstance(script, str):
        script = [script]
    params = " ".join(f"{p.get('name')}={p.get('value')}" for p in body.get("parameters") or [] if isinstance(p, dict))
    msg = f"Executed {command_id} on {computer}."
    if script:
        msg += f" {len(script)} script line(s)."
    if params:
        msg += f" Parameters: {params}."
    return msg, ""
