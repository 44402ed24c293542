"""Find a VM anywhere in the tenant by name, IP address or id, with Azure Resource Graph,
without loading the inventory (``aztriage find``).

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

from backend.adapter import ResourceGraph
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
