"""Live writes become Resource Graph ``resourcechanges`` rows.

Azure's change tracking compares a resource's snapshots before and after each
write (Create, Update, Delete) and keeps a row per change for 14 days, with
``changeAttributes`` (timestamp, correlationId, changedBy, changedByType,
clientType, operation) and the property-level diff (``changes``: path ->
previousValue, newValue, propertyChangeType). The emulator does the same for
every PUT, PATCH and DELETE it answers:

- the document is copied before the request is handled (``snapshot``), and
  compared when the write has taken effect: at once for a synchronous answer,
  when its long-running operation ends for a 202 (``operation_finished``);
- a child kept inside its parent (an NSG's security rule, a VNet's subnet) is a
  change of the parent, as Azure reports it;
- the correlation id is the write's activity-log correlation id, so the timeline
  tells the change on the operation's line;
- ``changedBy`` is the caller (the token's claims or "demo operator");
  ``clientType`` comes from the User-Agent (Azure CLI, Azure PowerShell, the
  portal, else the client's first product token: ``aztriage/0.1``);
- paths are written as Azure writes them (``properties.securityRules[1].properties.access``);
  read-only churn (provisioningState, etag, instanceView, resourceGuid) is not a change.
  A write that changes nothing leaves no row.

Rows live in ``store.resource_changes`` beside the estate's own history; the
``resourcechanges`` table of the emulator's Resource Graph serves both.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ids import normalize_id, parse_id
from .lro import iso
from .routing import parse_route

if TYPE_CHECKING:
    from .lro import Operation
    from .store import Store

IGNORED = frozenset({"provisioningState", "etag", "instanceView", "resourceGuid", "timeCreated", "creationTime", "changedTime"})
CHILD_IDENTITY = frozenset({"id", "type", "etag"})
MAX_CHANGES = 200  # properties in one row at most (a whole VM created is many)


@dataclass
class Pending:
    """A write under way: what its resource was before."""

    target_id: str
    before: dict | None
    operation: str
    caller: str = ""
    client: str = ""
    correlation: str = ""


def client_type(user_agent: str) -> str:
    """Azure's clientType for a request's User-Agent."""
    ua = user_agent or ""
    low = ua.lower()
    if "azurecli" in low or "azure-cli" in low:
        return "Azure CLI"
    if "azurepowershell" in low or "az.accounts" in low:
        return "Azure PowerShell"
    if "portal" in low:
        return "Azure Portal"
    first = ua.split()[0] if ua.split() else ""
    return first[:64] or "Unknown"


def _target(store: Store, path: str) -> str | None:
    """The resource whose snapshot a write changes: the resource itself, or the parent that
    keeps it inside its own document (a security rule, a subnet)."""
    route = parse_route(path)
    if route.kind != "resource" or not route.ns:
        return None
    rid = route.resource_id
    if len(route.types) >= 2 and store.get(rid) is None:
        parent = parse_id(rid).parent_id
        if parent and store.get(parent) is not None and (route.ns or "").lower() == "microsoft.network":
            return parent
    return rid


def snapshot(store: Store, method: str, path: str) -> Pending | None:
    """Before a PUT, PATCH or DELETE is handled: the target as it is."""
    if method.upper() not in ("PUT", "PATCH", "DELETE"):
        return None
    target = _target(store, path)
    if target is None:
        return None
    route = parse_route(path)
    verb = "delete" if method.upper() == "DELETE" else "write"
    operation = "/".join((route.ns or "", *route.types, verb))
    doc = store.get(target)
    return Pending(normalize_id(target), copy.deepcopy(doc) if doc is not None else None, operation)


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        # A child kept inside its parent (a security rule) is told by its name and properties.
        child = "name" in value and "properties" in value
        for key, item in value.items():
            if key in IGNORED or (child and key in CHILD_IDENTITY):
                continue
            _flatten(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list) and value:
        for n, item in enumerate(value):
            _flatten(item, f"{prefix}[{n}]", out)
    else:
        out[prefix] = value


def _view(doc: dict | None) -> dict[str, Any]:
    """The parts of a document change tracking compares, as flat paths."""
    if doc is None:
        return {}
    out: dict[str, Any] = {}
    for key in ("properties", "tags", "sku", "zones", "identity", "plan"):
        if key in doc:
            _flatten(doc[key], key, out)
    return out


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)


def diff(before: dict | None, after: dict | None) -> dict[str, dict[str, Any]]:
    """Azure's ``changes``: each path that differs, its previous and new value."""
    old, new = _view(before), _view(after)
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new), key=_path_key):
        if key in old and key in new and old[key] == new[key]:
            continue
        out[key] = property_change(_scalar(old.get(key)), _scalar(new.get(key)))
        if len(out) >= MAX_CHANGES:
            break
    return out


