"""Tenant-wide questions answered by Azure Resource Graph without loading the inventory:
find a VM by name, IP address or id (``aztriage find``), and what is broken
(``aztriage broken``: VMs not Available, active service events, pending maintenance).

A name or an id is one query (VMs whose name or id match, case-insensitively); an IP
address is one query per kind of address, both at once: NICs whose private address
matches, public IPs whose address matches; then the NICs those sit on (one more query,
only for a public address) and the VMs (one). The scope is
the whole tenant unless subscriptions are given: ARG then searches only the first 10,000
subscriptions, and says so (``Found.subscription_limit_hit``).

The text is the operator's: it is checked against the shape it claims (a VM name, an IP
address, an ARM id) and quoted for KQL, never pasted into the query as it came.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend import mapping
from backend.adapter import ResourceGraph
from backend.models import Disk, HealthStatus, Inventory, Maintenance, ServiceEvent, Subscription, Vm
from backend.safetext import safe_line

MAX_MATCHES = 50
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,63}")
_ID = re.compile(r"/subscriptions/[0-9A-Fa-f-]{36}/resourceGroups/[-\w._()]{1,90}/providers/Microsoft\.Compute/virtualMachines/[A-Za-z0-9._()-]{1,64}", re.I)
_VM_COLUMNS = "id, name, resourceGroup, subscriptionId, location, power = tostring(properties.extended.instanceView.powerState.code)"


class SearchError(ValueError):
    """The text is neither a VM name, an IP address nor a VM id; one sentence."""


@dataclass(frozen=True)
class FoundVm:
    id: str
    name: str
    resource_group: str
    subscription_id: str
    location: str
    power_state: str
    matched: str  # name, id, private IP, public IP


@dataclass(frozen=True)
class Found:
    vms: tuple[FoundVm, ...]
    truncated: bool = False  # more matches than MAX_MATCHES, or ARG cut its answer
    subscription_limit_hit: bool = False


def kql_string(text: str) -> str:
    """A KQL string literal holding ``text`` exactly."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def classify(text: str) -> tuple[str, str]:
    """(kind, normalized text): kind is ip, id or name; SearchError otherwise."""
    value = text.strip()
    try:
        return "ip", str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if value.lower().startswith("/subscriptions/"):
        if _ID.fullmatch(value.rstrip("/")) is None:
            raise SearchError(
                f"{safe_line(value)!r} is not the id of a VM (/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachines/NAME)"
            )
        return "id", value.rstrip("/")
    if _NAME.fullmatch(value) is None:
        raise SearchError(f"{safe_line(value)!r} is neither a VM name (letters, digits, . _ - ( ), at most 64), an IP address nor a VM id")
    return "name", value


async def find_vms(graph: ResourceGraph, text: str, subscriptions: list[str] | None = None) -> Found:
    kind, value = classify(text)
    literal = kql_string(value)
    vms_query = "resources | where type =~ 'microsoft.compute/virtualmachines'"
    if kind in ("name", "id"):
        column = "name" if kind == "name" else "id"
        query = f"{vms_query} | where {column} =~ {literal} | project {_VM_COLUMNS} | order by id asc | take {MAX_MATCHES + 1}"
        result = await graph.graph_query(query, subscriptions=subscriptions)
        vms = [_found(row, kind) for row in result.rows]
        return Found(tuple(vms[:MAX_MATCHES]), result.truncated or len(vms) > MAX_MATCHES, result.subscription_limit_hit)
    # An IP: NICs holding it as a private address, public IPs holding it (and the NIC they sit on).
    nics, publics = await asyncio.gather(  # both at once: one round trip
        graph.graph_query(
            "resources | where type =~ 'microsoft.network/networkinterfaces' | mv-expand ipconfig = properties.ipConfigurations"
            f" | where tostring(ipconfig.properties.privateIPAddress) == {literal}"
            " | project id, vm = tolower(tostring(properties.virtualMachine.id)) | order by id asc",
            subscriptions=subscriptions,
        ),
        graph.graph_query(
            f"resources | where type =~ 'microsoft.network/publicipaddresses' | where tostring(properties.ipAddress) == {literal}"
            " | project id, nic = tolower(tostring(properties.ipConfiguration.id)) | order by id asc",
            subscriptions=subscriptions,
        ),
    )
    private_vms = {str(r.get("vm") or "") for r in nics.rows} - {""}
    public_nics = {str(r.get("nic") or "").split("/ipconfigurations/")[0] for r in publics.rows} - {""}
    public_vms: set[str] = set()
    if public_nics:
        owners = await graph.graph_query(
            "resources | where type =~ 'microsoft.network/networkinterfaces'"
            f" | where tolower(id) in ({', '.join(kql_string(n) for n in sorted(public_nics))})"
            " | project id, vm = tolower(tostring(properties.virtualMachine.id)) | order by id asc",
            subscriptions=subscriptions,
        )
        public_vms = {str(r.get("vm") or "") for r in owners.rows} - {""}
    wanted = sorted(private_vms | public_vms)[: MAX_MATCHES + 1]
    matches: list[FoundVm] = []
    if wanted:
        result = await graph.graph_query(
            f"{vms_query} | where tolower(id) in ({', '.join(kql_string(v) for v in wanted)}) | project {_VM_COLUMNS} | order by id asc",
            subscriptions=subscriptions,
        )
        matches = [_found(row, "public IP" if row["id"].lower() in public_vms else "private IP") for row in result.rows]
    return Found(
        tuple(matches[:MAX_MATCHES]),
        nics.truncated or publics.truncated or len(wanted) > MAX_MATCHES,
        nics.subscription_limit_hit or publics.subscription_limit_hit,
    )


