"""The adapter's Compute restore points (azure-mgmt-compute): a restore point collection per VM
(RestorePointCollections_CreateOrUpdate, not long-running) and restore points in it
(RestorePoints_Create and _Delete, long-running; RestorePoints_Get), listed per subscription
(RestorePointCollections_ListAll) and read with their restore points (``$expand=restorePoints``),
and the disk restore point a disk is restored from (DiskRestorePoint_Get). A restore point captures
every disk of the VM at one instant, application- or crash-consistent. A mixin of ``AzureBackend``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from backend.azure.operations import to_wire
from backend.errors import BackendError
from backend.models import ResourceId


def _rp_parts(restore_point_id: str) -> tuple[str, str, str, str]:
    """(subscription, group, collection, restore point) of a restore point id."""
    parts = restore_point_id.split("/")
    lower = [p.lower() for p in parts]
    try:
        collection = parts[lower.index("restorepointcollections") + 1]
        name = parts[lower.index("restorepoints") + 1]
    except (ValueError, IndexError):
        raise BackendError(f"{restore_point_id!r} is not a restore point id") from None
    rid = ResourceId.parse(restore_point_id)
    return rid.subscription_id, rid.resource_group, collection, name


class RestorePointOperations:
    client: Callable[..., Any]
    call: Callable[..., Awaitable[Any]]
    _get_or_none: Callable[..., Awaitable[Any]]
    _lro: Callable[..., Awaitable[Any]]
    _put: Callable[..., Awaitable[Any]]

    async def get_restore_point_collection(self, collection_id: str, *, restore_points: bool = False) -> dict[str, Any] | None:
        rid = ResourceId.parse(collection_id)
        compute = self.client("compute", rid.subscription_id)
        expand = "restorePoints" if restore_points else None
        doc = await self._get_or_none(
            f"reading restore point collection {rid.name}", lambda: compute.restore_point_collections.get(rid.resource_group, rid.name, expand=expand)
        )
        return to_wire(doc)

    async def list_restore_point_collections(self, subscription_id: str) -> list[dict[str, Any]]:
        compute = self.client("compute", subscription_id)

        async def fetch() -> list[dict[str, Any]]:
            return [to_wire(rpc) async for rpc in compute.restore_point_collections.list_all()]

        return await self.call("listing the subscription's restore point collections", fetch)

    async def put_restore_point_collection(self, collection_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._put("compute", ResourceId.parse(collection_id), "creating restore point collection", lambda c: c.restore_point_collections, body)

    async def delete_restore_point_collection(self, collection_id: str, **lro: Any) -> None:
        rid = ResourceId.parse(collection_id)
        compute = self.client("compute", rid.subscription_id)
        await self._lro(
            f"deleting restore point collection {rid.name}",
            lambda **kw: compute.restore_point_collections.begin_delete(rid.resource_group, rid.name, **kw),
            **lro,
        )

    async def get_restore_point(self, restore_point_id: str) -> dict[str, Any] | None:
        sub, rg, collection, name = _rp_parts(restore_point_id)
        compute = self.client("compute", sub)
        doc = await self._get_or_none(f"reading restore point {name}", lambda: compute.restore_points.get(rg, collection, name))
        return to_wire(doc)

    async def create_restore_point(self, restore_point_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        sub, rg, collection, name = _rp_parts(restore_point_id)
        compute = self.client("compute", sub)
        doc = await self._lro(f"creating restore point {name}", lambda **kw: compute.restore_points.begin_create(rg, collection, name, body, **kw), **lro)
        return to_wire(doc) or {}

    async def delete_restore_point(self, restore_point_id: str, **lro: Any) -> None:
        sub, rg, collection, name = _rp_parts(restore_point_id)
        compute = self.client("compute", sub)
        await self._lro(f"deleting restore point {name}", lambda **kw: compute.restore_points.begin_delete(rg, collection, name, **kw), **lro)

    async def get_disk_restore_point(self, disk_restore_point_id: str) -> dict[str, Any] | None:
        sub, rg, collection, name = _rp_parts(disk_restore_point_id)
        parts = disk_restore_point_id.rstrip("/").split("/")
        lower = [p.lower() for p in parts]
        if "diskrestorepoints" not in lower or lower.index("diskrestorepoints") + 1 >= len(parts):
            raise BackendError(f"{disk_restore_point_id!r} is not a disk restore point id")
        disk = parts[lower.index("diskrestorepoints") + 1]
        compute = self.client("compute", sub)
        doc = await self._get_or_none(f"reading disk restore point {disk}", lambda: compute.disk_restore_point.get(rg, collection, name, disk))
        return to_wire(doc)
