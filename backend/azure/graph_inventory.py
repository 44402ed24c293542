"""The inventory from Azure Resource Graph: the same ``Inventory`` as the ARM lists,
in a few queries per hundred subscriptions instead of eleven requests per subscription.

The subscriptions are queried in batches of ``BATCH`` (Microsoft's guidance for large
tenants: groups of subscriptions under 300, its sample uses 100), at most
``CONCURRENT_BATCHES`` at a time, so their pages spread over the quota's windows
(``graph.QuotaGate`` waits for a reset rather than drawing a 429). Each batch asks:

- ``resources`` for the eight types the ARM lists return (VMs, disks, availability
  sets, NICs, public IPs, NSGs, load balancers, virtual networks) and the VMs'
  extensions, ordered by id so the pages neither repeat nor miss rows;
- ``computeresources`` for the instances of Uniform scale sets and their NICs, which
  the ARM VM list does not return at all (``Vm.uniform_instance``; the ARM engine
  shows them not, as Azure's subscription-wide list does not);
- ``healthresources`` for the VMs' availability statuses;
- ``servicehealthresources`` for service events and their impacted resources.

The rows are the ARM documents ARG indexes, so the join stays local and is the ARM
engine's own (``join.Lookups``): only the VM's power state comes from
``properties.extended.instanceView.powerState`` instead of the statusOnly list, and
its extensions from their own rows. Nothing is joined in KQL: the local join costs
no quota, and ARG caps joins per query.

ARG lags ARM by up to a minute. The inventory is for seeing; every recovery reads
the VM again with point GETs (``ResourceReads.vm_documents``) before it plans or acts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from backend import mapping
from backend.azure import graph, join
from backend.models import GraphResult, Inventory, SubscriptionError

if TYPE_CHECKING:
    from backend.azure.backend import AzureBackend

BATCH = 100
CONCURRENT_BATCHES = 2

# inventory list (join.REDUCERS) -> the type ARG gives its rows (lower case)
TYPES: dict[str, str] = {
    "vms": "microsoft.compute/virtualmachines",
    "disks": "microsoft.compute/disks",
    "availability_sets": "microsoft.compute/availabilitysets",
    "nics": "microsoft.network/networkinterfaces",
    "public_ips": "microsoft.network/publicipaddresses",
    "nsgs": "microsoft.network/networksecuritygroups",
    "load_balancers": "microsoft.network/loadbalancers",
    "vnets": "microsoft.network/virtualnetworks",
}
EXTENSION_TYPE = "microsoft.compute/virtualmachines/extensions"
_BY_TYPE = {t: name for name, t in TYPES.items()}
_COLUMNS = "id, name, type, location, subscriptionId, kind, managedBy, sku, plan, properties, tags, identity, zones, extendedLocation"

RESOURCES_QUERY = "resources | where type in~ (" + ", ".join(f"'{t}'" for t in (*TYPES.values(), EXTENSION_TYPE)) + f") | project {_COLUMNS} | order by id asc"
HEALTH_QUERY = (
    "healthresources | where type =~ 'microsoft.resourcehealth/availabilitystatuses'"
    " | where tostring(properties.targetResourceType) =~ 'microsoft.compute/virtualmachines'"
    " | project id, name, type, location, subscriptionId, properties | order by id asc"
)
SERVICE_HEALTH_QUERY = (
    "servicehealthresources | where type in~ ('microsoft.resourcehealth/events', 'microsoft.resourcehealth/events/impactedresources')"
    " | project id, name, type, subscriptionId, properties | order by id asc"
)
UNIFORM_TYPE = "microsoft.compute/virtualmachinescalesets/virtualmachines"
UNIFORM_NIC_TYPE = UNIFORM_TYPE + "/networkinterfaces"
COMPUTE_QUERY = f"computeresources | where type in~ ('{UNIFORM_TYPE}', '{UNIFORM_NIC_TYPE}') | project {_COLUMNS} | order by id asc"
QUERIES = (RESOURCES_QUERY, COMPUTE_QUERY, HEALTH_QUERY, SERVICE_HEALTH_QUERY)


@dataclass
class _Rows:
    """One subscription's rows, reduced page by page as the ARM engine reduces its lists
    (``join.reduce_page``); VM documents wait for the lookups, as the ARM VM list does."""

    reduced: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in join.LOOKUP_LISTS})
    vms: list[dict[str, Any]] = field(default_factory=list)
    extensions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # VM id (lower) -> extension documents
    impacted: dict[str, list[str]] = field(default_factory=dict)  # tracking id (lower) -> resource ids


_ARG_ONLY = ("subscriptionId", "resourceGroup", "tenantId")


def arm_document(row: dict[str, Any]) -> dict[str, Any]:
    """An ARG row as the ARM document it indexes: without ARG's own columns and the empty
    ones ARG fills in, and with the type as the id spells it (ARG lowers its case)."""
    doc = {k: v for k, v in row.items() if k not in _ARG_ONLY and v is not None and v != ""}
    rid = str(row.get("id") or "")
    if "/providers/" in rid:
        segments = rid.split("/providers/")[-1].split("/")
        doc["type"] = "/".join([segments[0], *segments[1::2]])
    return doc


def _tracking_id(impacted_row_id: str) -> str:
    """``.../events/{trackingId}/impactedResources/{name}`` -> the tracking id."""
    parts = impacted_row_id.split("/")
    low = [p.lower() for p in parts]
    return parts[low.index("events") + 1] if "events" in low[:-1] else ""


class BatchRows:
    """A batch's rows under their subscriptions (lower-case id), reduced as each page comes:
    a page's documents die with it, so a batch of 100 subscriptions never holds them all."""

    def __init__(self) -> None:
        self.by_sub: dict[str, _Rows] = {}

    def add_page(self, page: Sequence[dict[str, Any]]) -> None:
        unreduced: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for row in page:
            sub = str(row.get("subscriptionId") or "").lower()
            rows = self.by_sub.get(sub)
            if rows is None:
                rows = self.by_sub[sub] = _Rows()
            kind = str(row.get("type") or "").lower()
            name = _BY_TYPE.get(kind) or {UNIFORM_TYPE: "vms", UNIFORM_NIC_TYPE: "nics"}.get(kind)
            if name == "vms":
                view = ((row.get("properties") or {}).get("extended") or {}).get("instanceView") or {}
                code = (view.get("powerState") or {}).get("code")
                # the statusOnly list's shape, so the ARM engine's reducer and mapping read it unchanged
                unreduced.setdefault((sub, "vm_status"), []).append(
                    {"id": row["id"], "properties": {"instanceView": {"statuses": [{"code": code}] if code else []}}}
                )
                rows.vms.append(arm_document(row))
            elif name is not None:
                unreduced.setdefault((sub, name), []).append(arm_document(row))
            elif kind == EXTENSION_TYPE:
                vm_id = str(row.get("id") or "").rsplit("/extensions/", 1)[0].lower()
                rows.extensions.setdefault(vm_id, []).append(arm_document(row))
            elif kind == "microsoft.resourcehealth/availabilitystatuses":
                unreduced.setdefault((sub, "health"), []).append(row)
            elif kind == "microsoft.resourcehealth/events":
                unreduced.setdefault((sub, "events"), []).append({**row, "properties": mapping.camel_keys(row.get("properties") or {})})
            elif kind == "microsoft.resourcehealth/events/impactedresources":
                target = mapping.impacted_target(row)
                if target:
                    rows.impacted.setdefault(_tracking_id(str(row.get("id") or "")).lower(), []).append(target)
        for (sub, name), docs in unreduced.items():
            self.by_sub[sub].reduced[name].extend(join.reduce_page(name, sub, list(docs)))


