"""VM sizes as a subscription sees them per region, and the size rules Azure
enforces on VM writes.

- ``GET /subscriptions/{s}/providers/Microsoft.Compute/skus?api-version=2021-07-01
  [&$filter=location eq '{region}']`` (Resource SKUs - List): one entry per VM
  size and region, with its capabilities (vCPUs, MemoryGB, MaxDataDiskCount,
  MaxResourceVolumeMB, PremiumIO, HyperVGenerations), the zones that offer it
  (``locationInfo``) and the subscription's restrictions (``restrictions``:
  ``NotAvailableForSubscription`` for the whole region or for some zones).
- A VM write that names a size is refused as Azure refuses it, before anything changes:
  * a size the region does not offer to the subscription (unknown to the catalogue on a
    resize, or restricted for the region): 409 ``SkuNotAvailable``;
  * a zonal VM whose size is restricted in its zone (a create or a resize): 409 ``SkuNotAvailable``
    naming the zone;
  * a VM that holds a host (not deallocated) resized to a size its hardware cluster does
    not offer: 409 ``OperationNotAllowed`` listing the sizes the cluster does offer
    (``recovery_ops.available_sizes``; deallocate first and every size of the region is open).

Placement, as Azure enforces it on a VM write (what move-to-zone and move-to-set meet):

* a VM in both an availability zone and an availability set: 400 ``InvalidParameter``;
* an existing VM's ``zones`` or ``availabilitySet`` changed: 409 ``PropertyChangeNotAllowed``
  (a VM moves into a zone or a set only by being created again);
* an availability set that does not exist (404 ``NotFound``), in another region (400
  ``InvalidParameter``), or of the ``Classic`` SKU for a VM with managed disks (400
  ``InvalidParameter``); a created VM joins the set's ``virtualMachines``, a deleted one leaves it;
* a create attaching a zonal disk of another zone (or to a VM with no zone): 400 ``BadRequest``;
* an availability set PUT with a fault-domain count outside 1-3 or an update-domain count
  outside 1-20: 400 ``InvalidParameter``.

An estate may restrict sizes with an optional top-level ``"skuRestrictions"`` object::

    "skuRestrictions": {
      "<subscription id>": {
        "<location>": {"Standard_E8s_v5": "all", "Standard_E4s_v5": ["3"]}   # the region, or these zones
      }
    }

Nothing here imports a domain module. server.py registers ``install``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .arm import error_response
from .ids import ArmError, location_key
from .recovery_ops import SIZES, available_sizes

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from .store import Store

VM_TYPE = "microsoft.compute/virtualmachines"
PATH = "/subscriptions/{sub}/providers/Microsoft.Compute/skus"
# Regions with availability zones (the emulator's own short list; others have none).
ZONAL_REGIONS = {"westeurope", "northeurope", "eastus", "eastus2", "westus2", "westus3", "uksouth", "francecentral", "germanywestcentral", "swedencentral"}
_FILTER = re.compile(r"^\s*location\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_NAME = re.compile(r"^standard_([a-z]+?)(\d+)(?:-\d+)?([a-z]*)(?:_(v\d+))?$", re.IGNORECASE)


def _family(name: str) -> str:
    """The quota family a size counts against, in Azure's spelling (standardDSv5Family)."""
    m = _NAME.match(name)
    if not m:
        return "standardFamily"
    letters, features, version = m[1].upper(), m[3].lower(), (m[4] or "").lower()
    extra = "".join(ch.upper() for ch in features if ch in "as")
    return f"standard{letters}{extra}{version}Family"


def _premium(name: str) -> bool:
    m = _NAME.match(name)
    return m is not None and ("s" in m[3].lower() or m[1].upper() in ("DS", "GS"))


