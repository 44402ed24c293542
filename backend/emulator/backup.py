"""Azure Backup as Recovery Services serves it (Microsoft.RecoveryServices, api-version 2026-10-01).

Vaults are ordinary resources (``Microsoft.RecoveryServices/vaults``: listed per subscription and
group by the generic routes). What a vault holds lives beside it in ``Store.backup`` (the estate's
``backup``: vault id -> ``{"items": [...], "policies": [...]}``; jobs and operations are added as
they happen), and is served here:

- ``GET .../vaults/{v}/backupProtectedItems`` (BackupProtectedItems_List; ``$filter`` on
  ``backupManagementType`` and ``itemType``) and ``.../backupPolicies`` (BackupPolicies_List);
- ``GET .../backupFabrics/Azure/protectionContainers/{c}/protectedItems/{i}`` (ProtectedItems_Get);
- ``POST .../protectedItems/{i}/backup`` (Backups_Trigger): 202, no body, ``Azure-AsyncOperation``
  ``.../protectedItems/{i}/operationsStatus/{op}`` and ``Location`` ``.../operationResults/{op}``.
  The operation (nominally 20 s) ends Succeeded with ``properties.jobId``; the job it starts takes
  a snapshot of every disk ("Take Snapshot", nominally 10 minutes: the recovery point is usable,
  the item's ``lastBackupTime`` and ``lastRecoveryPoint`` move) and then copies it to the vault
  ("Transfer data to vault", nominally an hour: the job is Completed).
- ``GET .../vaults/{v}/backupOperations/{op}`` (BackupOperationStatuses_Get), the item's
  ``operationsStatus/{op}`` (same body) and ``operationResults/{op}`` (202 while running, 204);
- ``GET .../vaults/{v}/backupJobs/{job}`` (JobDetails_Get: AzureIaaSVMJob with its tasks) and
  ``.../vaults/{v}/backupJobs`` (BackupJobs_List; ``$filter`` startTime as Azure writes it).

Azure's refusals acted out: a backup while the item's last job is still running (400
``UserErrorBackupOperationInProgress``), of an item whose protection is stopped (400
``UserErrorProtectionStopped``, the emulator's name), and a running VM whose VM agent does not
answer fails its job at "Take Snapshot" (``UserErrorGuestAgentStatusUnavailable``), as Azure's does.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from .arm import ArmResponse, register_action, register_namespace
from .ids import ArmError, normalize_id
from .lro import iso
from .store import Store

VAULT_T = "microsoft.recoveryservices/vaults"
SNAPSHOT_S = 600.0  # nominal "Take Snapshot" of an on-demand VM backup
TRANSFER_S = 3600.0  # nominal "Transfer data to vault"


def _vault_id(path: str) -> str:
    low = path.lower()
    cut = low.index("/vaults/") + len("/vaults/")
    end = low.find("/", cut)
    return normalize_id(path if end < 0 else path[:end])


def _state(store: Store, vault_id: str) -> dict:
    return store.backup.setdefault(vault_id.lower(), {"items": [], "policies": []})


def _items(store: Store, vault_id: str) -> list[dict]:
    return _state(store, vault_id).setdefault("items", [])


def _find_item(store: Store, item_id: str) -> dict:
    for item in _items(store, _vault_id(item_id)):
        if str(item.get("id") or "").lower() == normalize_id(item_id).lower():
            return item
    raise ArmError(404, "BMSUserErrorItemNotFound", f"Item not found: {item_id.rsplit('/', 1)[-1]}")


def _agent_answers(store: Store, vm_id: str) -> bool:
    return str(store.guest_facts(vm_id).get("agent") or "ready") != "not-ready"


def _offset(store: Store) -> float:
    """Wall clock minus the estate's clock: the estate writes its backups' times on its own clock
    (anchored at its "now"), and they are served on the emulator's, so a backup taken "21 hours
    ago" is 21 hours old whenever the estate is loaded."""
    return store.estate_offset()


def _on_estate_clock(store: Store, ts: float) -> str | None:
    return iso(ts - _offset(store))