def _found(row: dict, matched: str) -> FoundVm:
    power = str(row.get("power") or "")
    return FoundVm(
        id=str(row.get("id") or ""),
        name=str(row.get("name") or ""),
        resource_group=str(row.get("resourceGroup") or ""),
        subscription_id=str(row.get("subscriptionId") or ""),
        location=str(row.get("location") or ""),
        power_state=power.split("/", 1)[1].lower() if "/" in power else "unknown",
        matched=matched,
    )


# --- what is broken across the tenant ---------------------------------------------------

_NOT_AVAILABLE_VMS = (
    "healthresources | where type =~ 'microsoft.resourcehealth/availabilitystatuses'"
    " | where tostring(properties.targetResourceType) =~ 'microsoft.compute/virtualmachines'"
    " | where tostring(properties.availabilityState) != 'Available'"
)
# Not Available for a reason their owners did not choose: stopped, deallocated or starting
# VMs (reasonType UserInitiated) are counted, not listed (at 100,000 VMs they are 14,000 rows).
BROKEN_VMS_QUERY = (
    _NOT_AVAILABLE_VMS + " | where tostring(properties.reasonType) !~ 'UserInitiated'"
    " | project id, vmId = tolower(tostring(properties.targetResourceId)), subscriptionId, properties"
    " | join kind=leftouter (resources | where type =~ 'microsoft.compute/virtualmachines'"
    " | project vmId = tolower(id), vmResourceId = id, vmName = name, resourceGroup, location, power = tostring(properties.extended.instanceView.powerState.code),"
    " size = tostring(properties.hardwareProfile.vmSize), osType = tostring(properties.storageProfile.osDisk.osType)) on vmId"
    " | order by id asc"
)
STOPPED_BY_OWNER_QUERY = _NOT_AVAILABLE_VMS + " | where tostring(properties.reasonType) =~ 'UserInitiated' | summarize count()"
ACTIVE_EVENTS_QUERY = (
    "servicehealthresources | where type =~ 'microsoft.resourcehealth/events'"
    " | where tostring(properties.Status) =~ 'Active' | project id, name, subscriptionId, properties | order by id asc"
)
# microsoft.maintenance/updates: properties.value holds the updates (the Maintenance RP's
# Update: maintenanceScope, impactType, status, impactDurationInSec, notBefore, resourceId).
PENDING_MAINTENANCE_QUERY = (
    "maintenanceresources | where type =~ 'microsoft.maintenance/updates'"
    " | mv-expand maintenanceUpdate = properties.value"
    " | where tostring(maintenanceUpdate.status) in~ ('Pending', 'InProgress', 'RetryNow', 'RetryLater')"
    " | project id, subscriptionId, resourceGroup, vmId = tostring(maintenanceUpdate.resourceId), status = tostring(maintenanceUpdate.status),"
    " impactType = tostring(maintenanceUpdate.impactType), scope = tostring(maintenanceUpdate.maintenanceScope), notBefore = tostring(maintenanceUpdate.notBefore)"
    " | order by id asc"
)


