"""Compute restore points as Azure serves them (Microsoft.Compute, RestorePointCollections and
RestorePoints).

- ``PUT .../restorePointCollections/{c}`` (RestorePointCollections_CreateOrUpdate): not
  long-running; ``properties.source.id`` names the VM (its location is filled in), and
  ``restorePointCollectionId`` is given. The source cannot change once set (400 ``PropertyChangeNotAllowed``).
- ``PUT .../restorePointCollections/{c}/restorePoints/{rp}`` (RestorePoints_Create): 201 with
  ``Azure-AsyncOperation``, ``provisioningState`` Creating until it ends (nominally a minute). It
  captures every managed disk of the collection's VM at the same instant (``excludeDisks`` left
  out): ``sourceMetadata`` is the VM's hardware, storage and OS profile with a
  ``diskRestorePoint`` per disk, each a child resource (``.../diskRestorePoints/{disk}_{guid}``).
  ``consistencyMode`` ApplicationConsistent needs the VM running with its VM agent Ready (the
  agent freezes the applications), otherwise 400 ``OperationNotAllowed``; CrashConsistent is taken
  in any power state. A VM with an ephemeral OS disk or unmanaged disks is refused (400
  ``OperationNotAllowed``), as Azure refuses them. A restore point cannot be changed once made
  (409 ``PropertyChangeNotAllowed``); a failed create is left Failed, as Azure leaves it, until
  it is deleted.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from .arm import ArmResponse, register_writer
from .ids import ArmError, normalize_id
from .lro import iso
from .store import VM_TYPE, Store

RPC_T = "microsoft.compute/restorepointcollections"
RP_T = "microsoft.compute/restorepointcollections/restorepoints"
DRP_TYPE = "Microsoft.Compute/restorePointCollections/restorePoints/diskRestorePoints"


def _props(doc: dict | None) -> dict:
    return (doc or {}).get("properties") or {}


def _write_collection(arm: Any, req: Any, doc: dict, existing: dict | None) -> ArmResponse:
    store: Store = arm.store
    props = doc.setdefault("properties", {})
    source = dict(props.get("source") or {})
    vm = store.get(normalize_id(source.get("id") or "")) if source.get("id") else None
    if existing is not None:
        old = (_props(existing).get("source") or {}).get("id") or ""
        if source.get("id") and normalize_id(source["id"]).lower() != normalize_id(old).lower():
            raise ArmError(400, "PropertyChangeNotAllowed", "Changing property 'source.id' is not allowed.")
        source = copy.deepcopy(_props(existing).get("source") or {})
        props["restorePointCollectionId"] = _props(existing).get("restorePointCollectionId")
    else:
        if vm is None or (vm.get("type") or "").lower() != VM_TYPE:
            raise ArmError(404, "NotFound", f"The source virtual machine '{source.get('id')}' of restore point collection {doc['name']} was not found.")
        source = {"id": vm["id"], "location": vm.get("location")}
        props["restorePointCollectionId"] = str(uuid.uuid4())
    props["source"] = source
    props["provisioningState"] = "Succeeded"
    store.put(doc)
    return ArmResponse(200 if existing else 201, doc)


def _disk_entry(store: Store, ref: dict, rp_id: str, *, os_type: str | None = None) -> tuple[dict, dict]:
    """(storage profile entry with its diskRestorePoint, the disk restore point document)."""
    disk_id = normalize_id((ref.get("managedDisk") or {}).get("id") or "")
    disk = store.get(disk_id) or {}
    name = ref.get("name") or disk_id.rsplit("/", 1)[-1]
    drp_id = f"{rp_id}/diskRestorePoints/{name}_{uuid.uuid4().hex[:12]}"
    entry = {k: copy.deepcopy(v) for k, v in ref.items() if k in ("lun", "name", "caching", "diskSizeGB", "writeAcceleratorEnabled")}
    entry["managedDisk"] = {
        "id": disk_id,
        "storageAccountType": ((disk.get("sku") or {}).get("name")) or (ref.get("managedDisk") or {}).get("storageAccountType"),
    }
    entry["diskRestorePoint"] = {"id": drp_id}
    if os_type:
        entry["osType"] = os_type
    dprops = _props(disk)
    drp = {
        "id": drp_id,
        "name": drp_id.rsplit("/", 1)[-1],
        "type": DRP_TYPE,
        "properties": {
            "timeCreated": iso(store.now()),
            "sourceResourceId": disk_id,
            "sourceUniqueId": dprops.get("uniqueId"),
            "sourceResourceLocation": disk.get("location"),
            "osType": dprops.get("osType"),
            "hyperVGeneration": dprops.get("hyperVGeneration"),
            "supportedCapabilities": copy.deepcopy(dprops.get("supportedCapabilities")),
            "familyId": str(uuid.uuid5(uuid.NAMESPACE_URL, disk_id.lower())),
            "networkAccessPolicy": "AllowAll",
            "publicNetworkAccess": "Enabled",
            "completionPercent": 100.0,
            "replicationState": "Succeeded",
        },
    }
    return entry, drp


def _write_restore_point(arm: Any, req: Any, doc: dict, existing: dict | None) -> ArmResponse:
    store: Store = arm.store
    if existing is not None:
        raise ArmError(409, "PropertyChangeNotAllowed", "Updating properties of an existing restore point is not allowed.")
    rp_id = doc["id"]
    collection = store.must(rp_id[: rp_id.lower().index("/restorepoints/")])
    vm_id = (_props(collection).get("source") or {}).get("id") or ""
    vm = store.get(vm_id)
    if vm is None:
        raise ArmError(404, "NotFound", f"The source virtual machine '{vm_id}' of the restore point collection no longer exists.")
    props = doc.setdefault("properties", {})
    mode = props.get("consistencyMode") or "ApplicationConsistent"
    if mode not in ("ApplicationConsistent", "CrashConsistent", "FileSystemConsistent"):
        raise ArmError(400, "InvalidParameter", f"The value '{mode}' of parameter 'consistencyMode' is not valid.")
    vprops = _props(vm)
    storage = vprops.get("storageProfile") or {}
    os_disk = storage.get("osDisk") or {}
    if (os_disk.get("diffDiskSettings") or {}).get("option"):
        raise ArmError(400, "OperationNotAllowed", f"Restore points are not supported for VM {vm['name']}: it has an ephemeral OS disk.")
    if os_disk.get("vhd") or any(d.get("vhd") for d in storage.get("dataDisks") or ()):
        raise ArmError(400, "OperationNotAllowed", f"Restore points are not supported for VM {vm['name']}: it has unmanaged disks.")
    power = store.power_state(vm["id"])
    agent = str(store.guest_facts(vm["id"]).get("agent") or "ready")
    if mode == "ApplicationConsistent" and (power != "running" or agent != "ready"):
        why = f"it is {power}" if power != "running" else "its VM agent does not answer"
        raise ArmError(
            400,
            "OperationNotAllowed",
            f"An application-consistent restore point of VM {vm['name']} needs the VM running with a working VM agent ({why}): take a crash-consistent one.",
        )
    excluded = {normalize_id(d.get("id") or "").lower() for d in props.get("excludeDisks") or ()}
    drps: list[dict] = []
    os_entry, drp = _disk_entry(store, os_disk, rp_id, os_type=os_disk.get("osType"))
    drps.append(drp)
    data_entries = []
    for ref in storage.get("dataDisks") or ():
        if normalize_id((ref.get("managedDisk") or {}).get("id") or "").lower() in excluded:
            continue
        entry, drp = _disk_entry(store, ref, rp_id)
        data_entries.append(entry)
        drps.append(drp)
    os_profile = vprops.get("osProfile") or {}
    props.update(
        {
            "consistencyMode": mode,
            "excludeDisks": copy.deepcopy(props.get("excludeDisks") or []),
            "sourceMetadata": {
                "vmId": vprops.get("vmId"),
                "location": vm.get("location"),
                "hardwareProfile": copy.deepcopy(vprops.get("hardwareProfile") or {}),
                "storageProfile": {"osDisk": os_entry, "dataDisks": data_entries, "diskControllerType": storage.get("diskControllerType") or "SCSI"},
                "osProfile": {k: os_profile.get(k) for k in ("computerName", "adminUsername") if os_profile.get(k)},
                "securityProfile": copy.deepcopy(vprops.get("securityProfile") or {}),
                "diagnosticsProfile": copy.deepcopy(vprops.get("diagnosticsProfile") or {}),
            },
            "timeCreated": iso(store.now()),
            "provisioningState": "Creating",
        }
    )
    doc.pop("location", None)
    store.put(doc)
    make = arm.operation_factory(req, rp_id, namespace="Microsoft.Compute", location=vm.get("location"), duration_key="restorepoint.put")

    def success(op: Any) -> None:
        if store.get(rp_id) is None:
            return
        for drp_doc in drps:
            store.put(drp_doc)
        store.own(rp_id).setdefault("properties", {})["provisioningState"] = "Succeeded"
        store.touch(normalize_id(rp_id).lower())
        op.result = copy.deepcopy(store.get(rp_id))

    def failure(op: Any) -> None:
        if store.get(rp_id) is not None:
            store.own(rp_id).setdefault("properties", {})["provisioningState"] = "Failed"
            store.touch(normalize_id(rp_id).lower())

    op = make("create", on_success=success, on_failure=failure)
    return arm.lro_response(req, op, 201, copy.deepcopy(doc))


register_writer("Microsoft.Compute/restorePointCollections", _write_collection)
register_writer("Microsoft.Compute/restorePointCollections/restorePoints", _write_restore_point)