def subscription_part(sub_id: str, rows: _Rows | None) -> Inventory:
    """One subscription's part of the inventory, joined as the ARM engine joins its lists;
    ``impacted`` holds the targets of its active service issues (as ``impacted_resources``)."""
    rows = rows or _Rows()
    lookups = join.Lookups.build(sub_id, rows.reduced)
    docs = []
    for doc in rows.vms:
        extensions = rows.extensions.get(str(doc["id"]).lower())
        docs.append({**doc, "resources": extensions} if extensions else doc)
    part = lookups.inventory(lookups.vm_page(docs))
    active = {e.id.lower() for e in part.events if e.status.lower() == "active" and e.type.lower() == "serviceissue"}
    # An active issue with no impacted rows lists none (an empty tuple), as an empty ARM list does.
    impacted = {k: tuple(dict.fromkeys(rows.impacted.get(k, ()))) for k in sorted(active)}
    return dataclasses.replace(part, impacted=impacted)


def batches(subscription_ids: Sequence[str], size: int = BATCH) -> list[list[str]]:
    return [list(subscription_ids[i : i + size]) for i in range(0, len(subscription_ids), size)]


@dataclass
class BatchOutcome:
    parts: dict[str, Inventory | SubscriptionError]
    warnings: list[str]


async def read_batch(backend: AzureBackend, subscription_ids: Sequence[str]) -> BatchOutcome:
    """The batch's three queries, then its subscriptions' parts; a failed query fails the
    batch's subscriptions, each named with the reason."""
    from backend.errors import BackendError

    collected = BatchRows()
    results: list[GraphResult] = []
    try:
        for q in QUERIES:
            results.append(
                await backend.call(
                    "querying Azure Resource Graph", partial(graph.query, backend, q, subscriptions=subscription_ids, on_page=collected.add_page)
                )
            )
    except BackendError as exc:
        return BatchOutcome({s: SubscriptionError(s, exc.code, str(exc)) for s in subscription_ids}, [])
    warnings = []
    for q, result in zip(QUERIES, results):
        table = q.split(" ", 1)[0]
        if result.truncated:
            warnings.append(
                f"Resource Graph cut its answer from {table} for {len(subscription_ids)} subscriptions short (resultTruncated): some of their resources are missing; narrow the scope with --subscription"
            )
        elif result.read != result.total_records:
            warnings.append(
                f"Resource Graph's answer from {table} changed while it was paged ({result.total_records} rows announced, {result.read} read): refresh to see a settled estate"
            )
        if result.subscription_limit_hit:  # not with explicit batches; said if ARG ever says it
            warnings.append("Resource Graph searched only the first 10,000 subscriptions in scope (x-ms-tenant-subscription-limit-hit)")
    by_sub = collected.by_sub
    parts: dict[str, Inventory | SubscriptionError] = {}
    for sub in subscription_ids:
        parts[sub] = subscription_part(sub, by_sub.get(sub.lower()))
        if len(parts) % 20 == 0:
            await asyncio.sleep(0)  # the console keeps drawing while a batch is joined
    return BatchOutcome(parts, warnings)


