"""The sizes a region offers the VM's subscription (Resource SKUs), read from the
documents a plan is built from: what a resize may choose, and whether a size is
offered in an availability zone (move-to-zone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.adapter import SizeCatalog
from backend.errors import BackendError
from backend.models import ResourceId
from backend.recovery.facts import VmFacts, VmSize
from backend.safetext import safe_json


@dataclass(frozen=True)
class RegionSize:
    size: VmSize
    zones: tuple[str, ...]  # the zones that offer it (none: the region has no zones)
    restricted: str | None  # why the whole region refuses it to this subscription (reasonCode), or None
    restricted_zones: tuple[str, ...]  # zones that refuse it to this subscription

    @property
    def name(self) -> str:
        return self.size.name

    def refusal(self, location: str, zones: tuple[str, ...] = ()) -> str | None:
        """Why Azure refuses this size for a VM in `location` (and `zones`), or None."""
        if self.restricted:
            return f"{location} does not offer {self.name} to this subscription ({self.restricted})"
        blocked = [z for z in zones if z in self.restricted_zones or (self.zones and z not in self.zones)]
        if blocked:
            return f"{self.name} is not offered in zone {', '.join(blocked)} of {location} for this subscription"
        return None


def _capability(doc: dict[str, Any], name: str) -> str | None:
    for cap in doc.get("capabilities") or ():
        if (cap.get("name") or "").lower() == name.lower():
            return str(cap.get("value"))
    return None


def _int(value: str | None, scale: float = 1) -> int | None:
    try:
        return None if value is None else int(float(value) * scale)
    except ValueError:
        return None


def region_size(doc: dict[str, Any], location: str) -> RegionSize:
    region = "".join(location.split()).lower()
    zones: tuple[str, ...] = ()
    for info in doc.get("locationInfo") or ():
        if (info.get("location") or "").lower() == region:
            zones = tuple(str(z) for z in info.get("zones") or ())
    restricted, restricted_zones = None, []
    for r in doc.get("restrictions") or ():
        info = r.get("restrictionInfo") or {}
        if (r.get("type") or "").lower() == "location":
            restricted = r.get("reasonCode") or "restricted"
        elif (r.get("type") or "").lower() == "zone":
            restricted_zones += [str(z) for z in info.get("zones") or ()]
    size = VmSize(
        name=doc.get("name") or "",
        cores=_int(_capability(doc, "vCPUs")),
        memory_mb=_int(_capability(doc, "MemoryGB"), 1024),
        max_data_disks=_int(_capability(doc, "MaxDataDiskCount")),
        resource_disk_mb=_int(_capability(doc, "MaxResourceVolumeMB")),
    )
    return RegionSize(size, zones, restricted, tuple(restricted_zones))


def region_sizes(facts: VmFacts) -> tuple[RegionSize, ...] | None:
    """The region's sizes from the plan's documents; None when they were not (or could not be) read."""
    docs = facts.documents.get("region_skus")
    if docs is None:
        return None
    return tuple(region_size(d, facts.vm.location) for d in safe_json(docs))


def find(sizes: tuple[RegionSize, ...] | None, name: str) -> RegionSize | None:
    for s in sizes or ():
        if s.name.lower() == name.lower():
            return s
    return None


async def gather_region_sizes(backend: SizeCatalog, vm_id: str, documents: dict[str, Any]) -> None:
    """Add the region's sizes (``region_skus``) to a plan's documents, or why they could not be read."""
    location = (documents.get("model") or {}).get("location") or ""
    try:
        documents["region_skus"] = await backend.list_vm_skus(ResourceId.parse(vm_id).subscription_id, location)
    except BackendError as exc:
        documents["region_skus"] = None
        documents["region_skus_error"] = str(exc)
