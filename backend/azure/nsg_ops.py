"""The adapter's operations for network recoveries (fix-nsg): read an NSG and a
subnet, create or replace one security rule, delete one security rule.

Writes go through the adapter's ``_lro`` (refused under --read-only). Callers pass
``journal_token=False`` for a rule PUT: like a NIC PUT, azure-mgmt-network rebuilds
the result from the response body, which a continuation token does not keep, so a
resumed step recognises the rule by reading its NSG instead.

A mixin of ``AzureBackend``; nothing here imports the Azure SDK.
"""

from __future__ import annotations

from typing import Any

from backend.azure.operations import to_wire
from backend.azure.rescue_ops import ResourceOperations
from backend.errors import BackendError
from backend.models import ResourceId


def _rule_parts(rule_id: str) -> tuple[ResourceId, str, str]:
    """(NSG id parts, NSG name, rule name) of a security rule id."""
    head, sep, rule = rule_id.rstrip("/").rpartition("/securityRules/")
    if not sep or not rule:
        raise BackendError(f"{rule_id!r} is not a security rule id")
    nsg = ResourceId.parse(head)
    if not nsg.resource_group or not nsg.name:
        raise BackendError(f"{rule_id!r} is not a security rule id")
    return nsg, nsg.name, rule


class NsgOperations(ResourceOperations):
    """NSGs and their security rules, as fix-nsg reads and changes them."""

    async def get_nsg(self, nsg_id: str) -> dict[str, Any] | None:
        return await self._read("network", ResourceId.parse(nsg_id), "NSG", lambda c: c.network_security_groups)

    async def get_subnet(self, subnet_id: str) -> dict[str, Any] | None:
        head, sep, subnet = subnet_id.rstrip("/").rpartition("/subnets/")
        if not sep:
            raise BackendError(f"{subnet_id!r} is not a subnet id")
        vnet = ResourceId.parse(head)
        network = self.client("network", vnet.subscription_id)
        doc = await self._get_or_none(f"reading subnet {subnet}", lambda: network.subnets.get(vnet.resource_group, vnet.name, subnet))
        return to_wire(doc)

    async def put_security_rule(self, rule_id: str, body: dict[str, Any], **lro: Any) -> dict[str, Any]:
        nsg, nsg_name, rule = _rule_parts(rule_id)
        network = self.client("network", nsg.subscription_id)
        doc = await self._lro(
            f"writing security rule {rule} in NSG {nsg_name}",
            lambda **kw: network.security_rules.begin_create_or_update(nsg.resource_group, nsg_name, rule, body, **kw),
            **lro,
        )
        return to_wire(doc) or {}

    async def delete_security_rule(self, rule_id: str, **lro: Any) -> None:
        nsg, nsg_name, rule = _rule_parts(rule_id)
        network = self.client("network", nsg.subscription_id)
        await self._lro(
            f"deleting security rule {rule} from NSG {nsg_name}",
            lambda **kw: network.security_rules.begin_delete(nsg.resource_group, nsg_name, rule, **kw),
            **lro,
        )
