"""What the rescue and recreate recoveries need from the emulator beyond the core routes.

- The guest lives on the OS disk. The estate's guest facts are per VM
  (``boot``, ``ports``, ``agent``); here they follow the disk they are on:
  a snapshot or a disk copy carries the facts of its source as they were
  when it was taken; deleting a VM leaves them on its OS disk; a VM created
  on an existing disk (createOption Attach) boots what that disk holds; an
  OS-disk swap takes the old disk's facts away with it and brings the new
  disk's. Boot diagnostics (backend/emulator/bootdiag.py) and the guest
  listeners (backend/emulator/guest.py) read the VM's facts, so a repaired
  copy swapped in boots "ok" in the serial log and answers RDP/SSH again.
- The repair itself: a run command on a (rescue) VM whose script works on
  one of its data disks (``/dev/disk/azure/scsi1/lunN`` or ``LUN N``)
  repairs the guest on that disk: fsck clears a file system that needed a
  manual check; adding ``nofail`` in fstab clears emergency mode; a Windows
  script that loads the SYSTEM hive and fixes storvsc/BCD (or runs chkdsk)
  clears a stop code; fDenyTSConnections / the Remote Desktop firewall rule
  make 3389 answer; enabling sshd makes a refused 22 answer. A guest that
  did not boot shows its remote port silent: once it boots, the port
  answers with its service again.
- OS-disk swaps Azure refuses and the core does not check: a disk of
  another OS type, another security type (Trusted Launch, confidential), or
  a Premium disk on a size without premium storage (409, as ARM answers).
- ARM never returns ``osProfile.adminPassword`` or ``customData``: neither
  does the emulator (they are dropped from the stored document too). A VM
  created here keeps its administrator in its guest facts (``account``: the
  user, a salted hash of the password, the SSH public keys), which the serial
  console's login checks (backend/emulator/accounts.py).
- A VM created on an existing OS disk reports that disk's Hyper-V
  generation in its instance view (the core's default is V1).
- ``GET /subscriptions/{s}/resourceGroups/{rg}/resources``: the resources
  of a group (ARM's Resources - List By Resource Group), so a cleanup can
  see what a group holds before deleting it.

Nothing here imports the Azure SDK. Importing this module registers it
(server.py imports it after recovery_ops, whose run command it extends).
"""

from __future__ import annotations

import copy
import json
import re
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import recovery_ops  # its runCommand handler is the one extended here
from .accounts import provisioned_account
from .arm import ACTION_HANDLERS, error_response
from .ids import ArmError, normalize_id, parse_id
from .server import Emulator
from .store import VM_TYPE, Store
from .vmsize import premium_capable

DISK_KEYS = ("boot", "ports", "agent", "repairs")  # the guest facts that live on the OS disk
DEFAULT_PORT = {"22": "ssh", "3389": "rdp"}
_DISK_TYPES = ("microsoft.compute/disks", "microsoft.compute/snapshots")
_LUN = re.compile(r"\blun\s*(\d+)\b")
_SECRET_PROFILE_KEYS = ("adminPassword", "customData")


@dataclass
class RescueState:
    disk_facts: dict[str, dict] = field(default_factory=dict)  # disk or snapshot id (lower) -> guest facts on it
    resources_seen: int = 0
    repairs: int = 0


_STATES: weakref.WeakKeyDictionary[Store, RescueState] = weakref.WeakKeyDictionary()


def _state(store: Store) -> RescueState:
    state = _STATES.get(store)
    if state is None:
        state = _STATES[store] = RescueState()
    if state.resources_seen != id(store.resources):  # first use, or a reset to the estate
        state.resources_seen = id(store.resources)
        state.disk_facts = {}
        state.repairs = 0
    return state


def _props(doc: dict | None) -> dict:
    return (doc or {}).get("properties") or {}


def _os_ref(doc: dict | None) -> dict:
    return (_props(doc).get("storageProfile") or {}).get("osDisk") or {}


def os_disk_id(doc: dict | None) -> str | None:
    disk_id = (_os_ref(doc).get("managedDisk") or {}).get("id")
    return normalize_id(disk_id).lower() if disk_id else None


def _subset(facts: dict) -> dict:
    return {k: copy.deepcopy(facts[k]) for k in DISK_KEYS if k in facts}


