"""The adapter's operations for the recoveries that create and delete:
recreating a VM from its disks and repairing an OS disk on a rescue VM.

VMs (create or update with a full model, delete), disks (copy, delete),
snapshots (delete), network interfaces (read, update), resource groups
(read, create, list what they hold, delete). Long-running ones go through
the adapter's ``_lro`` (RecoveryOperations), so a run killed in the middle
resumes polling the same operation from its journaled continuation token.

Everything returns plain wire-shaped dicts. ARM never returns a VM's admin
password or custom data; what comes back is scrubbed of them all the same,
so a document kept in the journal can never carry one.

A mixin of ``AzureBackend`` (which provides ``client``, ``call``, ``_lro``,
``_get_or_none`` and ``refuse_write``); nothing here imports the Azure SDK.
"""

from __future__ import annotations

from typing import Any

from backend.azure.operations import RecoveryOperations, _vm_parts, scrub, to_wire
from backend.errors import BackendError
from backend.models import ResourceId

_PROFILE_SECRETS = ("adminPassword", "customData")


def scrub_vm(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A VM document without protected settings, admin password or custom data."""
    if doc is None:
        return None
    doc = scrub(doc)
    profile = (doc.get("properties") or {}).get("osProfile")
    if isinstance(profile, dict):
        for key in _PROFILE_SECRETS:
            profile.pop(key, None)
    return doc


def _rid(resource_id: str, what: str) -> ResourceId:
    rid = ResourceId.parse(resource_id)
    if not rid.resource_group or not rid.name:
        raise BackendError(f"{resource_id} is not a {what} id")
    return rid


class ResourceOperations(RecoveryOperations):
    """VMs, disks, snapshots, NICs and resource groups created and deleted by recoveries."""

    # --- VMs -----------------------------------------------------------------------------------

    async def get_vm_or_none(self, vm_id: str) -> dict[str, Any] | None:
        """The VM with its instance view, or None when it does not exist (deleted)."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self._get_or_none(f"reading VM {name}", lambda: compute.virtual_machines.get(rg, name, expand="instanceView"))
        return scrub_vm(to_wire(doc))

    async def put_vm(self, vm_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        """Create (or replace) a VM with a full model; waits until Azure has provisioned it."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self._lro(
            f"creating VM {name}",
            lambda **kw: compute.virtual_machines.begin_create_or_update(rg, name, body, **kw),
            **lro,
        )
        return scrub_vm(to_wire(doc)) or {}

    async def delete_vm(self, vm_id: str, **lro: Any) -> None:
        """Delete a VM. Azure honours each disk's, NIC's and public IP's deleteOption:
        the caller makes sure they say Detach first."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        await self._lro(f"deleting VM {name}", lambda **kw: compute.virtual_machines.begin_delete(rg, name, **kw), **lro)

    # --- disks and snapshots ------------------------------------------------------------------------

    async def create_disk(self, disk_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        return await self._create_or_update("compute", _rid(disk_id, "disk"), "creating disk", lambda c: c.disks, body, lro) or {}

    async def delete_disk(self, disk_id: str, **lro: Any) -> None:
        rid = _rid(disk_id, "disk")
        compute = self.client("compute", rid.subscription_id)
        await self._lro(f"deleting disk {rid.name}", lambda **kw: compute.disks.begin_delete(rid.resource_group, rid.name, **kw), **lro)

    async def delete_snapshot(self, snapshot_id: str, **lro: Any) -> None:
        rid = _rid(snapshot_id, "snapshot")
        compute = self.client("compute", rid.subscription_id)
        await self._lro(f"deleting snapshot {rid.name}", lambda **kw: compute.snapshots.begin_delete(rid.resource_group, rid.name, **kw), **lro)

    # --- network interfaces ----------------------------------------------------------------------------

    async def get_nic(self, nic_id: str) -> dict[str, Any] | None:
        return await self._read("network", _rid(nic_id, "network interface"), "NIC", lambda c: c.network_interfaces)

    async def put_nic(self, nic_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        """Create or update a NIC. Callers pass ``journal_token=False``: azure-mgmt-network
        cannot rebuild the result of a NIC PUT from a continuation token (its deserializer
        reads the token's response body, which the token does not keep), so a resumed step
        recognises the NIC by reading it instead."""
        return await self._create_or_update("network", _rid(nic_id, "network interface"), "updating NIC", lambda c: c.network_interfaces, body, lro) or {}

    # --- resource groups ---------------------------------------------------------------------------------

    async def get_group(self, subscription_id: str, name: str) -> dict[str, Any] | None:
        resources = self.client("resources", subscription_id)
        doc = await self._get_or_none(f"reading resource group {name}", lambda: resources.resource_groups.get(name))
        return to_wire(doc)

    async def create_group(self, subscription_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.refuse_write(f"creating resource group {name}")
        resources = self.client("resources", subscription_id)
        doc = await self.call(f"creating resource group {name}", lambda: resources.resource_groups.create_or_update(name, body))
        return to_wire(doc) or {}

    async def group_resources(self, subscription_id: str, name: str) -> list[dict[str, Any]]:
        """Every resource in a group (ids, types, names): what deleting the group would delete."""
        resources = self.client("resources", subscription_id)

        async def fetch() -> list[dict[str, Any]]:
            return [to_wire(r) async for r in resources.resources.list_by_resource_group(name)]

        return await self.call(f"listing the resources of group {name}", fetch)

    async def delete_group(self, subscription_id: str, name: str, **lro: Any) -> None:
        """Delete a resource group and everything in it (the caller checked what that is)."""
        resources = self.client("resources", subscription_id)
        await self._lro(f"deleting resource group {name}", lambda **kw: resources.resource_groups.begin_delete(name, **kw), **lro)
