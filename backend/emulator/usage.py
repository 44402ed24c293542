"""Compute usage and limits per subscription and region, as ARM serves them:
``GET /subscriptions/{s}/providers/Microsoft.Compute/locations/{loc}/usages``.

By default the answer is counted from the estate: "Total Regional vCPUs" is the
sum of the vCPUs (from the size name) of the region's VMs that hold compute
(every power state but deallocated), against a limit of
``DEFAULT_VCPU_LIMIT``; "Virtual Machines" counts every VM. An estate may
carry an optional top-level ``"usages"`` object to set limits or values::

    "usages": {
      "<subscription id>": {
        "<location>": [
          {"name": "cores", "limit": 20},                          # current counted from the estate
          {"name": "standardDSv5Family", "limit": 10, "currentValue": 8,
           "localizedValue": "Standard DSv5 Family vCPUs"}
        ]
      }
    }

A row named like a default row replaces its limit (and its value when
``currentValue`` is given); other rows are added as written.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .ids import ArmError, location_key
from .vmsize import vcpus

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from .store import Store

VM_TYPE = "microsoft.compute/virtualmachines"

DEFAULT_VCPU_LIMIT = 100
DEFAULT_VM_LIMIT = 25000
NAMES = {"cores": "Total Regional vCPUs", "virtualMachines": "Virtual Machines"}
PATH = "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/usages"


class UsageError(ValueError):
    """The estate's "usages" object is malformed; one sentence."""


def validate_usages(value: Any, where: str = "estate") -> None:
    """Check an estate's optional "usages" object (raises UsageError)."""
    if not isinstance(value, dict):
        raise UsageError(f"{where}: 'usages' must be an object of subscription id -> location -> list of rows")
    for sub, regions in value.items():
        if not isinstance(regions, dict):
            raise UsageError(f"{where}: usages[{sub!r}] must be an object of location -> list of rows")
        for loc, rows in regions.items():
            if not isinstance(rows, list):
                raise UsageError(f"{where}: usages[{sub!r}][{loc!r}] must be a list of rows")
            for i, row in enumerate(rows):
                at = f"usages[{sub!r}][{loc!r}][{i}]"
                if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not row["name"]:
                    raise UsageError(f"{where}: {at} needs a 'name' such as \"cores\"")
                for key in ("limit", "currentValue"):
                    if key in row and (isinstance(row[key], bool) or not isinstance(row[key], int) or row[key] < 0):
                        raise UsageError(f"{where}: {at}.{key} must be a whole number of at least 0")
                if "limit" not in row:
                    raise UsageError(f"{where}: {at} needs a 'limit'")


def _row(name: str, current: int, limit: int, localized: str | None = None) -> dict[str, Any]:
    return {"unit": "Count", "currentValue": int(current), "limit": int(limit), "name": {"value": name, "localizedValue": localized or NAMES.get(name, name)}}


def counted(store: Store, sub: str, location: str) -> dict[str, int]:
    """vCPUs holding compute and VMs in one subscription and region, from the store's current state."""
    want = location_key(location)
    cores = 0
    machines = 0
    for doc in store.docs_of_type(sub, VM_TYPE):
        if location_key(doc.get("location")) != want:
            continue
        machines += 1
        if store.power_state(doc["id"]) == "deallocated":
            continue  # a deallocated VM holds no cores against the quota
        size = ((doc.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize") or ""
        cores += vcpus(size) or 0
    return {"cores": cores, "virtualMachines": machines}


def usage_rows(store: Store, sub: str, location: str) -> list[dict[str, Any]]:
    counts = counted(store, sub, location)
    rows = {
        "cores": _row("cores", counts["cores"], DEFAULT_VCPU_LIMIT),
        "virtualMachines": _row("virtualMachines", counts["virtualMachines"], DEFAULT_VM_LIMIT),
    }
    configured = (getattr(store, "_estate", None) or {}).get("usages") or {}
    per_sub: dict[str, Any] = next((v for k, v in configured.items() if k.lower() == sub.lower()), {}) or {}
    for loc, entries in per_sub.items():
        if location_key(loc) != location_key(location):
            continue
        for entry in entries:
            name = entry["name"]
            current = entry.get("currentValue", counts.get(name, 0))
            rows[name] = _row(name, current, entry["limit"], entry.get("localizedValue"))
    return list(rows.values())


async def _usages(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    store: Store = request.app["store"]
    sub = request.match_info["sub"]
    try:
        store.subscription(sub)
    except ArmError as exc:
        return web.Response(status=exc.status, text=json.dumps(exc.body()), content_type="application/json")
    body = {"value": usage_rows(store, sub, request.match_info["location"])}
    return web.Response(text=json.dumps(body), content_type="application/json")


def usage_routes(app: web.Application, store: Store) -> None:
    """The route extension (registered by server.py with Emulator.add_routes)."""
    app.router.add_get(PATH, _usages)
    # ARM paths are case-insensitive; clients in the wild send either form.
    app.router.add_get(PATH.replace("Microsoft.Compute", "microsoft.compute"), _usages)