@dataclass(frozen=True)
class BrokenVm:
    vm: FoundVm
    health: HealthStatus
    size: str = ""
    os_type: str = ""


@dataclass(frozen=True)
class PendingUpdate:
    """Platform maintenance waiting for a VM (a microsoft.maintenance/updates entry)."""

    vm_id: str
    subscription_id: str
    resource_group: str
    status: str  # Pending, InProgress, RetryNow, RetryLater
    impact_type: str  # None, Freeze, Restart, Redeploy
    scope: str  # Host, Resource, OSImage, ...
    not_before: datetime | None  # Azure starts it after this unless the owner does it first

    @property
    def vm_name(self) -> str:
        return self.vm_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Broken:
    """What is wrong across the tenant, from four Resource Graph queries."""

    vms: tuple[BrokenVm, ...]  # not Available for a reason their owners did not choose
    stopped_by_owner: int  # not Available because their owners stopped, deallocated or started them (counted, not listed)
    events: tuple[ServiceEvent, ...]
    maintenance: tuple[PendingUpdate, ...]
    warnings: tuple[str, ...]
    queries: int


async def broken(graph: ResourceGraph, subscriptions: list[str] | None = None) -> Broken:
    """VMs whose Resource Health is not Available (with their power state), active Service
    Health events and pending platform maintenance, tenant-wide, without the inventory.
    The four queries run at once (each pages on its own)."""
    vms_result, stopped_result, events_result, maintenance_result = await asyncio.gather(
        graph.graph_query(BROKEN_VMS_QUERY, subscriptions=subscriptions),
        graph.graph_query(STOPPED_BY_OWNER_QUERY, subscriptions=subscriptions),
        graph.graph_query(ACTIVE_EVENTS_QUERY, subscriptions=subscriptions),
        graph.graph_query(PENDING_MAINTENANCE_QUERY, subscriptions=subscriptions),
    )
    results = (vms_result, stopped_result, events_result, maintenance_result)
    warnings = []
    if any(r.truncated for r in results):
        warnings.append("Resource Graph cut an answer short: some of what is broken may be missing; narrow the scope with --subscription")
    if any(r.subscription_limit_hit for r in results):
        warnings.append("Resource Graph searched only the first 10,000 subscriptions of the tenant: name more with --subscription")
    found = []
    for row in vms_result.rows:
        vm_id = str(row.get("vmId") or "")
        found.append(
            BrokenVm(
                FoundVm(
                    id=str(row.get("vmResourceId") or vm_id),
                    name=str(row.get("vmName") or vm_id.rsplit("/", 1)[-1]),
                    resource_group=str(row.get("resourceGroup") or ""),
                    subscription_id=str(row.get("subscriptionId") or ""),
                    location=str(row.get("location") or ""),
                    power_state=str(row.get("power") or "").split("/", 1)[-1].lower() or "unknown",
                    matched="health",
                ),
                mapping.health_status({"id": row.get("id"), "properties": row.get("properties") or {}}),
                size=str(row.get("size") or ""),
                os_type=str(row.get("osType") or ""),
            )
        )
    events = tuple(
        mapping.service_event(
            {"id": r.get("id"), "name": r.get("name"), "properties": mapping.camel_keys(r.get("properties") or {})}, str(r.get("subscriptionId") or "")
        )
        for r in events_result.rows
    )
    stopped = sum(_count(r) for r in stopped_result.rows)
    maintenance = tuple(
        PendingUpdate(
            vm_id=str(r.get("vmId") or _owner(str(r.get("id") or ""))),
            subscription_id=str(r.get("subscriptionId") or ""),
            resource_group=str(r.get("resourceGroup") or ""),
            status=str(r.get("status") or ""),
            impact_type=str(r.get("impactType") or ""),
            scope=str(r.get("scope") or ""),
            not_before=mapping.parse_time(r.get("notBefore")),
        )
        for r in maintenance_result.rows
    )
    return Broken(tuple(found), stopped, events, maintenance, tuple(warnings), sum(r.pages for r in results))


def _owner(update_id: str) -> str:
    """``<vm id>/providers/Microsoft.Maintenance/updates`` -> the VM's id."""
    at = update_id.lower().find("/providers/microsoft.maintenance/")
    return update_id[:at] if at > 0 else update_id


