"""Per-VM instance views for the facts the inventory's lists do not carry:
``GET .../virtualMachines/{name}/instanceView``, one request per VM, a
bounded number at once. What is read and what it adds: ``backend.instance_views``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from backend.errors import BackendError
from backend.instance_views import enrich
from backend.models import Vm
from backend.safetext import safe_json


async def read_instance_views(backend: Any, vms: Iterable[Vm], *, concurrency: int = 16) -> tuple[dict[str, Vm], dict[str, str]]:
    """Enriched VMs by lower-case id, and the reason for each VM whose read failed."""
    semaphore = asyncio.Semaphore(concurrency)
    read: dict[str, Vm] = {}
    errors: dict[str, str] = {}

    async def one(vm: Vm) -> None:
        async def fetch() -> Any:
            return await backend.client("compute", vm.subscription_id).virtual_machines.instance_view(vm.resource_group, vm.name)

        async with semaphore:
            try:
                view = await backend.call(f"reading the instance view of {vm.name}", fetch)
            except BackendError as exc:
                errors[vm.id.lower()] = str(exc)
                return
        read[vm.id.lower()] = enrich(vm, safe_json(view))

    await asyncio.gather(*(one(vm) for vm in vms))
    return read, errors