def facts_of_disk(store: Store, disk_id: str) -> dict:
    """The guest facts on a disk or snapshot. While a disk is a VM's OS disk, that VM's facts
    are the truth (run command and VMAccess change them there); otherwise those recorded
    when it was last taken off a VM, copied or repaired."""
    disk_l = normalize_id(disk_id).lower()
    disk = store.get(disk_l)
    owner = (disk or {}).get("managedBy")
    if owner:
        vm = store.get(owner)
        if vm is not None and os_disk_id(vm) == disk_l:
            return _subset(store.guest_facts(vm["id"]))
    return _state(store).disk_facts.get(disk_l) or {}


def _record_disk(store: Store, disk_id: str, facts: dict) -> None:
    _state(store).disk_facts[normalize_id(disk_id).lower()] = _subset(facts)


def carry_facts(store: Store, copy_id: str, source_id: str) -> None:
    """`copy_id` (a disk restore point, a copy) holds the guest that `source_id` holds now."""
    _record_disk(store, copy_id, facts_of_disk(store, source_id))


def _save_vm_to_disk(store: Store, vm_doc: dict) -> None:
    disk_l = os_disk_id(vm_doc)
    if disk_l:
        _record_disk(store, disk_l, store.guest_facts(vm_doc["id"]))


def _boot_vm_from(store: Store, vm_id: str, facts: dict) -> None:
    """The VM now boots the guest these facts describe."""
    guest = store.own_guest(vm_id)
    for key in DISK_KEYS:
        if key in facts:
            guest[key] = copy.deepcopy(facts[key])
        else:
            guest.pop(key, None)
    store.touch(normalize_id(vm_id).lower())


# --- what Azure refuses in an OS-disk swap --------------------------------------------------


def _security_type(props: dict) -> str:
    return str((props.get("securityProfile") or {}).get("securityType") or "Standard")


def check_swap(store: Store, vm_doc: dict, new_disk_id: str) -> None:
    """ARM's refusals of an OS-disk swap that the core's generation check does not make."""
    disk = store.get(new_disk_id)
    if disk is None:
        return  # the core answers 404
    name = vm_doc.get("name")
    vm_os = str(_os_ref(vm_doc).get("osType") or "")
    disk_os = str(_props(disk).get("osType") or "")
    if vm_os and disk_os and vm_os.lower() != disk_os.lower():
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The OS disk '{disk.get('name')}' has OS type {disk_os} and VM '{name}' is {vm_os}: an OS disk swap cannot change the OS type.",
        )
    vm_security = _security_type(_props(vm_doc))
    disk_security = _security_type(_props(disk))
    if vm_security.lower() != disk_security.lower() and not (vm_security == "Standard" and disk_security.lower() == "standard"):
        raise ArmError(
            409,
            "PropertyChangeNotAllowed",
            f"Security type of VM '{name}' ({vm_security}) is not compatible with the security type of attached OS Disk '{disk.get('name')}' ({disk_security}).",
        )
    sku = str((disk.get("sku") or {}).get("name") or "")
    size = str((_props(vm_doc).get("hardwareProfile") or {}).get("vmSize") or "")
    if sku.lower().startswith(("premium", "ultra")) and premium_capable(size) is False:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Requested operation cannot be performed because storage account type '{sku}' is not supported for VM size '{size}'.",
        )


# --- the repair on a rescue VM ----------------------------------------------------------------


def _script_text(body: dict) -> str:
    script = body.get("script") or []
    if isinstance(script, str):
        script = [script]
    return "\n".join(str(line) for line in script).lower()