def _shift(store: Store, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return value
    return iso(when + _offset(store))


def served(store: Store, item: dict) -> dict:
    """A protected item as Azure answers it now (its times on the emulator's clock)."""
    out = copy.deepcopy(item)
    props = out.get("properties") or {}
    for key in ("lastBackupTime", "lastRecoveryPoint"):
        if key in props:
            props[key] = _shift(store, props[key])
    info = props.get("extendedInfo") or {}
    for key in ("oldestRecoveryPoint", "newestRecoveryPointInArchive", "oldestRecoveryPointInVault"):
        if key in info:
            info[key] = _shift(store, info[key])
    return out


def _duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.1f}S"


# --- jobs -----------------------------------------------------------------------------------------


def settle(store: Store) -> None:
    """Apply what every backup job did by now: the recovery point of a finished snapshot phase."""
    now = store.now()
    for state in store.backup.values():
        for job in (state.get("jobs") or {}).values():
            if job.get("applied") or now < job["snapshot_end"]:
                continue
            job["applied"] = True
            item = next((i for i in state.get("items") or () if str(i.get("id") or "").lower() == job["item_id"].lower()), None)
            if item is None:
                continue
            props = item.setdefault("properties", {})
            props["lastBackupTime"] = _on_estate_clock(store, job["start"])
            if job.get("failed"):
                props["lastBackupStatus"] = "Failed"
                props["healthStatus"] = "ActionRequired"
            else:
                props["lastBackupStatus"] = "Completed"
                props["lastRecoveryPoint"] = _on_estate_clock(store, job["snapshot_end"])
                props["healthStatus"] = "Passed"
                info = props.setdefault("extendedInfo", {})
                info["recoveryPointCount"] = int(info.get("recoveryPointCount") or 0) + 1


def _job_doc(store: Store, vault_id: str, name: str, job: dict) -> dict:
    now = store.now()
    snap_done = now >= job["snapshot_end"]
    failed = bool(job.get("failed")) and snap_done
    transfer_done = now >= job["transfer_end"] and not failed
    if failed:
        status, end = "Failed", job["snapshot_end"]
    elif transfer_done:
        status, end = "Completed", job["transfer_end"]
    else:
        status, end = "InProgress", None
    tasks = [
        {
            "taskId": "Take Snapshot",
            "status": ("Failed" if failed else "Completed") if snap_done else "InProgress",
            "startTime": iso(job["start"]),
            "endTime": iso(job["snapshot_end"]) if snap_done else None,
            "duration": _duration((job["snapshot_end"] if snap_done else now) - job["start"]),
        },
        {
            "taskId": "Transfer data to vault",
            "status": "Completed" if transfer_done else ("Cancelled" if failed else ("InProgress" if snap_done else "NotStarted")),
            "startTime": iso(job["snapshot_end"]) if snap_done and not failed else None,
            "endTime": iso(job["transfer_end"]) if transfer_done else None,
            "duration": _duration((min(now, job["transfer_end"]) - job["snapshot_end"]) if snap_done and not failed else 0),
        },
    ]
    props: dict[str, Any] = {
        "jobType": "AzureIaaSVMJob",
        "entityFriendlyName": job["vm_name"],
        "backupManagementType": "AzureIaasVM",
        "operation": "Backup",
        "status": status,
        "startTime": iso(job["start"]),
        "endTime": iso(end) if end else None,
        "duration": _duration((end or now) - job["start"]),
        "activityId": job["activity"],
        "virtualMachineVersion": "Compute",
        "actionsInfo": ["Cancellable"] if status == "InProgress" else [],
        "extendedInfo": {
            "tasksList": tasks,
            "propertyBag": {
                "VM Name": job["vm_name"],
                "Backup Size": "0 MB" if not snap_done else "12288 MB",
                "Recovery point expiry time in UTC": job["expiry"],
            },
            "progressPercentage": 100.0 if status != "InProgress" else (50.0 if snap_done else 10.0),
        },
    }
    if failed:
        props["errorDetails"] = [
            {
                "errorCode": 400041,
                "errorString": "UserErrorGuestAgentStatusUnavailable: VM Agent unable to communicate with Azure Backup",
                "errorTitle": "VM Agent unable to communicate with Azure Backup",
                "recommendations": ["Ensure the VM agent is installed, running and can reach Azure; then retry the backup."],
            }
        ]
    return {"id": f"{vault_id}/backupJobs/{name}", "name": name, "type": "Microsoft.RecoveryServices/vaults/backupJobs", "properties": props}