def restrictions(store: Store, sub: str, location: str) -> dict[str, Any]:
    """size (lower) -> "all" or a list of zones, from the estate's skuRestrictions."""
    configured = (getattr(store, "_estate", None) or {}).get("skuRestrictions") or {}
    per_sub: dict[str, Any] = next((v for k, v in configured.items() if k.lower() == sub.lower()), {}) or {}
    for loc, sizes in per_sub.items():
        if location_key(loc) == location_key(location):
            return {str(k).lower(): v for k, v in (sizes or {}).items()}
    return {}


def sku_doc(name: str, location: str, restricted: Any) -> dict[str, Any]:
    cores, memory_gb, disks, temp_gb = SIZES[name]
    region = location_key(location)
    zones = ["1", "2", "3"] if region in ZONAL_REGIONS else []
    out: dict[str, Any] = {
        "resourceType": "virtualMachines",
        "name": name,
        "tier": "Standard",
        "size": name.split("_", 1)[1],
        "family": _family(name),
        "locations": [region],
        "locationInfo": [{"location": region, "zones": zones, "zoneDetails": []}],
        "capabilities": [
            {"name": "MaxResourceVolumeMB", "value": str(temp_gb * 1024)},
            {"name": "OSVhdSizeMB", "value": "1047552"},
            {"name": "vCPUs", "value": str(cores)},
            {"name": "HyperVGenerations", "value": "V1,V2"},
            {"name": "MemoryGB", "value": f"{memory_gb:g}"},
            {"name": "MaxDataDiskCount", "value": str(disks)},
            {"name": "LowPriorityCapable", "value": "True"},
            {"name": "PremiumIO", "value": "True" if _premium(name) else "False"},
            {"name": "EncryptionAtHostSupported", "value": "True"},
            {"name": "AcceleratedNetworkingEnabled", "value": "True"},
        ],
        "restrictions": [],
    }
    if restricted == "all":
        out["restrictions"].append(
            {"type": "Location", "values": [region], "restrictionInfo": {"locations": [region]}, "reasonCode": "NotAvailableForSubscription"}
        )
    elif restricted:
        out["restrictions"].append(
            {
                "type": "Zone",
                "values": [region],
                "restrictionInfo": {"locations": [region], "zones": [str(z) for z in restricted]},
                "reasonCode": "NotAvailableForSubscription",
            }
        )
    return out


def region_skus(store: Store, sub: str, location: str) -> list[dict[str, Any]]:
    limits = restrictions(store, sub, location)
    return [sku_doc(name, location, limits.get(name.lower())) for name in SIZES]


def _regions(store: Store, sub: str) -> list[str]:
    seen: dict[str, None] = {}
    for doc in store.docs_of_type(sub, VM_TYPE):
        seen.setdefault(location_key(doc.get("location")), None)
    return list(seen) or ["westeurope"]


def _not_available(vm_name: str, size: str, location: str, sub: str, zones: list[str] | None) -> ArmError:
    return ArmError(
        409,
        "SkuNotAvailable",
        f"The requested VM size {size} for resource '{vm_name}' is currently not available in location '{location_key(location)}' "
        f"zones '{','.join(zones or [])}' for subscription '{sub}'. Please try another size or deploy to a different location or zones. "
        "See https://aka.ms/azureskunotavailable for details.",
    )


def check_size(store: Store, vm_id: str, before: dict | None, body: dict, method: str) -> None:
    """Raise ArmError when a VM write names a size Azure would refuse (see the module docstring)."""
    from .ids import parse_id

    props = body.get("properties") or {}
    size = (props.get("hardwareProfile") or {}).get("vmSize")
    if not size:
        return
    old_props = (before or {}).get("properties") or {}
    old_size = (old_props.get("hardwareProfile") or {}).get("vmSize") or ""
    changing = before is not None and size.lower() != old_size.lower()
    if before is not None and not changing:
        return
    p = parse_id(vm_id)
    location = body.get("location") or (before or {}).get("location") or ""
    zones = body.get("zones") or (before or {}).get("zones") or []
    known = {n.lower(): n for n in SIZES}
    restricted = restrictions(store, p.subscription, location).get(size.lower())
    if (changing and size.lower() not in known) or restricted == "all":
        raise _not_available(p.name, size, location, p.subscription, None)
    if isinstance(restricted, list) and any(str(z) in {str(r) for r in restricted} for z in zones):
        raise _not_available(p.name, size, location, p.subscription, [str(z) for z in zones])
    if changing and store.power_state(vm_id) != "deallocated":
        offered = [d["name"] for d in available_sizes(store, vm_id)]
        if size.lower() not in {n.lower() for n in offered}:
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Unable to resize the VM '{p.name}' because the requested size {size} is not available in the current hardware cluster. "
                f"The available sizes in this cluster are: {', '.join(offered)}. Read more on VM resizing strategy at https://aka.ms/azure-resizevm.",
            )