def repair_disk(facts: dict, text: str, os_type: str, device: str) -> list[str]:
    """Apply what a repair script does to the guest facts of one disk; returns what it printed."""
    out: list[str] = []
    boot = str(facts.get("boot") or "ok")
    ports = facts.setdefault("ports", {})
    fixed: list[str] = []
    if os_type.lower() == "windows":
        if boot.startswith("stop-code:") and ("storvsc" in text or "bcdedit" in text or "chkdsk" in text):
            code = boot.split(":", 1)[1]
            out.append(f"{device}: chkdsk found and fixed errors; storvsc set to boot start; BCD points at the Windows partition ({code} repaired)")
            fixed.append(f"stop code {code}")
            boot = "ok"
        if "fdenytsconnections" in text or "remotedesktop" in text:
            if ports.get("3389") in ("refused", "silent") or "3389" not in ports:
                out.append(f"{device}: Remote Desktop enabled and its firewall rule allowed in the offline SYSTEM hive")
            if ports.get("3389") == "refused":
                ports["3389"] = "rdp"
                fixed.append("RDP listener")
    else:
        if boot == "fsck" and ("fsck" in text or "xfs_repair" in text):
            out.append(f"{device}-part1: ***** FILE SYSTEM WAS MODIFIED ***** (fsck -yM: errors fixed, clean)")
            fixed.append("file system check")
            boot = "ok"
        if boot == "emergency-fstab" and "fstab" in text and "nofail" in text:
            out.append(f"{device}-part1: /etc/fstab: nofail added to the data-disk entries (backup in /etc/fstab.aztriage.bak)")
            fixed.append("fstab")
            boot = "ok"
        if "sshd -t" in text or "enable ssh" in text:
            out.append(f"{device}-part1: sshd_config checked; ssh service enabled")
            if ports.get("22") == "refused":
                ports["22"] = "ssh"
                fixed.append("sshd")
    if boot == "ok" and str(facts.get("boot") or "ok") != "ok":
        # The OS comes up again: its remote port answers with its service (it was silent while it did not boot).
        for port, mode in list(ports.items()):
            if mode == "silent" and port in DEFAULT_PORT:
                ports[port] = DEFAULT_PORT[port]
        facts["boot"] = "ok"
    if fixed:
        facts["repairs"] = list(facts.get("repairs") or []) + fixed
    if not out:
        out.append(f"{device}: nothing to repair")
    return out


def run_command_repair(store: Store, vm_id: str, body: dict) -> list[str]:
    """The effect of a run command on the data disks of `vm_id` its script works on."""
    text = _script_text(body)
    if not text or ("/dev/disk/azure/scsi1/lun" not in text and "get-disk" not in text):
        return []
    vm = store.get(vm_id)
    if vm is None:
        return []
    luns = {int(n) for n in _LUN.findall(text)}
    os_type = str(_os_ref(vm).get("osType") or "Linux")
    state = _state(store)
    out: list[str] = []
    for ref in _props(vm).get("storageProfile", {}).get("dataDisks") or ():
        lun = ref.get("lun")
        disk_id = (ref.get("managedDisk") or {}).get("id")
        if not disk_id or (luns and lun not in luns):
            continue
        disk_l = normalize_id(disk_id).lower()
        facts = copy.deepcopy(facts_of_disk(store, disk_l))
        device = f"/dev/disk/azure/scsi1/lun{lun}" if os_type.lower() != "windows" else f"disk at LUN {lun}"
        out += repair_disk(facts, text, os_type, device)
        state.disk_facts[disk_l] = facts
        state.repairs += 1
    return out


def _extend_run_command() -> None:
    key = ("POST", VM_TYPE, "runcommand")
    previous = ACTION_HANDLERS.get(key)
    if previous is None or getattr(previous, "_rescue", False):
        return

    def run_command(arm: Any, req: Any) -> Any:
        response = previous(arm, req)
        op = arm.store.operations.get(req.operation_id or "")
        body = req.body if isinstance(req.body, dict) else {}
        if op is not None and getattr(response, "status", 500) < 400:
            store: Store = arm.store
            vm_id = op.resource_id
            earlier = op.on_success

            def success(operation: Any) -> None:
                if earlier is not None:
                    earlier(operation)
                recovery_ops.append_stdout(operation, run_command_repair(store, vm_id, body))

            op.on_success = success
        return response

    run_command._rescue = True  # type: ignore[attr-defined]
    ACTION_HANDLERS[key] = run_command


# --- the HTTP side --------------------------------------------------------------------------------


def _resource_of(path: str) -> tuple[str, str] | None:
    """(id, type lower) when the path is exactly a VM, disk or snapshot resource."""
    segs = [s for s in path.split("/") if s]
    if len(segs) != 8:
        return None
    low = [s.lower() for s in segs]
    if low[0] != "subscriptions" or low[2] != "resourcegroups" or low[4] != "providers" or low[5] != "microsoft.compute":
        return None
    rtype = f"microsoft.compute/{low[6]}"
    if rtype != VM_TYPE and rtype not in _DISK_TYPES:
        return None
    return "/" + "/".join(segs), rtype


