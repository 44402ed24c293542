"""The adapter's operations for recoveries: reads of one VM in full, power
actions, PATCH, extension PUTs, run commands, available sizes, snapshots and
management locks.

A mixin of ``AzureBackend``: the rest of the app calls these as adapter
methods, never the SDK. Everything returns plain wire-shaped dicts (camelCase,
as ARM sends them) so the recovery journal can keep them as they are.

Long-running operations are azure-core's ``AsyncLROPoller``: this module adds a
progress callback, and hands the poller's continuation token to the caller as
soon as the operation is accepted, so a run killed mid-operation resumes
polling the same operation instead of sending it again.

With ``settings.read_only`` every write is refused here, before any request:
a second line of defence behind the UI and the CLI.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from backend.errors import BackendError
from backend.models import ResourceId, Subscription
from backend.safetext import safe_text

OnStarted = Callable[[str], Awaitable[None] | None]
OnProgress = Callable[[str, float], Awaitable[None] | None]

# Power actions: aztriage's name -> the SDK's begin_* method.
VM_ACTIONS = {
    "start": "begin_start",
    "restart": "begin_restart",
    "power_off": "begin_power_off",
    "deallocate": "begin_deallocate",
    "redeploy": "begin_redeploy",
    "reapply": "begin_reapply",
    "perform_maintenance": "begin_perform_maintenance",
}
ACTION_WORDS = {
    "start": "starting",
    "restart": "restarting",
    "power_off": "stopping",
    "deallocate": "deallocating",
    "redeploy": "redeploying",
    "reapply": "reapplying",
    "perform_maintenance": "starting maintenance of",
}

# Never kept, never shown: ARM does not return protectedSettings, and neither do we.
_SECRET_KEYS = ("protectedSettings", "protected_settings", "protectedSettingsFromKeyVault")


def to_wire(obj: Any) -> Any:
    """An SDK model (TypeSpec hybrid or older msrest) as the plain JSON dict ARM sent."""
    if obj is None:
        return None
    if hasattr(obj, "_attribute_map"):  # msrest model (azure-mgmt-resource-locks): serialize() gives the wire shape
        return obj.serialize(keep_readonly=True)
    if hasattr(obj, "as_dict"):  # hybrid model: as_dict() is the wire JSON
        return obj.as_dict()
    if isinstance(obj, dict):
        return obj
    return dict(obj)


def scrub(doc: Any) -> Any:
    """Drop protected settings anywhere in a document."""
    if isinstance(doc, dict):
        return {k: scrub(v) for k, v in doc.items() if k not in _SECRET_KEYS}
    if isinstance(doc, list):
        return [scrub(v) for v in doc]
    return doc


def _vm_parts(vm_id: str) -> tuple[str, str, str]:
    rid = ResourceId.parse(vm_id)
    if not rid.resource_group or not rid.name or rid.type.lower() != "virtualmachines":
        raise BackendError(f"{vm_id} is not a virtual machine id")
    return rid.subscription_id, rid.resource_group, rid.name


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class RecoveryOperations:
    """Mixed into AzureBackend (which provides settings, client() and call())."""

    settings: Any
    client: Callable[..., Any]
    call: Callable[..., Awaitable[Any]]
    list_subscriptions: Callable[[], Awaitable[list[Subscription]]]

    progress_interval = 0.5  # seconds between progress callbacks while an operation runs

    # --- guards -------------------------------------------------------------

    def refuse_write(self, what: str) -> None:
        if self.settings.read_only:
            raise BackendError(f"{what}: refused, aztriage runs read-only (--read-only)", code="ReadOnly")

    async def _lro(
        self,
        what: str,
        begin: Callable[..., Awaitable[Any]],
        *,
        continuation_token: str | None = None,
        on_started: OnStarted | None = None,
        on_progress: OnProgress | None = None,
    ) -> Any:
        """Send (or resume) a long-running operation and wait for its end."""
        self.refuse_write(what)

        async def start() -> Any:
            if continuation_token:
                return await begin(continuation_token=continuation_token)
            return await begin()

        poller = await self.call(what, start)
        if on_started is not None:
            await _maybe_await(on_started(poller.continuation_token()))
        started = time.monotonic()
        waiter = asyncio.ensure_future(poller.result())
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.progress_interval)
                if done:
                    break
                if on_progress is not None:
                    await _maybe_await(on_progress(poller.status(), time.monotonic() - started))
        except BaseException:
            waiter.cancel()
            raise

        async def result() -> Any:
            return await waiter

        out = await self.call(what, result)
        if on_progress is not None:
            await _maybe_await(on_progress(poller.status(), time.monotonic() - started))
        return out

    # --- reads --------------------------------------------------------------

    async def get_vm_document(self, vm_id: str) -> dict[str, Any]:
        """The VM's full ARM model with its instance view (one GET)."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self.call(f"reading VM {name}", lambda: compute.virtual_machines.get(rg, name, expand="instanceView"))
        return scrub(to_wire(doc))

    async def get_vm_user_data(self, vm_id: str) -> str | None:
        """The VM's userData (base64), which ARM returns only to GET ``$expand=userData``
        (one value per request: the instance view needs its own GET); None when it has none
        or the VM does not exist."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self._get_or_none(f"reading the userData of VM {name}", lambda: compute.virtual_machines.get(rg, name, expand="userData"))
        return ((to_wire(doc) or {}).get("properties") or {}).get("userData") or None

    async def list_extensions(self, vm_id: str) -> list[dict[str, Any]]:
        """The VM's extensions (child resources), without protected settings."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)

        async def fetch() -> list[dict[str, Any]]:
            result = await compute.virtual_machine_extensions.list(rg, name)
            return [scrub(to_wire(e)) for e in (to_wire(result) or {}).get("value") or ()]

        return await self.call(f"listing the extensions of VM {name}", fetch)

    async def _get_or_none(self, what: str, make: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await self.call(what, make)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    async def _read(self, client: str, rid: ResourceId, what: str, group: Callable[[Any], Any]) -> dict[str, Any] | None:
        """The resource `rid` of a resource group as ARM sends it, or None when it does not exist;
        `group` picks the SDK client's operations group (``lambda c: c.disks``)."""
        sdk = self.client(client, rid.subscription_id)
        return to_wire(await self._get_or_none(f"reading {what} {rid.name}", lambda: group(sdk).get(rid.resource_group, rid.name)))

    async def _create_or_update(self, client: str, rid: ResourceId, doing: str, group: Callable[[Any], Any], body: dict[str, Any], lro: dict[str, Any]) -> Any:
        """PUT the resource `rid` as a long-running operation (refused under --read-only) and
        return what ARM ends with; `doing` names it in errors ("creating disk")."""
        sdk = self.client(client, rid.subscription_id)
        return to_wire(await self._lro(f"{doing} {rid.name}", lambda **kw: group(sdk).begin_create_or_update(rid.resource_group, rid.name, body, **kw), **lro))

    async def _put(self, client: str, rid: ResourceId, doing: str, group: Callable[[Any], Any], body: dict[str, Any]) -> dict[str, Any]:
        """PUT the resource `rid` where ARM answers at once, not with a long-running operation
        (refused under --read-only); `doing` names it in errors ("creating availability set")."""
        what = f"{doing} {rid.name}"
        self.refuse_write(what)
        sdk = self.client(client, rid.subscription_id)
        return to_wire(await self.call(what, lambda: group(sdk).create_or_update(rid.resource_group, rid.name, body)))

    async def find_vm_ids(self, name: str, subscription_ids: list[str] | None = None) -> list[str]:
        """Ids of the VMs with this name (case-insensitive) in the given or visible subscriptions:
        one VM list per subscription, nothing else (a recovery needs one VM, not the inventory)."""
        if subscription_ids:
            subs = list(subscription_ids)
        else:
            subs = [s.subscription_id for s in await self.list_subscriptions() if s.state.lower() in ("enabled", "warned", "pastdue")]

        async def one(sub: str) -> list[str]:
            compute = self.client("compute", sub)

            async def fetch() -> list[str]:
                return [vm["id"] async for vm in compute.virtual_machines.list_all() if (vm.get("name") or "").lower() == name.lower()]

            return await self.call(f"listing the VMs of subscription {sub}", fetch)

        found = await asyncio.gather(*(one(s) for s in subs))
        return sorted(i for ids in found for i in ids)

    async def get_disk_document(self, disk_id: str) -> dict[str, Any] | None:
        return await self._read("compute", ResourceId.parse(disk_id), "disk", lambda c: c.disks)

    async def list_locks(self, resource_id: str) -> list[dict[str, Any]]:
        """Management locks that apply to a resource (its own and those inherited from its group and subscription)."""
        rid = ResourceId.parse(resource_id)
        locks = self.client("locks", rid.subscription_id)
        parts = resource_id.strip("/").split("/")
        # .../providers/{ns}/{type}/{name} (a top-level resource: no parent path)
        low = [p.lower() for p in parts]
        i = low.index("providers")
        namespace, rtype, name = parts[i + 1], parts[i + 2], parts[i + 3]

        async def fetch() -> list[dict[str, Any]]:
            pager = locks.management_locks.list_at_resource_level(rid.resource_group, namespace, "", rtype, name)
            return [to_wire(lock) async for lock in pager]

        return await self.call(f"reading the management locks of {name}", fetch)

    async def list_available_sizes(self, vm_id: str) -> list[dict[str, Any]]:
        """Sizes this VM can be resized to where it runs now (all of the region's when deallocated)."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)

        async def fetch() -> list[dict[str, Any]]:
            return [to_wire(s) async for s in compute.virtual_machines.list_available_sizes(rg, name)]

        return await self.call(f"listing the sizes VM {name} can take", fetch)

    async def get_vm_health(self, vm_id: str) -> dict[str, Any] | None:
        sub, _, name = _vm_parts(vm_id)
        health = self.client("health", sub)
        doc = await self._get_or_none(
            f"reading the health of VM {name}",
            lambda: health.availability_statuses.get_by_resource(vm_id, expand="recommendedactions"),
        )
        return to_wire(doc)

    async def vm_documents(self, vm_id: str, *, sizes: bool = False) -> dict[str, Any]:
        """Everything a recovery plan is built from, as wire documents: the VM's
        full model and instance view, its disks, NICs and public IPs, its
        Resource Health, the locks over it and (when asked) the sizes it can take."""
        model = await self.get_vm_document(vm_id)
        props = model.get("properties") or {}
        storage = props.get("storageProfile") or {}
        disk_ids = [((storage.get("osDisk") or {}).get("managedDisk") or {}).get("id")]
        disk_ids += [((d or {}).get("managedDisk") or {}).get("id") for d in storage.get("dataDisks") or ()]
        nic_ids = [n.get("id") for n in (props.get("networkProfile") or {}).get("networkInterfaces") or () if n.get("id")]

        async def nic_and_ips(nic_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
            rid = ResourceId.parse(nic_id)
            network = self.client("network", rid.subscription_id)
            nic = to_wire(await self._get_or_none(f"reading NIC {rid.name}", lambda: network.network_interfaces.get(rid.resource_group, rid.name)))
            pips = []
            for cfg in ((nic or {}).get("properties") or {}).get("ipConfigurations") or ():
                pip_id = (((cfg.get("properties") or {}).get("publicIPAddress")) or {}).get("id")
                if pip_id:
                    p = ResourceId.parse(pip_id)
                    pip = await self._get_or_none(
                        f"reading public IP {p.name}",
                        functools.partial(self.client("network", p.subscription_id).public_ip_addresses.get, p.resource_group, p.name),
                    )
                    if pip is not None:
                        pips.append(to_wire(pip))
            return nic, pips

        async def locks_or_error() -> tuple[list[dict[str, Any]] | None, str | None]:
            try:
                return await self.list_locks(vm_id), None
            except BackendError as exc:
                return None, str(exc)

        async def health_or_none() -> dict[str, Any] | None:
            try:
                return await self.get_vm_health(vm_id)
            except BackendError:
                return None

        async def sizes_or_error() -> tuple[list[dict[str, Any]] | None, str | None]:
            if not sizes:
                return None, None
            try:
                return await self.list_available_sizes(vm_id), None
            except BackendError as exc:
                return None, str(exc)

        disks, nics, (locks, locks_error), health, (size_list, sizes_error), (events, impacted) = await asyncio.gather(
            asyncio.gather(*(self.get_disk_document(d) for d in disk_ids if d)),
            asyncio.gather(*(nic_and_ips(n) for n in nic_ids)),
            locks_or_error(),
            health_or_none(),
            sizes_or_error(),
            self.service_issue_documents(vm_id, model.get("location") or ""),
        )
        return {
            "model": model,
            "disks": [d for d in disks if d],
            "nics": [n for n, _ in nics if n],
            "public_ips": [p for _, ps in nics for p in ps],
            "health": health,
            "locks": locks,
            "locks_error": locks_error,
            "sizes": size_list,
            "sizes_error": sizes_error,
            "events": events,
            "impacted": impacted,
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    async def service_issue_documents(self, vm_id: str, location: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
        """The active service issues of the VM's subscription that name its region, as wire
        documents, and the resources each lists as impacted (tracking id, lower -> ids). A
        plan that acts on the host or the disks warns when Azure is mitigating one. Best
        effort: what cannot be read is left out."""
        import aiohttp
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        from backend.azure.lists import INVENTORY_LISTS, ListRoute, raw_list

        sub = ResourceId.parse(vm_id).subscription_id
        region = "".join(location.split()).lower()
        failures = (HttpResponseError, ServiceRequestError, ServiceResponseError, aiohttp.ClientError, OSError, asyncio.TimeoutError)

        async def listed(route: Any) -> list[dict[str, Any]]:
            return [item async for page in raw_list(self.client(route.client, sub), sub, route) for item in page]

        try:
            docs = await listed(INVENTORY_LISTS["events"])
        except failures:
            return [], {}

        def active_here(doc: dict[str, Any]) -> bool:
            props = doc.get("properties") or {}
            if (props.get("status") or "").lower() != "active" or (props.get("eventType") or "").lower() != "serviceissue":
                return False
            regions = {"".join((r.get("impactedRegion") or "").split()).lower() for i in props.get("impact") or () for r in i.get("impactedRegions") or ()}
            return region in regions

        issues = [d for d in docs if active_here(d)]
        impacted: dict[str, list[str]] = {}
        for doc in issues:
            tracking_id = doc.get("name") or ""
            route = ListRoute("health", f"/providers/Microsoft.ResourceHealth/events/{quote(tracking_id, safe='')}/impactedResources", "2025-05-01")
            try:
                items = await listed(route)
            except failures:
                continue
            targets = [((i.get("properties") or {}).get("targetResourceId")) for i in items]
            impacted[tracking_id.lower()] = [t for t in targets if isinstance(t, str)]
        return issues, impacted

    async def get_extension(self, vm_id: str, name: str) -> dict[str, Any] | None:
        sub, rg, vm_name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self._get_or_none(
            f"reading extension {name} of VM {vm_name}",
            lambda: compute.virtual_machine_extensions.get(rg, vm_name, name, expand="instanceView"),
        )
        return scrub(to_wire(doc))

    async def get_public_ip_document(self, pip_id: str) -> dict[str, Any] | None:
        return await self._read("network", ResourceId.parse(pip_id), "public IP", lambda c: c.public_ip_addresses)

    async def get_snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        return await self._read("compute", ResourceId.parse(snapshot_id), "snapshot", lambda c: c.snapshots)

    async def list_snapshots(self, subscription_id: str) -> list[dict[str, Any]]:
        compute = self.client("compute", subscription_id)

        async def fetch() -> list[dict[str, Any]]:
            return [to_wire(snapshot) async for snapshot in compute.snapshots.list()]

        return await self.call("listing the subscription's snapshots", fetch)

    # --- writes -------------------------------------------------------------

    async def vm_action(self, vm_id: str, action: str, **lro: Any) -> None:
        """start / restart / power_off / deallocate / redeploy / reapply / perform_maintenance."""
        if action not in VM_ACTIONS:
            raise ValueError(f"unknown VM action {action!r}")
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        method = getattr(compute.virtual_machines, VM_ACTIONS[action])
        await self._lro(f"{ACTION_WORDS[action]} VM {name}", lambda **kw: method(rg, name, **kw), **lro)

    async def update_vm(self, vm_id: str, patch: dict[str, Any], **lro: Any) -> dict[str, Any]:
        """PATCH the VM (e.g. ``{"properties": {"hardwareProfile": {"vmSize": ...}}}``)."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self._lro(f"updating VM {name}", lambda **kw: compute.virtual_machines.begin_update(rg, name, patch, **kw), **lro)
        return scrub(to_wire(doc))

    async def put_extension(self, vm_id: str, name: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        """PUT a VM extension. Secrets go only in ``body['properties']['protectedSettings']``;
        what comes back never carries them."""
        sub, rg, vm_name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        doc = await self._lro(
            f"installing extension {name} on VM {vm_name}",
            lambda **kw: compute.virtual_machine_extensions.begin_create_or_update(rg, vm_name, name, body, **kw),
            **lro,
        )
        return scrub(to_wire(doc))

    async def run_command(
        self,
        vm_id: str,
        command_id: str,
        *,
        script: list[str] | None = None,
        parameters: dict[str, str] | None = None,
        **lro: Any,
    ) -> dict[str, Any]:
        """Run a command in the guest through the VM agent; returns ``{"value": [statuses]}``."""
        sub, rg, name = _vm_parts(vm_id)
        compute = self.client("compute", sub)
        body: dict[str, Any] = {"commandId": command_id}
        if script:
            body["script"] = list(script)
        if parameters:
            body["parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
        doc = await self._lro(
            f"running {command_id} on VM {name}",
            lambda **kw: compute.virtual_machines.begin_run_command(rg, name, body, **kw),
            **lro,
        )
        out = to_wire(doc) or {}
        # What the script wrote (stdout, stderr) is the guest's text: made safe here, once.
        for status in out.get("value") or ():
            if isinstance(status, dict):
                for key in ("message", "displayStatus", "code"):
                    if isinstance(status.get(key), str):
                        status[key] = safe_text(status[key])
        return out

    async def create_snapshot(self, snapshot_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        out: dict[str, Any] = await self._create_or_update("compute", ResourceId.parse(snapshot_id), "creating snapshot", lambda c: c.snapshots, body, lro)
        return out