# --- routes ---------------------------------------------------------------------------------------


def _list(arm: Any, req: Any, key: str) -> ArmResponse:
    store: Store = arm.store
    vault = store.must(req.route.resource_id)
    settle(store)
    wanted = str(req.query.get("$filter") or "").lower()
    docs = [served(store, d) if key == "items" else copy.deepcopy(d) for d in _state(store, vault["id"]).get(key) or ()]
    if "backupmanagementtype eq" in wanted and "'azureiaasvm'" not in wanted:
        docs = []  # only Azure VMs are emulated
    return ArmResponse(200, {"value": docs})


def _protected_items(arm: Any, req: Any) -> ArmResponse:
    return _list(arm, req, "items")


def _policies(arm: Any, req: Any) -> ArmResponse:
    return _list(arm, req, "policies")


def _jobs(arm: Any, req: Any) -> ArmResponse:
    """BackupJobs_List: ``$filter`` on operation and on startTime/endTime ('yyyy-MM-dd hh:mm:ss AM')."""
    store: Store = arm.store
    vault = store.must(req.route.resource_id)
    settle(store)
    wanted = str(req.query.get("$filter") or "")
    since = None
    low = wanted.lower()
    if "starttime eq '" in low:
        start = low.index("starttime eq '") + len("starttime eq '")
        raw = wanted[start : wanted.index("'", start)]
        try:
            since = datetime.strptime(raw, "%Y-%m-%d %I:%M:%S %p").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ArmError(400, "BMSUserErrorInvalidInput", f"Input provided for the call is invalid: startTime '{raw}'.") from None
    jobs = _state(store, vault["id"]).get("jobs") or {}
    docs = [_job_doc(store, vault["id"], name, job) for name, job in jobs.items() if since is None or job["start"] >= since - 1]
    return ArmResponse(200, {"value": docs})


def _trigger(arm: Any, req: Any, item_id: str) -> ArmResponse:
    store: Store = arm.store
    settle(store)
    item = _find_item(store, item_id)
    vault_id = _vault_id(item_id)
    vault = store.must(vault_id)
    arm._check_writable(req.route.sub or "", req.route.rg)
    props = item.get("properties") or {}
    if str(props.get("protectionState") or "").lower() in ("protectionstopped", "invalid"):
        raise ArmError(400, "UserErrorProtectionStopped", f"Protection of {props.get('friendlyName')} is stopped: resume protection before taking a backup.")
    jobs = _state(store, vault_id).setdefault("jobs", {})
    now = store.now()
    if any(j["item_id"].lower() == item["id"].lower() and now < (j["snapshot_end"] if j.get("failed") else j["transfer_end"]) for j in jobs.values()):
        raise ArmError(400, "UserErrorBackupOperationInProgress", "Unable to initiate backup as another backup operation is currently in progress.")
    body = req.body if isinstance(req.body, dict) else {}
    expiry = str(((body.get("properties") or {}).get("recoveryPointExpiryTimeInUTC")) or "")
    vm_id = str(props.get("virtualMachineId") or "")
    make = arm.operation_factory(req, item["id"], namespace="Microsoft.RecoveryServices", location=vault.get("location"), duration_key="backup.trigger")

    def success(op: Any) -> None:
        name = str(uuid.uuid4())
        start = op.end_time or store.now()
        running = store.get(vm_id) is not None and store.power_state(vm_id) == "running"
        jobs[name] = {
            "item_id": item["id"],
            "vm_name": props.get("friendlyName") or vm_id.rsplit("/", 1)[-1],
            "start": start,
            "snapshot_end": start + store.duration(SNAPSHOT_S),
            "transfer_end": start + store.duration(SNAPSHOT_S + TRANSFER_S),
            "failed": running and not _agent_answers(store, vm_id),
            "activity": str(uuid.uuid4()),
            "expiry": expiry,
        }
        op.result = {"objectType": "OperationStatusJobExtendedInfo", "jobId": name}

    op = make("backup", on_success=success)
    api = req.query.get("api-version") or "2026-10-01"
    base = f"{req.base_url}{item['id']}"
    headers = {
        "Azure-AsyncOperation": f"{base}/operationsStatus/{op.id}?api-version={api}",
        "Location": f"{base}/operationResults/{op.id}?api-version={api}",
        "Retry-After": "60",
    }
    return ArmResponse(202, None, headers)


