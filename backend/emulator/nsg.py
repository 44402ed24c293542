"""The emulator's own NSG evaluation for inbound TCP, read straight from the
NSG documents it stores.

This is the emulator's ground truth, written from Azure's documented rules
and on purpose independent of the product's evaluator (``backend/network.py``):
a bug there must show up as a test failure, not be acted out by the guests.
It is the slow, obvious way; the emulator asks it a few questions per VM.

Azure's rules (Microsoft Learn: "How network security groups filter network
traffic", "Network security groups: security rules", "Service tags"):

- Inbound traffic meets the subnet's NSG first, then the NIC's; both must
  allow. A level without an NSG lets everything through.
- Within one NSG, custom and default rules are taken by priority, the lowest
  number first; the first rule that matches the flow decides.
- Every NSG has the default inbound rules AllowVnetInBound (65000),
  AllowAzureLoadBalancerInBound (65001) and DenyAllInBound (65500); a document
  without ``defaultSecurityRules`` gets them.
- A rule matches a flow when its direction is Inbound, its protocol is ``*``
  or ``Tcp``, one of its destination port ranges holds the port, its source
  port ranges cover the client's port, and the source and the destination
  are each inside one of the rule's address prefixes.
- Address prefixes are ``*``, a CIDR or an address, or a service tag:
  ``Internet`` (addresses outside the virtual network that are routable on the
  Internet; not the platform's 168.63.129.16), ``VirtualNetwork`` (the virtual network's address space and its
  peers'), ``AzureLoadBalancer`` (168.63.129.16, where health probes come
  from). Other service tags (``Storage``, ``AzureCloud.westeurope``) hold Azure
  services' addresses; no client here is one of them.
- Application security groups: a source (destination) ASG matches when the
  source's (destination's) NIC is a member.

Two kinds of source: a concrete address (a VM in the same virtual network,
for Network Watcher) or ``None``, "somewhere on the Internet": the loopback
client of a demo pretends to be on the Internet, at an address the emulator
cannot know. Such a source is inside ``*``, ``Internet`` and a prefix that
holds every address, never inside a narrower CIDR. Its port is ephemeral:
every client OS picks it from 1024-65535 (RFC 6335: never a system port), so
a source port rule matches only when its ranges cover all of 1024-65535.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

# The address of Azure's platform (health probes, DHCP, DNS): the AzureLoadBalancer tag.
PLATFORM_ADDRESS = "168.63.129.16"
# Ports a client OS picks its ephemeral port from (RFC 6335: 1024 and up; Linux 32768-60999, Windows 49152-65535).
EPHEMERAL_PORTS = (1024, 65535)
# When the virtual network's address space is not known: the private ranges a VNet is made of.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")

DEFAULT_RULES = (
    {
        "name": "AllowVnetInBound",
        "properties": {
            "priority": 65000,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "*",
            "sourceAddressPrefix": "VirtualNetwork",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "VirtualNetwork",
            "destinationPortRange": "*",
        },
    },
    {
        "name": "AllowAzureLoadBalancerInBound",
        "properties": {
            "priority": 65001,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "*",
            "sourceAddressPrefix": "AzureLoadBalancer",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "*",
        },
    },
    {
        "name": "DenyAllInBound",
        "properties": {
            "priority": 65500,
            "direction": "Inbound",
            "access": "Deny",
            "protocol": "*",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "*",
        },
    },
)


@dataclass(frozen=True)
class Party:
    """One end of the flow: an address (None: somewhere on the Internet) and its NIC's ASGs (lower-case ids)."""

    address: str | None
    asgs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    level: str  # subnet / nic
    nsg_id: str | None  # None: no NSG at this level
    allowed: bool
    rule: str | None  # the name of the deciding rule

    @property
    def nsg_name(self) -> str:
        return (self.nsg_id or "").rstrip("/").rsplit("/", 1)[-1]


def _values(props: dict, single: str, plural: str) -> list:
    """A rule field that ARM spells in the singular (one value) or the plural (a list)."""
    out = list(props.get(plural) or [])
    if props.get(single) not in (None, ""):
        out.insert(0, props[single])
    return out


def _port_ranges(specs: Iterable) -> list[tuple[int, int]]:
    out = []
    for spec in specs:
        text = str(spec).strip()
        if text in ("*", "Any", "any"):
            out.append((0, 65535))
            continue
        first, _, last = text.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            continue  # not a port range: holds no port
        out.append((lo, hi))
    return out


