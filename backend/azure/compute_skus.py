"""The adapter's size catalogue and availability sets: the VM sizes a region offers a
subscription, from Resource SKUs (``GET /subscriptions/{s}/providers/Microsoft.Compute/skus``
with ``$filter=location eq '{region}'``), one request per region however many VMs it holds;
an availability set read, and created (a PUT that is not long-running) for move-to-set.

A mixin of ``AzureBackend`` (which provides ``client()`` and ``call()``); it returns
wire documents as ARM sent them, so a recovery plan keeps them in its journal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from backend.azure.operations import to_wire
from backend.models import ResourceId


class SkuOperations:
    client: Callable[..., Any]
    call: Callable[..., Awaitable[Any]]
    _read: Callable[..., Awaitable[Any]]
    _put: Callable[..., Awaitable[Any]]

    async def list_vm_skus(self, subscription_id: str, location: str) -> list[dict[str, Any]]:
        compute = self.client("compute", subscription_id)
        region = "".join(location.split()).lower()

        async def fetch() -> list[dict[str, Any]]:
            pager = compute.resource_skus.list(filter=f"location eq '{region}'")
            return [doc async for sku in pager if ((doc := to_wire(sku)).get("resourceType") or "").lower() == "virtualmachines"]

        return await self.call(f"listing the VM sizes {region} offers", fetch)

    async def get_availability_set(self, set_id: str) -> dict[str, Any] | None:
        return await self._read("compute", ResourceId.parse(set_id), "availability set", lambda c: c.availability_sets)

    async def put_availability_set(self, set_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._put("compute", ResourceId.parse(set_id), "creating availability set", lambda c: c.availability_sets, body)
