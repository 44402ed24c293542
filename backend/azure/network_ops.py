"""Network reads and Network Watcher checks on the real adapter.

- ``check_connectivity``: Network Watcher's connectivity check from a VM in
  Azure (``POST .../networkWatchers/{nw}/connectivityCheck``, long-running):
  the runbook's "RDP to the VM from another VM in Azure".
- ``private_path``: the VPN gateway connections (with their
  ``connectionStatus`` from a GET of each) and Bastion hosts that serve a VM's
  virtual network, for VMs without a public endpoint.
- ``vm_runtime``: the VM agent's status and the maintenance state from the
  instance view, which the subscription-wide status list does not carry.

Functions take the ``AzureBackend``; the SDK stays inside backend/azure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from backend import mapping
from backend.azure.lists import INSTANCE_VIEW_API_VERSION, instance_view_path, raw_get
from backend.errors import BackendError
from backend.models import Maintenance, ResourceId, Vm, id_name
from backend.network import ConnectivityCheck, ConnectivityHop, ConnectivityIssue, PrivatePath, VpnConnection
from backend.safetext import safe_json, safe_line, safe_opt


def _props(doc: Any) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        return {}
    return doc.get("properties") or {}


def _lower(value: Any) -> str:
    return str(value or "").lower()


async def find_network_watcher(backend: Any, subscription_id: str, location: str) -> tuple[str, str]:
    """(resource group, name) of the subscription's Network Watcher in `location`."""

    async def fetch() -> list[Any]:
        client = backend.client("network", subscription_id)
        return [w async for w in client.network_watchers.list_all()]

    watchers = await backend.call("listing Network Watchers", fetch)
    wanted = _lower(location).replace(" ", "")
    for watcher in watchers:
        if _lower(watcher.get("location")).replace(" ", "") == wanted:
            rid = ResourceId.parse(watcher["id"])
            return rid.resource_group, watcher.get("name") or rid.name
    raise BackendError(
        f"Network Watcher is not enabled in {location} for subscription {subscription_id}; enable it to check from inside Azure", code="NetworkWatcherNotFound"
    )


def _issue(doc: Mapping[str, Any]) -> ConnectivityIssue:
    context: list[tuple[str, str]] = []
    for item in doc.get("context") or ():
        if not isinstance(item, Mapping):
            continue
        if "key" in item and "value" in item:
            context.append((safe_line(str(item["key"])), safe_line(str(item["value"]))))
        else:
            context.extend((safe_line(str(k)), safe_line(str(v))) for k, v in item.items())
    return ConnectivityIssue(
        origin=safe_line(str(doc.get("origin") or "")),
        severity=safe_line(str(doc.get("severity") or "")),
        type=safe_line(str(doc.get("type") or "Unknown")),
        context=tuple(context),
    )


def connectivity_information(doc: Mapping[str, Any], source_vm: str, destination: str, port: int) -> ConnectivityCheck:
    """ConnectivityInformation (wire JSON) -> ConnectivityCheck."""
    hops = tuple(
        ConnectivityHop(
            type=safe_line(str(h.get("type") or "")),
            address=safe_opt(h.get("address")),
            resource_id=safe_opt(h.get("resourceId")),
            issues=tuple(_issue(i) for i in h.get("issues") or ()),
        )
        for h in doc.get("hops") or ()
    )
    return ConnectivityCheck(
        source_vm=source_vm,
        destination=destination,
        port=port,
        status=safe_line(str(doc.get("connectionStatus") or "Unknown")),
        hops=hops,
        avg_latency_ms=doc.get("avgLatencyInMs"),
        probes_sent=doc.get("probesSent"),
        probes_failed=doc.get("probesFailed"),
    )


async def check_connectivity(
    backend: Any,
    source: Vm,
    port: int,
    *,
    destination: Vm | None = None,
    address: str | None = None,
) -> ConnectivityCheck:
    """Network Watcher's TCP connectivity check from `source` to a VM (by id) or an address."""
    if destination is None and not address:
        raise ValueError("give a destination VM or an address")
    rg, watcher = await find_network_watcher(backend, source.subscription_id, source.location)
    target: dict[str, Any] = {"port": int(port)}
    if destination is not None:
        target["resourceId"] = destination.id
        label = destination.name
    else:
        target["address"] = address
        label = str(address)
    parameters = {"source": {"resourceId": source.id}, "destination": target, "protocol": "Tcp", "preferredIPVersion": "IPv4"}

    async def run() -> Any:
        client = backend.client("network", source.subscription_id)
        poller = await client.network_watchers.begin_check_connectivity(rg, watcher, parameters)
        return await poller.result()

    doc = await backend.call(f"checking connectivity from {source.name} with Network Watcher", run)
    return connectivity_information(doc, source.name, label, int(port))