def _holds_port(ranges: list[tuple[int, int]], port: int) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


def _covers(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    """Do the ranges together hold every port from lo to hi?"""
    need = lo
    for first, last in sorted(ranges):
        if first > need:
            break
        need = max(need, last + 1)
        if need > hi:
            return True
    return need > hi


def _inside(address: str, networks: Iterable) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in networks)


def _tag_holds(tag: str, party: Party, vnet: list, is_source: bool) -> bool:
    tag = tag.lower()
    address = party.address
    if tag == "internet":
        if address is None:
            return is_source  # the client somewhere on the Internet; a VM's own address is never there
        return address != PLATFORM_ADDRESS and not _inside(address, vnet) and ipaddress.ip_address(address).is_global
    if tag == "virtualnetwork":
        if address is None:
            return not is_source  # the destination is a VM: inside its own virtual network
        return _inside(address, vnet)
    if tag == "azureloadbalancer":
        return address == PLATFORM_ADDRESS
    return False  # another service tag: an Azure service's addresses, never our client's


def _prefix_holds(prefix: str, party: Party, vnet: list, is_source: bool) -> bool:
    text = str(prefix).strip()
    if text in ("*", "Any", "any"):
        return True
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return _tag_holds(text, party, vnet, is_source)
    if party.address is None:
        return network.prefixlen == 0  # an unknown address is only surely inside "every address"
    ip = ipaddress.ip_address(party.address)
    return ip.version == network.version and ip in network


def _side_matches(props: dict, side: str, party: Party, vnet: list) -> bool:
    is_source = side == "source"
    asgs = props.get(f"{side}ApplicationSecurityGroups") or []
    if asgs:
        return any(str(a.get("id") or "").lower() in party.asgs for a in asgs)
    prefixes = _values(props, f"{side}AddressPrefix", f"{side}AddressPrefixes")
    return any(_prefix_holds(p, party, vnet, is_source) for p in prefixes)


def rule_matches(rule: dict, source: Party, destination: Party, port: int, vnet: list) -> bool:
    props = rule.get("properties") or {}
    if str(props.get("direction") or "").lower() != "inbound":
        return False
    if str(props.get("protocol") or "").lower() not in ("*", "tcp"):
        return False
    if not _holds_port(_port_ranges(_values(props, "destinationPortRange", "destinationPortRanges")), port):
        return False
    if not _covers(_port_ranges(_values(props, "sourcePortRange", "sourcePortRanges")), *EPHEMERAL_PORTS):
        return False
    return _side_matches(props, "source", source, vnet) and _side_matches(props, "destination", destination, vnet)


def inbound_rules(nsg: dict) -> list[dict]:
    """Custom and default rules in the order Azure applies them."""
    props = nsg.get("properties") or {}
    defaults = [r for r in props.get("defaultSecurityRules") or () if str((r.get("properties") or {}).get("direction") or "").lower() == "inbound"]
    every = list(props.get("securityRules") or ()) + (defaults or list(DEFAULT_RULES))
    return sorted(every, key=lambda r: int((r.get("properties") or {}).get("priority") or 0))


def decide(nsg: dict | None, level: str, source: Party, destination: Party, port: int, vnet: list) -> Decision:
    """One NSG's answer: the first matching rule by priority decides; no NSG allows."""
    if nsg is None:
        return Decision(level, None, True, None)
    for rule in inbound_rules(nsg):
        if rule_matches(rule, source, destination, port, vnet):
            access = str((rule.get("properties") or {}).get("access") or "")
            return Decision(level, nsg.get("id"), access.lower() == "allow", rule.get("name"))
    return Decision(level, nsg.get("id"), False, None)  # cannot happen with DenyAllInBound in place


def evaluate(
    subnet_nsg: dict | None,
    nic_nsg: dict | None,
    source: Party,
    destination: Party,
    port: int,
    vnet_prefixes: Iterable[str] = PRIVATE_RANGES,
) -> tuple[Decision, Decision]:
    """The subnet's decision, then the NIC's, for an inbound TCP flow to `port`."""
    vnet = [ipaddress.ip_network(p, strict=False) for p in vnet_prefixes]
    return (
        decide(subnet_nsg, "subnet", source, destination, port, vnet),
        decide(nic_nsg, "nic", source, destination, port, vnet),
    )


def blocking(decisions: Iterable[Decision]) -> Decision | None:
    """The first level that denies (the subnet comes first), or None when the flow gets through."""
    return next((d for d in decisions if not d.allowed), None)