def _ref_id(value: Any) -> str:
    return str((value or {}).get("id") or "") if isinstance(value, dict) else ""


def check_placement(store: Store, vm_id: str, before: dict | None, body: dict, method: str) -> None:
    """Raise ArmError for a VM write Azure refuses for its zone, availability set or disks' zones."""
    from .ids import parse_id

    p = parse_id(vm_id)
    props = body.get("properties") or {}
    old_props = (before or {}).get("properties") or {}
    zones = [str(z) for z in body.get("zones") or []] if "zones" in body or before is None else [str(z) for z in (before or {}).get("zones") or []]
    set_ref = _ref_id(props.get("availabilitySet")) if "availabilitySet" in props or before is None else _ref_id(old_props.get("availabilitySet"))
    if zones and set_ref:
        raise ArmError(400, "InvalidParameter", f"Virtual machine '{p.name}' cannot be in an availability set and an availability zone at the same time.")
    if before is not None:
        if "zones" in body and sorted(zones) != sorted(str(z) for z in before.get("zones") or []):
            raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'zones' is not allowed.")
        if "availabilitySet" in props and set_ref.lower() != _ref_id(old_props.get("availabilitySet")).lower():
            raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'availabilitySet.id' is not allowed.")
        return
    location = location_key(body.get("location"))
    if set_ref:
        avset = store.get(set_ref)
        if avset is None:
            raise ArmError(404, "NotFound", f"Availability set '{set_ref.rsplit('/', 1)[-1]}' was not found ({set_ref}).")
        if location_key(avset.get("location")) != location:
            raise ArmError(400, "InvalidParameter", f"Availability set '{avset.get('name')}' is in {location_key(avset.get('location'))}, not in {location}.")
        managed = bool(((props.get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk"))
        if managed and str((avset.get("sku") or {}).get("name") or "Classic").lower() != "aligned":
            raise ArmError(
                400,
                "InvalidParameter",
                "Addition of a VM with managed disks to non-managed Availability Set or addition of a VM with blob based disks to managed Availability Set "
                "is not supported. Please create an Availability Set with 'Aligned' SKU in order to add a VM with managed disks to it.",
            )
    storage = props.get("storageProfile") or {}
    for ref in [storage.get("osDisk") or {}] + list(storage.get("dataDisks") or []):
        disk_id = _ref_id(ref.get("managedDisk"))
        disk = store.get(disk_id) if disk_id else None
        disk_zones = [str(z) for z in (disk or {}).get("zones") or []]
        if disk_zones and sorted(disk_zones) != sorted(zones):
            raise ArmError(
                400,
                "BadRequest",
                f"Disk '{disk.get('name') if disk else disk_id}' is in zone {','.join(disk_zones)} and cannot be attached to virtual machine '{p.name}' "
                f"{'in zone ' + ','.join(zones) if zones else 'which is in no zone'}.",
            )


def check_availability_set(body: dict) -> None:
    props = body.get("properties") or {}
    faults, updates = props.get("platformFaultDomainCount", 2), props.get("platformUpdateDomainCount", 5)
    if not isinstance(faults, int) or not 1 <= faults <= 3:
        raise ArmError(400, "InvalidParameter", f"The value {faults} of parameter 'platformFaultDomainCount' is out of range: it must be between 1 and 3.")
    if not isinstance(updates, int) or not 1 <= updates <= 20:
        raise ArmError(400, "InvalidParameter", f"The value {updates} of parameter 'platformUpdateDomainCount' is out of range: it must be between 1 and 20.")


def _set_members(store: Store, set_id: str, vm_id: str, *, add: bool) -> None:
    if not set_id or store.get(set_id) is None:
        return
    avset = store.own(set_id)
    members = avset.setdefault("properties", {}).setdefault("virtualMachines", [])
    members[:] = [m for m in members if str(m.get("id") or "").lower() != vm_id.lower()]
    if add:
        members.append({"id": vm_id})


def _compute_resource_of(path: str, rtype: str) -> str | None:
    """The id of the Microsoft.Compute resource of type `rtype` (lower case) a request path names, or None."""
    segs = [s for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    if len(segs) == 8 and low[0] == "subscriptions" and low[2] == "resourcegroups" and low[5] == "microsoft.compute" and low[6] == rtype:
        return "/" + "/".join(segs)
    return None


def install(app: web.Application, store: Store) -> None:
    from aiohttp import web

    async def skus(request: web.Request) -> web.StreamResponse:
        sub = request.match_info["sub"]
        try:
            store.subscription(sub)
        except ArmError as exc:
            resp = error_response(exc)
            return web.json_response(resp.body, status=resp.status)
        wanted = request.query.get("$filter")
        if wanted:
            m = _FILTER.match(wanted)
            if not m:
                resp = error_response(ArmError(400, "InvalidFilter", f"The filter '{wanted}' is not supported: only location eq '<location>' is."))
                return web.json_response(resp.body, status=resp.status)
            regions = [m[1]]
        else:
            regions = _regions(store, sub)
        value = [doc for region in regions for doc in region_skus(store, sub, region)]
        return web.Response(text=json.dumps({"value": value}), content_type="application/json")

    @web.middleware
    async def size_and_placement_rules(request: web.Request, handler: Any) -> web.StreamResponse:
        method = request.method.upper()
        vm_id = _compute_resource_of(request.path, "virtualmachines")
        set_id = _compute_resource_of(request.path, "availabilitysets")
        if method not in ("PUT", "PATCH", "DELETE") or (vm_id is None and set_id is None):
            return await handler(request)
        body: Any = None
        if method != "DELETE":
            try:
                raw = await request.read()
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                body = None  # the core answers 400
        store.apply_due()
        before = store.get(vm_id) if vm_id else None
        if isinstance(body, dict):
            try:
                if vm_id is not None:
                    check_size(store, vm_id, before, body, method)
                    check_placement(store, vm_id, before, body, method)
                elif method == "PUT":
                    check_availability_set(body)
            except ArmError as exc:
                resp = error_response(exc)
                return web.json_response(resp.body, status=resp.status)
        response = await handler(request)
        if set_id is not None and method == "PUT" and response.status == 201:
            # AvailabilitySets_CreateOrUpdate answers 200 whether it created the set or not (not long-running).
            body_bytes = getattr(response, "body", None)
            if isinstance(body_bytes, (bytes, bytearray)):
                return web.Response(status=200, body=bytes(body_bytes), content_type="application/json")
        if vm_id is not None and response.status < 400:
            after = store.get(vm_id)
            if method == "DELETE" and before is not None:
                _set_members(store, _ref_id((before.get("properties") or {}).get("availabilitySet")), before["id"], add=False)
            elif before is None and after is not None:
                _set_members(store, _ref_id((after.get("properties") or {}).get("availabilitySet")), after["id"], add=True)
        return response

    app.router.add_get(PATH, skus)
    app.router.add_get(PATH.replace("Microsoft.Compute", "microsoft.compute"), skus)
    app.middlewares.append(size_and_placement_rules)
