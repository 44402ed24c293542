"""The scale estate's documents grouped as the inventory's lists carry them, for the
benchmarks that skip the network (checks, mapping)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

# ARM resource type -> the inventory list that carries it (backend.azure.lists.INVENTORY_LISTS)
LISTS = {
    "microsoft.compute/virtualmachines": "vms",
    "microsoft.compute/disks": "disks",
    "microsoft.compute/availabilitysets": "availability_sets",
    "microsoft.network/networkinterfaces": "nics",
    "microsoft.network/publicipaddresses": "public_ips",
    "microsoft.network/networksecuritygroups": "nsgs",
    "microsoft.network/loadbalancers": "load_balancers",
    "microsoft.network/virtualnetworks": "vnets",
}


def scale_lists(vms: int, subscriptions: int, *, health: bool = False, now: datetime | None = None) -> tuple[dict, dict[str, dict[str, list]]]:
    """(the estate, per subscription id: list name -> documents). With ``health``, the
    Resource Health statuses and events too."""
    from backend.emulator.estates import load_estate

    estate = load_estate(f"scale:{vms}", subscriptions=subscriptions, seed=1, now=now)
    docs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for doc in estate["resources"]:
        kind = LISTS.get(doc["type"].lower())
        if kind:
            docs[doc["id"].split("/")[2]][kind].append(doc)
    if health:
        for doc in estate.get("availabilityStatuses") or ():
            docs[doc["id"].split("/")[2]]["health"].append(doc)
        for doc in estate.get("events") or ():
            docs[doc["id"].split("/")[2]]["events"].append(doc)
    return estate, docs