# --- a few VMs, read whole, wherever they are in the tenant ------------------------------

_REFERENCE = re.compile(r"/subscriptions/[^/\"]+/resourceGroups/[^/\"]+/providers/Microsoft\.(?:Compute|Network)/[A-Za-z]+/[^/\"]+", re.I)


def _group_scope(ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(subscription ids, resource group names) the ARM ids are in."""
    subs: dict[str, str] = {}
    groups: dict[str, str] = {}
    for rid in ids:
        parts = rid.split("/")
        if len(parts) > 4 and parts[1].lower() == "subscriptions" and parts[3].lower() == "resourcegroups":
            subs.setdefault(parts[2].lower(), parts[2])
            groups.setdefault(parts[4].lower(), parts[4])
    return list(subs.values()), list(groups.values())


def _in_list(values: Sequence[str]) -> str:
    from backend.search import kql_string

    return ", ".join(kql_string(v) for v in sorted(set(values)))


async def read_vms(backend: AzureBackend, vm_ids: Sequence[str]) -> dict[str, Inventory]:
    """The VMs of ``vm_ids`` (as Resource Graph spells them) read whole, by subscription: the
    resources of their resource groups, then what those reference in other groups (a VNet,
    NSG or load balancer in a shared network group), the VMs' availability statuses and their
    subscriptions' service events, joined as the inventory joins them. Three queries at once
    and at most one more; the parts hold only these VMs (with the lookups they need)."""
    subs, groups = _group_scope(vm_ids)
    if not subs:
        return {}
    wanted = {v.lower() for v in vm_ids}
    types = ", ".join(f"'{t}'" for t in (*TYPES.values(), EXTENSION_TYPE))
    in_groups = (
        f"resources | where type in~ ({types}) | where resourceGroup in~ ({_in_list([g.lower() for g in groups])}) | project {_COLUMNS} | order by id asc"
    )
    health = HEALTH_QUERY.replace(" | project", f" | where tolower(tostring(properties.targetResourceId)) in ({_in_list(sorted(wanted))}) | project", 1)
    found, statuses, events = await asyncio.gather(
        backend.graph_query(in_groups, subscriptions=subs),
        backend.graph_query(health, subscriptions=subs),
        backend.graph_query(SERVICE_HEALTH_QUERY, subscriptions=subs),
    )
    rows = list(found.rows)
    have = {str(r.get("id") or "").lower() for r in rows}
    referenced: dict[str, str] = {}
    for row in rows:
        for match in _REFERENCE.findall(orjson.dumps(row.get("properties")).decode()):
            if match.lower() not in have:
                referenced.setdefault(match.lower(), match)
    elsewhere = [r for r in referenced if "/providers/" in r and r.split("/providers/", 1)[1].rsplit("/", 1)[0] in TYPES.values()]
    if elsewhere:
        more = await backend.graph_query(
            f"resources | where type in~ ({types}) | where tolower(id) in ({_in_list(elsewhere)}) | project {_COLUMNS} | order by id asc",
            subscriptions=_group_scope(elsewhere)[0],
        )
        rows.extend(more.rows)
    collected = BatchRows()
    collected.add_page([r for r in rows if r.get("type") != TYPES["vms"] or str(r.get("id") or "").lower() in wanted])
    collected.add_page(list(statuses.rows))
    collected.add_page(list(events.rows))
    return {
        sub: subscription_part(sub, collected.by_sub.get(sub.lower())) for sub in {str(r.get("subscriptionId") or "") for r in rows if r.get("subscriptionId")}
    }
