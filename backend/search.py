"""Tenant-wide questions answered by Azure Resource Graph without loading the inventory:
find a VM by name, IP address or id (``aztriage find``), and what is broken
(``aztriage broken``: VMs not Available, active service events, pending maintenance).

A name or an id is one query (VMs whose name or id match, case-insensitively); an IP
address is one query per kind of address: NICs whose private address matches, public
IPs whose address matches (their NIC's VM is found in the same answer's rows). The scope is
the whole tenant unless subscriptions are given: ARG then searches only the first 10,000
subscriptions, and says so (``Found.subscription_limit_hit``).

The text is the operator's: it is checked against the shape it claims (a VM name, an IP
address, an ARM id) and quoted for KQL, never pasted into the query as it came.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from backend import mapping
from backend.adapter import ResourceGraph
from backend.models import HealthStatus, ServiceEvent
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
            raise SearchError(f"{safe_line(value)!r} is not the id of a VM (/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachines/NAME)")
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
    nics = await graph.graph_query(
        "resources | where type =~ 'microsoft.network/networkinterfaces' | mv-expand ipconfig = properties.ipConfigurations"
        f" | where tostring(ipconfig.properties.privateIPAddress) == {literal}"
        " | project id, vm = tolower(tostring(properties.virtualMachine.id)) | order by id asc",
        subscriptions=subscriptions,
    )
    publics = await graph.graph_query(
        f"resources | where type =~ 'microsoft.network/publicipaddresses' | where tostring(properties.ipAddress) == {literal}"
        " | project id, nic = tolower(tostring(properties.ipConfiguration.id)) | order by id asc",
        subscriptions=subscriptions,
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
    return Found(tuple(matches[:MAX_MATCHES]), nics.truncated or publics.truncated or len(wanted) > MAX_MATCHES, nics.subscription_limit_hit or publics.subscription_limit_hit)


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

BROKEN_VMS_QUERY = (
    "healthresources | where type =~ 'microsoft.resourcehealth/availabilitystatuses'"
    " | where tostring(properties.targetResourceType) =~ 'microsoft.compute/virtualmachines'"
    " | where tostring(properties.availabilityState) != 'Available'"
    " | project id, vmId = tolower(tostring(properties.targetResourceId)), subscriptionId, properties"
    " | join kind=leftouter (resources | where type =~ 'microsoft.compute/virtualmachines'"
    " | project vmId = tolower(id), vmResourceId = id, vmName = name, resourceGroup, location, power = tostring(properties.extended.instanceView.powerState.code)) on vmId"
    " | order by id asc"
)
ACTIVE_EVENTS_QUERY = (
    "servicehealthresources | where type =~ 'microsoft.resourcehealth/events'"
    " | where tostring(properties.Status) =~ 'Active' | project id, name, subscriptionId, properties | order by id asc"
)
PENDING_MAINTENANCE_QUERY = (
    "maintenanceresources | where type =~ 'microsoft.maintenance/updates'"
    " | where tostring(properties.status) in~ ('Pending', 'InProgress') | project id, name, subscriptionId, properties | order by id asc"
)


@dataclass(frozen=True)
class BrokenVm:
    vm: FoundVm
    health: HealthStatus


@dataclass(frozen=True)
class Broken:
    """What is wrong across the tenant, from three Resource Graph queries."""

    vms: tuple[BrokenVm, ...]
    events: tuple[ServiceEvent, ...]
    maintenance: tuple[dict, ...]  # microsoft.maintenance/updates rows, as ARG gives them (made safe)
    warnings: tuple[str, ...]
    queries: int


async def broken(graph: ResourceGraph, subscriptions: list[str] | None = None) -> Broken:
    """VMs whose Resource Health is not Available (with their power state), active Service
    Health events and pending platform maintenance, tenant-wide, without the inventory."""
    vms_result = await graph.graph_query(BROKEN_VMS_QUERY, subscriptions=subscriptions)
    events_result = await graph.graph_query(ACTIVE_EVENTS_QUERY, subscriptions=subscriptions)
    maintenance_result = await graph.graph_query(PENDING_MAINTENANCE_QUERY, subscriptions=subscriptions)
    results = (vms_result, events_result, maintenance_result)
    warnings = []
    if any(r.truncated for r in results):
        warnings.append("Resource Graph cut an answer short: some of what is broken may be missing; narrow the scope with --subscription")
    if any(r.subscription_limit_hit for r in results):
        warnings.append("Resource Graph searched only the first 10,000 subscriptions of the tenant: name more with --subscription")
    found = []
    for row in vms_result.rows:
        vm_id = str(row.get("vmId") or "")
        found.append(BrokenVm(
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
        ))
    events = tuple(
        mapping.service_event({"id": r.get("id"), "name": r.get("name"), "properties": mapping.camel_keys(r.get("properties") or {})}, str(r.get("subscriptionId") or ""))
        for r in events_result.rows
    )
    return Broken(tuple(found), events, tuple(maintenance_result.rows), tuple(warnings), sum(r.pages for r in results))
