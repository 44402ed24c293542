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
  it is deleted. Each disk restore point exists from the create on (``completionPercent`` 0 until
  the restore point succeeds) and holds its disk's guest as it was at that instant.
- ``GET .../restorePointCollections/{c}?$expand=restorePoints``: the collection with its restore
  points in ``properties.restorePoints`` (how a client finds the disk restore points, as Microsoft's
  documents say); ``GET .../restorePoints/{rp}/diskRestorePoints[/{d}]`` (DiskRestorePoint_Get and
  _ListByRestorePoint).
- A disk made from a disk restore point (Disks_CreateOrUpdate, ``creationData.createOption``
  ``Restore``, ``sourceResourceId`` the disk restore point): the size, SKU, OS type and generation
  of the disk it captured. Refused as Azure refuses it: a source that is not a disk restore point
  (400 ``InvalidParameter``), a restore point that is still being created or failed (409
  ``OperationNotAllowed``); a disk restore point is never a ``Copy`` source (400).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from .arm import ArmResponse, register_view, register_writer
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
    entry["diskSizeGB"] = ref.get("diskSizeGB") or _props(disk).get("diskSizeGB")
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
            "completionPercent": 0.0,
            "replicationState": "Creating",
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
    from .rescue_ops import carry_facts  # the guest on each disk, at this instant

    for drp_doc in drps:
        store.put(drp_doc)
        carry_facts(store, drp_doc["id"], drp_doc["properties"]["sourceResourceId"])
    make = arm.operation_factory(req, rp_id, namespace="Microsoft.Compute", location=vm.get("location"), duration_key="restorepoint.put")

    def success(op: Any) -> None:
        if store.get(rp_id) is None:
            return
        for drp_doc in drps:
            if store.get(drp_doc["id"]) is not None:
                store.own(drp_doc["id"])["properties"].update({"completionPercent": 100.0, "replicationState": "Succeeded"})
        store.own(rp_id).setdefault("properties", {})["provisioningState"] = "Succeeded"
        store.touch(normalize_id(rp_id).lower())
        op.result = copy.deepcopy(store.get(rp_id))

    def failure(op: Any) -> None:
        if store.get(rp_id) is not None:
            store.own(rp_id).setdefault("properties", {})["provisioningState"] = "Failed"
            store.touch(normalize_id(rp_id).lower())

    op = make("create", on_success=success, on_failure=failure)
    return arm.lro_response(req, op, 201, copy.deepcopy(doc))


def _view_collection(arm: Any, req: Any, doc: dict) -> dict:
    """RestorePointCollections_Get: with ``$expand=restorePoints``, its restore points in full."""
    if "restorepoints" not in str(req.query.get("$expand", "")).lower():
        return doc
    store: Store = arm.store
    out = copy.deepcopy(doc)
    points = [store.get(c) for c in store.children(doc["id"])]
    out.setdefault("properties", {})["restorePoints"] = [p for p in points if p and (p.get("type") or "").lower() == RP_T]
    return out


def restore_source(store: Store, source_id: str, create_option: str) -> dict:
    """What a disk is restored from (createOption Restore): the disk restore point, with the size
    and SKU of the disk it captured; Azure's refusals raised as ArmError."""
    source = store.get(normalize_id(source_id))
    if create_option.lower() != "restore":
        raise ArmError(400, "InvalidParameter", f"A disk restore point is restored with createOption Restore, not {create_option}.")
    if source is None:
        raise ArmError(404, "NotFound", f"Resource '{normalize_id(source_id)}' was not found.")
    if (source.get("type") or "").lower() != DRP_TYPE.lower():
        raise ArmError(400, "InvalidParameter", f"createOption Restore needs a disk restore point as its source; '{source['id']}' is not one.")
    rp_id = source["id"][: source["id"].lower().index("/diskrestorepoints/")]
    state = str(_props(store.get(rp_id)).get("provisioningState") or "")
    if state != "Succeeded":
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The restore point '{rp_id.rsplit('/', 1)[-1]}' is {state or 'not ready'}: a disk can be restored only from a restore point that succeeded.",
        )
    storage = (_props(store.get(rp_id)).get("sourceMetadata") or {}).get("storageProfile") or {}
    entry: dict = next(
        (
            e
            for e in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or ())]
            if normalize_id((e.get("diskRestorePoint") or {}).get("id") or "").lower() == source["id"].lower()
        ),
        {},
    )
    out = copy.deepcopy(source)
    out["properties"]["diskSizeGB"] = entry.get("diskSizeGB")
    out["sku"] = {"name": (entry.get("managedDisk") or {}).get("storageAccountType") or "Premium_LRS"}
    out["location"] = out["properties"].get("sourceResourceLocation")
    return out


register_view("Microsoft.Compute/restorePointCollections", _view_collection)
register_writer("Microsoft.Compute/restorePointCollections", _write_collection)
register_writer("Microsoft.Compute/restorePointCollections/restorePoints", _write_restore_point)
