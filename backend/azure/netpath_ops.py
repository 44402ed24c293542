"""The adapter's operations for the network path recoveries: reset a site-to-site VPN
connection or its gateway (reset-vpn), and write a public IP address (upgrade-public-ip).

- ``reset_vpn_connection``: VirtualNetworkGatewayConnections_ResetConnection (POST
  ``.../connections/{name}/resetconnection``, long-running, no result).
- ``reset_vpn_gateway``: VirtualNetworkGateways_Reset (POST ``.../virtualNetworkGateways/{name}/reset``,
  long-running, the gateway as its result).
- ``put_nsg``: NetworkSecurityGroups_CreateOrUpdate (long-running), for the NSG a Standard IP needs.
- ``put_public_ip``: PublicIPAddresses_CreateOrUpdate (long-running). Callers pass
  ``journal_token=False``: like a NIC PUT, azure-mgmt-network rebuilds the result from the
  response body, which a continuation token does not keep, so a resumed step recognises its
  change by reading the IP instead.

Writes go through the adapter's ``_lro`` (refused under --read-only). A mixin of
``AzureBackend``; nothing here imports the Azure SDK.
"""

from __future__ import annotations

from typing import Any

from backend.azure.nsg_ops import NsgOperations
from backend.azure.operations import to_wire
from backend.errors import BackendError
from backend.models import ResourceId


def _parts(resource_id: str, kind: str, what: str) -> ResourceId:
    rid = ResourceId.parse(resource_id)
    if not rid.resource_group or not rid.name or f"/{kind.lower()}/" not in resource_id.lower():
        raise BackendError(f"{resource_id!r} is not a {what} id")
    return rid


class NetPathOperations(NsgOperations):
    """VPN connections and gateways, and public IP addresses, as reset-vpn and upgrade-public-ip change them."""

    async def get_vpn_connection(self, connection_id: str) -> dict[str, Any] | None:
        return await self._read(
            "network", _parts(connection_id, "connections", "VPN connection"), "VPN connection", lambda c: c.virtual_network_gateway_connections
        )

    async def get_vpn_gateway(self, gateway_id: str) -> dict[str, Any] | None:
        return await self._read(
            "network", _parts(gateway_id, "virtualNetworkGateways", "virtual network gateway"), "virtual network gateway", lambda c: c.virtual_network_gateways
        )

    async def get_local_network_gateway(self, gateway_id: str) -> dict[str, Any] | None:
        return await self._read(
            "network", _parts(gateway_id, "localNetworkGateways", "local network gateway"), "local network gateway", lambda c: c.local_network_gateways
        )

    async def reset_vpn_connection(self, connection_id: str, **lro: Any) -> None:
        rid = _parts(connection_id, "connections", "VPN connection")
        network = self.client("network", rid.subscription_id)
        await self._lro(
            f"resetting VPN connection {rid.name}",
            lambda **kw: network.virtual_network_gateway_connections.begin_reset_connection(rid.resource_group, rid.name, **kw),
            **lro,
        )

    async def reset_vpn_gateway(self, gateway_id: str, **lro: Any) -> dict[str, Any]:
        rid = _parts(gateway_id, "virtualNetworkGateways", "virtual network gateway")
        network = self.client("network", rid.subscription_id)
        doc = await self._lro(
            f"resetting virtual network gateway {rid.name}",
            lambda **kw: network.virtual_network_gateways.begin_reset(rid.resource_group, rid.name, **kw),
            **lro,
        )
        return to_wire(doc) or {}

    async def put_public_ip(self, pip_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        return (
            await self._create_or_update(
                "network", _parts(pip_id, "publicIPAddresses", "public IP address"), "updating public IP address", lambda c: c.public_ip_addresses, body, lro
            )
            or {}
        )

    async def put_nsg(self, nsg_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        return (
            await self._create_or_update(
                "network", _parts(nsg_id, "networkSecurityGroups", "network security group"), "writing NSG", lambda c: c.network_security_groups, body, lro
            )
            or {}
        )