def _operation_status(store: Store, op_id: str) -> dict:
    op = store.operations.get(op_id)
    if op is None or op.namespace != "Microsoft.RecoveryServices":
        raise ArmError(404, "BMSUserErrorOperationNotFound", f"Operation {op_id} was not found.")
    body: dict[str, Any] = {"id": op.id, "name": op.id, "status": op.status, "startTime": iso(op.started)}
    if op.done:
        body["endTime"] = iso(op.end_time)
    if op.status == "Succeeded" and op.result is not None:
        body["properties"] = op.result
    if op.status != "Succeeded" and op.error:
        body["error"] = op.error
    return body


def handle(arm: Any, req: Any) -> ArmResponse:
    """Everything below a vault that the generic routes do not serve."""
    store: Store = arm.store
    route = req.route
    types = [t.lower() for t in route.types]
    method = req.method.upper()
    vault_id = _vault_id(req.path)
    if store.get(vault_id) is None:
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.RecoveryServices/vaults/{vault_id.rsplit('/', 1)[-1]}' under resource group '{route.rg}' was not found.",
        )
    settle(store)
    if types[:4] == ["vaults", "backupfabrics", "protectioncontainers", "protecteditems"]:
        item_id = normalize_id("/".join(req.path.split("/")[:15]))  # /subscriptions/../protectedItems/{i}
        tail = types[4:]
        if not tail and route.kind == "resource":
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
            return ArmResponse(200, served(store, _find_item(store, item_id)))
        if route.kind == "resource_sub" and not tail and (route.last or "").lower() == "backup" and method == "POST":
            return _trigger(arm, req, item_id)
        if route.kind == "resource" and tail == ["operationsstatus"] and method == "GET":
            return ArmResponse(200, _operation_status(store, route.names[-1]))
        if route.kind == "resource" and tail == ["operationresults"] and method == "GET":
            body = _operation_status(store, route.names[-1])
            if body["status"] == "InProgress":
                return ArmResponse(
                    202, None, {"Location": f"{req.base_url}{req.path}?api-version={req.query.get('api-version') or '2026-10-01'}", "Retry-After": "60"}
                )
            return ArmResponse(204)
    if route.kind == "resource" and types == ["vaults", "backupoperations"] and method == "GET":
        return ArmResponse(200, _operation_status(store, route.names[-1]))
    if route.kind == "resource" and types == ["vaults", "backupjobs"] and method == "GET":
        name = route.names[-1]
        job = (_state(store, vault_id).get("jobs") or {}).get(name)
        if job is None:
            raise ArmError(404, "BMSUserErrorJobNotFound", f"Job {name} was not found.")
        return ArmResponse(200, _job_doc(store, vault_id, name, job))
    raise ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{req.path}'.")


register_action("Microsoft.RecoveryServices/vaults", "backupProtectedItems", _protected_items, method="GET")
register_action("Microsoft.RecoveryServices/vaults", "backupPolicies", _policies, method="GET")
register_action("Microsoft.RecoveryServices/vaults", "backupJobs", _jobs, method="GET")
register_namespace("Microsoft.RecoveryServices", handle)
