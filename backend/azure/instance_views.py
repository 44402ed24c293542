"""Per-VM instance views for the facts the inventory's lists do not carry:
``GET .../virtualMachines/{name}/instanceView``, one request per VM, a
bounded number at once. What is read and what it adds: ``backend.instance_views``.

Views are read as raw ARM JSON through the adapter's pipeline (``lists.raw_get``),
like the inventory's lists: the SDK's model of an instance view costs more CPU
than the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from backend.azure.lists import INSTANCE_VIEW_API_VERSION, instance_view_path, raw_get
from backend.errors import BackendError
from backend.instance_views import enrich
from backend.models import Vm
from backend.safetext import safe_json

# Instance views read at once (each is one small GET).
CONCURRENCY = 32


async def read_instance_views(
    backend: Any, vms: Iterable[Vm], *, concurrency: int = CONCURRENCY, semaphore: asyncio.Semaphore | None = None
) -> tuple[dict[str, Vm], dict[str, str]]:
    """Enriched VMs by lower-case id, and the reason for each VM whose read failed.
    Reads that share ``semaphore`` share its concurrency."""
    semaphore = semaphore or asyncio.Semaphore(concurrency)
    read: dict[str, Vm] = {}
    errors: dict[str, str] = {}

    async def one(vm: Vm) -> None:
        async def fetch() -> Any:
            return await raw_get(backend.raw_client(), instance_view_path(vm.subscription_id, vm.resource_group, vm.name), INSTANCE_VIEW_API_VERSION)

        async with semaphore:
            try:
                view = await backend.call(f"reading the instance view of {vm.name}", fetch)
            except BackendError as exc:
                errors[vm.id.lower()] = str(exc)
                return
        read[vm.id.lower()] = enrich(vm, safe_json(view))

    await asyncio.gather(*(one(vm) for vm in vms))
    return read, errors
