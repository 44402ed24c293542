"""Regional compute usage and limits (the "limits of the platform"):
``GET /subscriptions/{s}/providers/Microsoft.Compute/locations/{loc}/usages``.

One request per subscription and region that holds VMs; a region whose read
fails is reported back with the reason, so the checklist can say "not
checked" there instead of guessing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from backend.checks import ComputeUsage, UsageKey
from backend.errors import BackendError
from backend.models import Inventory
from backend.regions import normalize
from backend.safetext import safe_line


def _usage(doc: Any) -> ComputeUsage:
    name = doc.get("name") or {}
    return ComputeUsage(
        name=safe_line(name.get("value") or ""),
        display_name=safe_line(name.get("localizedValue") or name.get("value") or ""),
        current=int(doc.get("currentValue") or 0),
        limit=int(doc.get("limit") or 0),
        unit=safe_line(doc.get("unit") or "Count"),
    )


async def regional_usage(backend: Any, subscription_id: str, location: str) -> tuple[ComputeUsage, ...]:
    """The compute usage rows of one subscription in one region (raises BackendError)."""

    async def fetch() -> tuple[ComputeUsage, ...]:
        client = backend.client("compute", subscription_id)
        return tuple([_usage(u) async for u in client.usage.list(location)])

    return await backend.call(f"reading compute usage of subscription {subscription_id} in {location}", fetch)


def regions_in_use(inv: Inventory) -> list[tuple[str, str]]:
    """(subscription id, location) of every region that holds at least one VM."""
    seen: dict[UsageKey, tuple[str, str]] = {}
    for vm in inv.vms:
        if vm.location:
            seen.setdefault((vm.subscription_id.lower(), normalize(vm.location)), (vm.subscription_id, normalize(vm.location)))
    return sorted(seen.values())


async def usages_for(
    backend: Any, pairs: Iterable[tuple[str, str]], *, concurrency: int = 8
) -> tuple[dict[UsageKey, tuple[ComputeUsage, ...]], dict[UsageKey, str]]:
    """Usage rows per (subscription, region), and the reason for every region that failed."""
    semaphore = asyncio.Semaphore(concurrency)
    usages: dict[UsageKey, tuple[ComputeUsage, ...]] = {}
    errors: dict[UsageKey, str] = {}

    async def one(sub: str, loc: str) -> None:
        key = (sub.lower(), normalize(loc))
        async with semaphore:
            try:
                usages[key] = await regional_usage(backend, sub, loc)
            except BackendError as exc:
                errors[key] = str(exc)

    await asyncio.gather(*(one(s, loc) for s, loc in pairs))
    return usages, errors


async def inventory_usages(backend: Any, inv: Inventory) -> tuple[dict[UsageKey, tuple[ComputeUsage, ...]], dict[UsageKey, str]]:
    return await usages_for(backend, regions_in_use(inv))