def _count(row: dict) -> int:
    value = row.get("count_")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def broken_inventory(found: Broken, subscriptions: Sequence[Subscription] = ()) -> Inventory:
    """What is broken as an inventory of those VMs alone, so every pane can show it before (or
    instead of) every VM: the VMs not Available with their health and power, the VMs with
    platform maintenance pending, the active events. What Resource Graph did not say (NICs,
    disks, the agent) stays unknown until the VM is read whole (``ResourceGraph.graph_vms``)."""
    vms: dict[str, Vm] = {}
    for b in found.vms:
        vms[b.vm.id.lower()] = _sketch(
            b.vm.id, b.vm.name, b.vm.subscription_id, b.vm.resource_group, b.vm.location, b.vm.power_state, b.size, b.os_type, health=b.health
        )
    for m in found.maintenance:
        pending = Maintenance(maintenance_window_start=m.not_before)
        known = vms.get(m.vm_id.lower())
        if known is not None:
            vms[m.vm_id.lower()] = dataclasses.replace(known, maintenance=pending)
        else:
            vms[m.vm_id.lower()] = _sketch(m.vm_id, m.vm_name, m.subscription_id, m.resource_group, "", "unknown", "", "", maintenance=pending)
    subs = {s.subscription_id.lower(): s for s in subscriptions}
    for vm in vms.values():
        subs.setdefault(vm.subscription_id.lower(), Subscription(vm.subscription_id, vm.subscription_id))
    ordered = sorted(vms.values(), key=lambda v: (v.subscription_id, v.resource_group.lower(), v.name.lower()))
    return Inventory(
        subscriptions=tuple(subs.values()), vms=tuple(ordered), events=found.events, engine="arg", warnings=found.warnings, fetched_at=datetime.now(UTC)
    )


# The OS disk of a VM known only from a Resource Graph answer (``is_sketch``).
_UNKNOWN_DISK = Disk(name="", id=None, sku=None, managed=True, delete_option="")


def is_sketch(vm: Vm) -> bool:
    """A VM ``broken_inventory`` knows only from its health or maintenance row: read it whole
    (``ResourceGraph.graph_vms``) before anything is shown or done beyond that."""
    return vm.os_disk == _UNKNOWN_DISK and not vm.nics


def _sketch(vm_id: str, name: str, subscription_id: str, group: str, location: str, power: str, size: str, os_type: str, **known: Any) -> Vm:
    """A VM as far as a Resource Graph answer describes it."""
    return Vm(
        id=vm_id,
        name=name,
        subscription_id=subscription_id,
        resource_group=group,
        location=location,
        size=size,
        os_type=os_type,
        power_state=power,
        provisioning_state="",
        os_disk=_UNKNOWN_DISK,
        **known,
    )


def merge_inventories(base: Inventory, extra: Inventory) -> Inventory:
    """``base`` with what ``extra`` adds: its VMs that ``base`` lacks or knows only as a sketch
    (``is_sketch``; a VM ``base`` knows whole stays as ``base`` has it), their subscriptions,
    lookups and events."""
    newer = {vm.id.lower(): vm for vm in extra.vms}
    have = {vm.id.lower(): vm for vm in base.vms}
    added = [vm for key, vm in newer.items() if key not in have]
    replaced = {key for key, vm in have.items() if key in newer and is_sketch(vm) and not is_sketch(newer[key])}
    if not added and not replaced:
        return base
    subs = {s.subscription_id.lower(): s for s in base.subscriptions}
    for s in extra.subscriptions:
        subs.setdefault(s.subscription_id.lower(), s)
    events = {(e.subscription_id.lower(), e.id.lower()): e for e in base.events}
    for e in extra.events:
        events.setdefault((e.subscription_id.lower(), e.id.lower()), e)
    return dataclasses.replace(
        base,
        subscriptions=tuple(subs.values()),
        vms=tuple(newer[vm.id.lower()] if vm.id.lower() in replaced else vm for vm in base.vms) + tuple(added),
        events=tuple(events.values()),
        nsgs={**extra.nsgs, **base.nsgs},
        load_balancers={**extra.load_balancers, **base.load_balancers},
        public_ips={**extra.public_ips, **base.public_ips},
        availability_sets={**extra.availability_sets, **base.availability_sets},
        impacted={**extra.impacted, **base.impacted},
    )