def _json_response(response: web.StreamResponse, change: Any) -> web.StreamResponse:
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray)):
        return response
    try:
        doc = json.loads(body)
    except ValueError:
        return response
    if not change(doc):
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    out = web.Response(status=response.status, body=json.dumps(doc).encode(), headers=headers)
    out.content_type = "application/json"
    return out


def _drop_secrets(doc: Any) -> bool:
    profile = _props(doc if isinstance(doc, dict) else {}).get("osProfile")
    if not isinstance(profile, dict):
        return False
    found = False
    for key in _SECRET_PROFILE_KEYS:
        if key in profile:
            profile.pop(key)
            found = True
    return found


def install(app: web.Application, store: Store) -> None:
    """Route extension: facts that follow disks, swap checks, secrets never returned, group listings."""

    async def group_resources(request: web.Request) -> web.Response:
        sub, rg = request.match_info["sub"], request.match_info["rg"]
        try:
            store.resource_group(sub, rg)
        except ArmError as exc:
            resp = error_response(exc)
            return web.json_response(resp.body, status=resp.status)
        out = []
        for rid_l in store.ids_in_group(sub, rg):
            doc = store.get(rid_l)
            if doc is None or parse_id(doc["id"]).parent_id:
                continue
            item = {k: doc[k] for k in ("id", "name", "type", "location", "tags", "zones", "sku", "managedBy") if k in doc}
            out.append(item)
        return web.json_response({"value": out})

    @web.middleware
    async def follow_disks(request: web.Request, handler: Any) -> web.StreamResponse:
        method = request.method.upper()
        if method not in ("PUT", "PATCH", "DELETE"):
            return await handler(request)
        target = _resource_of(request.path)
        if target is None:
            return await handler(request)
        rid, rtype = target
        store.apply_due()
        before = store.get(rid)
        body: Any = None
        if method in ("PUT", "PATCH"):
            try:
                raw = await request.read()
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                body = None  # the core answers 400
        if rtype == VM_TYPE:
            before_os = os_disk_id(before)
            wanted = None
            if isinstance(body, dict):
                wanted = (((body.get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk", {}).get("id")
            wanted = normalize_id(wanted).lower() if wanted else None
            creating = before is None and method == "PUT"
            swapping = before is not None and bool(wanted) and wanted != before_os
            if swapping and before is not None and wanted:
                try:
                    merged = copy.deepcopy(before)
                    size = ((body.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize")
                    if size:
                        merged.setdefault("properties", {}).setdefault("hardwareProfile", {})["vmSize"] = size
                    check_swap(store, merged, wanted)
                except ArmError as exc:
                    resp = error_response(exc)
                    return web.json_response(resp.body, status=resp.status)
            incoming: dict | None = None
            if wanted and (swapping or creating):
                incoming = copy.deepcopy(facts_of_disk(store, wanted))  # read before the disk is attached
            elif creating:
                incoming = {}  # a new OS disk from an image: a fresh guest
            if before is not None and (method == "DELETE" or swapping):
                _save_vm_to_disk(store, before)  # the guest stays on the disk that leaves
            response = await handler(request)
            if response.status >= 400 or method == "DELETE":
                return response
            after = store.get(rid)
            if after is None:
                return response
            if incoming is not None:
                _boot_vm_from(store, after["id"], incoming)
            if creating:
                account = provisioned_account(_props(body if isinstance(body, dict) else {}).get("osProfile"))
                if account is not None:
                    store.own_guest(after["id"])["account"] = account  # what the guest keeps: a salted hash, never the password
                generation = _props(store.get(os_disk_id(after) or "")).get("hyperVGeneration")
                if generation:
                    store.instance_view(after["id"])["hyperVGeneration"] = generation
                    store.touch(after["id"].lower())
            if _drop_secrets(after):
                store.own(after["id"])
                _drop_secrets(store.get(after["id"]))
            return _json_response(response, _drop_secrets)
        # a disk or snapshot made from another one carries its guest
        response = await handler(request)
        if method == "PUT" and before is None and response.status < 400 and isinstance(body, dict):
            source = ((body.get("properties") or {}).get("creationData") or {}).get("sourceResourceId")
            if source and store.get(rid) is not None:
                carry_facts(store, rid, source)
        return response

    app.router.add_get(r"/subscriptions/{sub}/{g:(?i:resourcegroups)}/{rg}/{r:(?i:resources)}", group_resources)
    app.middlewares.append(follow_disks)


_extend_run_command()
Emulator.add_routes(install)
