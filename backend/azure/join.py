"""One subscription's inventory lists joined into VMs, a page at a time.

Each page of a list is reduced as soon as it is parsed: to models (public IPs,
NSGs, health statuses, service events) or to the few facts a VM row takes from
a resource (disks, NICs, instance-view statuses). The raw documents of a page
die with it — for scale:10000 the documents are about 290 MB of Python
objects, the finished inventory about 45 MB. The VM list is fetched alongside
the others; its pages are parsed once the lookups are built, each mapped
straight into ``Vm``.

Pure (no I/O, no SDK): the adapter feeds it pages, its tests feed it whole
lists through ``join_subscription``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backend import mapping
from backend.models import HealthStatus, Inventory, NetworkSecurityGroup, PublicIp, ServiceEvent, Vm

Doc = Mapping[str, Any]


def _views(items: Iterable[Doc], sub_id: str) -> list[tuple[str, Any]]:
    out = []
    for v in items:
        view = (v.get("properties") or {}).get("instanceView")
        if view is not None:
            out.append((v["id"].lower(), view))
    return out


# name of the list (backend.azure.lists.INVENTORY_LISTS) -> page reducer
REDUCERS: dict[str, Callable[[list[Doc], str], list[Any]]] = {
    "vm_status": _views,
    "disks": lambda items, sub: [(d["id"].lower(), mapping.disk_facts(d)) for d in items],
    "nics": lambda items, sub: [(n["id"].lower(), mapping.nic_facts(n)) for n in items],
    "public_ips": lambda items, sub: [(p["id"].lower(), mapping.public_ip(p)) for p in items],
    "nsgs": lambda items, sub: [(n["id"].lower(), mapping.network_security_group(n)) for n in items],
    "load_balancers": lambda items, sub: list(items),  # few; their frontends need every public IP first
    "vnets": lambda items, sub: list(mapping.subnet_nsgs(items).items()),
    "availability_sets": lambda items, sub: [(a["id"].lower(), dict(a)) for a in items],
    "health": lambda items, sub: [(mapping.health_target_id(h).lower(), mapping.health_status(h)) for h in items],
    "events": lambda items, sub: [mapping.service_event(e, sub) for e in items],
}

LOOKUP_LISTS = tuple(REDUCERS)  # what "vms" is joined with (all fetched at once)


def reduce_page(name: str, sub_id: str, items: list[Doc]) -> list[Any]:
    return REDUCERS[name](items, sub_id)


@dataclass
class Lookups:
    """The reduced lists of one subscription, keyed by lower-case resource id."""

    sub_id: str
    views: dict[str, Any]
    disks: dict[str, mapping.DiskFacts]
    nics: dict[str, mapping.NicFacts]
    public_ips: dict[str, PublicIp]
    nsgs: dict[str, NetworkSecurityGroup]
    load_balancer_docs: list[Doc]
    subnet_nsg: dict[str, str]
    availability_sets: dict[str, dict]
    health: dict[str, HealthStatus]
    events: list[ServiceEvent]

    @classmethod
    def build(cls, sub_id: str, reduced: Mapping[str, list[Any]]) -> Lookups:
        return cls(
            sub_id=sub_id,
            views=dict(reduced.get("vm_status", ())),
            disks=dict(reduced.get("disks", ())),
            nics=dict(reduced.get("nics", ())),
            public_ips=dict(reduced.get("public_ips", ())),
            nsgs=dict(reduced.get("nsgs", ())),
            load_balancer_docs=list(reduced.get("load_balancers", ())),
            subnet_nsg=dict(reduced.get("vnets", ())),
            availability_sets=dict(reduced.get("availability_sets", ())),
            health=dict(reduced.get("health", ())),
            events=list(reduced.get("events", ())),
        )

    def vm_page(self, items: Iterable[Doc]) -> list[Vm]:
        """A page of the VM list as finished VMs."""
        out = []
        for doc in items:
            key = doc["id"].lower()
            out.append(
                mapping.virtual_machine(
                    doc,
                    self.views.get(key),
                    disks=self.disks,
                    nics=self.nics,
                    public_ips=self.public_ips,
                    subnet_nsg=self.subnet_nsg,
                    health=self.health.get(key),
                )
            )
        return out

    def inventory(self, vms: Iterable[Vm]) -> Inventory:
        """The subscription's part of the inventory (its subscriptions are filled in by the caller)."""
        return Inventory(
            subscriptions=(),
            vms=tuple(vms),
            events=tuple(self.events),
            nsgs=self.nsgs,
            load_balancers={lb["id"].lower(): mapping.load_balancer(lb, self.public_ips) for lb in self.load_balancer_docs},
            public_ips=self.public_ips,
            availability_sets=self.availability_sets,
        )


def join_subscription(sub_id: str, docs: Mapping[str, list[Doc]]) -> Inventory:
    """Join one subscription's whole lists (wire documents or SDK models) into VMs."""
    lookups = Lookups.build(sub_id, {name: reduce_page(name, sub_id, list(docs.get(name, ()))) for name in LOOKUP_LISTS})
    return lookups.inventory(lookups.vm_page(docs.get("vms", ())))