def _gateway_and_bastion_ids(vnet: Any) -> tuple[set[str], set[str]]:
    gateways: set[str] = set()
    bastions: set[str] = set()
    for subnet in _props(vnet).get("subnets") or ():
        name = _lower(subnet.get("name"))
        for cfg in _props(subnet).get("ipConfigurations") or ():
            cid = cfg.get("id") or ""
            low = cid.lower()
            if "/virtualnetworkgateways/" in low:
                gateways.add(cid[: low.index("/ipconfigurations/")] if "/ipconfigurations/" in low else cid)
            elif "/bastionhosts/" in low or name == "azurebastionsubnet":
                cut = low.find("/bastionhostipconfigurations/")
                bastions.add(cid[:cut] if cut >= 0 else cid)
    return gateways, bastions


def vpn_connection(doc: Mapping[str, Any]) -> VpnConnection:
    """A virtual network gateway connection (wire JSON) -> VpnConnection."""
    props = _props(doc)
    peer = (props.get("localNetworkGateway2") or props.get("virtualNetworkGateway2") or props.get("peer") or {}).get("id")
    return VpnConnection(
        id=safe_line(doc.get("id") or ""),
        name=safe_line(doc.get("name") or ""),
        status=safe_line(str(props.get("connectionStatus") or "Unknown")),
        connection_type=safe_opt(props.get("connectionType")),
        gateway_id=safe_opt((props.get("virtualNetworkGateway1") or {}).get("id")),
        peer=safe_line(id_name(peer)) or None,
    )


async def private_path(backend: Any, vm: Vm) -> PrivatePath:
    """VPN connections (status from a GET of each) and Bastion hosts serving the VM's VNet."""
    vnet_id = vm.vnet_id
    if vnet_id is None:
        return PrivatePath(None, error="the VM's subnet is not known")
    try:
        return await _private_path(backend, vnet_id)
    except BackendError as exc:
        return PrivatePath(vnet_id, error=str(exc))


async def _private_path(backend: Any, vnet_id: str) -> PrivatePath:
    rid = ResourceId.parse(vnet_id)

    async def get_vnet(sub: str, rg: str, name: str) -> Any:
        return await backend.call(f"reading virtual network {name}", lambda: backend.client("network", sub).virtual_networks.get(rg, name))

    vnet = await get_vnet(rid.subscription_id, rid.resource_group, rid.name)
    gateways, bastions = _gateway_and_bastion_ids(vnet)
    # A spoke that uses its hub's gateway: the hub's gateways serve it too.
    for peering in _props(vnet).get("virtualNetworkPeerings") or ():
        pprops = _props(peering)
        remote = (pprops.get("remoteVirtualNetwork") or {}).get("id")
        if not remote or not pprops.get("useRemoteGateways"):
            continue
        r = ResourceId.parse(remote)
        hub = await get_vnet(r.subscription_id, r.resource_group, r.name)
        more_gateways, more_bastions = _gateway_and_bastion_ids(hub)
        gateways |= more_gateways
        bastions |= more_bastions

    connections: list[VpnConnection] = []
    by_group: dict[tuple[str, str], list[str]] = {}
    for gateway in gateways:
        g = ResourceId.parse(gateway)
        by_group.setdefault((g.subscription_id, g.resource_group), []).append(gateway.lower())
    for (sub, rg), gateway_ids in sorted(by_group.items()):
        client = backend.client("network", sub)

        async def listing(client=client, rg=rg) -> list[Any]:
            return [c async for c in client.virtual_network_gateway_connections.list(rg)]

        listed = await backend.call(f"listing VPN connections in {rg}", listing)
        mine = [
            c
            for c in listed
            if _lower((_props(c).get("virtualNetworkGateway1") or {}).get("id")) in gateway_ids
            or _lower((_props(c).get("virtualNetworkGateway2") or {}).get("id")) in gateway_ids
        ]

        async def get_one(conn: Any, client=client, rg=rg) -> Any:
            name = conn.get("name") or ResourceId.parse(conn["id"]).name
            # connectionStatus is reported by a GET of the connection.
            return await backend.call(f"reading VPN connection {name}", lambda: client.virtual_network_gateway_connections.get(rg, name))

        for doc in await asyncio.gather(*(get_one(c) for c in mine)):
            connections.append(vpn_connection(doc))
    return PrivatePath(vnet_id, tuple(sorted(connections, key=lambda c: c.name)), tuple(sorted(safe_line(id_name(b)) for b in bastions)))


async def vm_runtime(backend: Any, vm: Vm) -> tuple[str, Maintenance]:
    """(VM agent status, maintenance state) from the VM's instance view."""

    async def fetch() -> Any:
        # Raw JSON, as the inventory reads instance views: the SDK's model of one cost more CPU
        # than its request, and a background probe reads thousands.
        return await raw_get(backend.raw_client(), instance_view_path(vm.subscription_id, vm.resource_group, vm.name), INSTANCE_VIEW_API_VERSION)

    view = safe_json(await backend.call(f"reading the instance view of {vm.name}", fetch))
    agent, _version = mapping.agent_status(view)
    return agent, mapping.maintenance(view)