def _path_key(path: str) -> list[Any]:
    # properties.securityRules[10] after [9]: indexes compare as numbers
    return [int(p) if p.isdigit() else p for p in re.split(r"[\[\]]", path)]


def record(store: Store, pending: Pending | None, status: int, operation_id: str | None, caller: str, client: str, correlation: str) -> None:
    """After the write was answered: a row now, or when its operation ends."""
    if pending is None or status == 0 or status >= 400:
        return
    pending.caller, pending.client, pending.correlation = caller, client, correlation or str(uuid.uuid4())
    if status == 202 and operation_id:
        store.changes_pending[operation_id] = pending
        return
    _add(store, pending)


def operation_finished(store: Store, op: Operation) -> None:
    """A long-running write ended: its change, if it succeeded."""
    if op is None:
        return
    pending = store.changes_pending.pop(op.id, None)
    if pending is not None and op.status == "Succeeded":
        _add(store, pending)


def property_change(before: Any, after: Any) -> dict[str, Any]:
    """One entry of a row's ``changes``."""
    kind = "Insert" if before is None else "Remove" if after is None else "Update"
    return {"previousValue": before, "newValue": after, "changeCategory": "User", "propertyChangeType": kind}


def change_row(
    target: str,
    kind: str,
    *,
    name: str,
    timestamp: str,
    correlation: str,
    changed_by: str,
    client: str,
    operation: str,
    changes: dict[str, dict[str, Any]],
    snapshots: tuple[str, str],
) -> dict[str, Any]:
    """A ``resourcechanges`` row as Resource Graph returns it (the estate's history and live writes alike)."""
    parts = target.split("/")
    return {
        "id": f"{target}/providers/Microsoft.Resources/changes/{name}",
        "name": name,
        "type": "microsoft.resources/changes",
        "location": "",
        "resourceGroup": parts[4].lower() if len(parts) > 4 else "",
        "subscriptionId": parts[2],
        "properties": {
            "targetResourceId": target,
            "targetResourceType": "/".join([parts[6], *parts[7::2]]) if len(parts) > 7 else "",
            "changeType": kind,
            "changeAttributes": {
                "timestamp": timestamp,
                "correlationId": correlation,
                "changedBy": changed_by,
                "changedByType": "User" if "@" in changed_by else "Application",
                "clientType": client,
                "operation": operation,
                "changesCount": len(changes),
                "previousResourceSnapshotId": snapshots[0],
                "newResourceSnapshotId": snapshots[1],
            },
            "changes": changes,
        },
    }


def _add(store: Store, pending: Pending) -> None:
    after = store.get(pending.target_id)
    if pending.before is None and after is None:
        return
    changes = diff(pending.before, after)
    kind = "Create" if pending.before is None else "Delete" if after is None else "Update"
    if kind == "Update" and not changes:
        return
    store.resource_changes.append(
        change_row(
            pending.target_id,
            kind,
            name=str(uuid.uuid4()),
            timestamp=iso(store.now()) or "",
            correlation=pending.correlation,
            changed_by=pending.caller,
            client=pending.client,
            operation=pending.operation,
            changes=changes,
            snapshots=(str(uuid.uuid4()), str(uuid.uuid4())),
        )
    )


def install_listener(store: Store) -> None:
    if operation_finished not in store.operation_listeners:
        store.operation_listeners.append(operation_finished)
