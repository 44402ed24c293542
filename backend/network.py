"""Pure network facts: NSG evaluation and the ways a VM's port can be reached.

NSG evaluation follows Azure's documented model for inbound traffic: the
subnet's NSG is evaluated first, then the NIC's; both must allow. Within one
NSG the rules (custom and default) are taken in priority order and the first
rule that matches decides. Inbound rules see the packet after the public IP
(or load balancer) has translated it, so the destination is the VM's private
address and the guest port.

A source is either a concrete address (``--source-ip``) or an abstract
"somewhere on the Internet" (the default). An abstract source only matches
rules whose source is ``*`` or the ``Internet`` tag: a rule that admits one
CIDR does not admit "any Internet address", which is what an operator on an
unknown network needs to hear. Application security groups and service tags
other than Internet, VirtualNetwork and AzureLoadBalancer cannot be resolved
from the inventory and never match; the verdict says so in its evidence.

Nothing here does I/O or imports Textual or the SDK.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from backend.models import Inventory, NetworkSecurityGroup, SecurityRule, Vm, id_name

INTERNET = "Internet"
VIRTUAL_NETWORK = "VirtualNetwork"
AZURE_LOAD_BALANCER = "AzureLoadBalancer"
KNOWN_TAGS = {t.lower(): t for t in (INTERNET, VIRTUAL_NETWORK, AZURE_LOAD_BALANCER)}

# The address Azure's platform (health probes, DHCP, DNS) speaks from.
AZURE_PLATFORM_ADDRESS = ipaddress.ip_address("168.63.129.16")

# Without the VNets' address spaces in the inventory, private ranges stand in
# for the VirtualNetwork tag (on-premises ranges reached over VPN are part of
# that tag in Azure too).
DEFAULT_VIRTUAL_NETWORK_PREFIXES = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
)

SSH_PORT = 22
RDP_PORT = 3389

# A client's source port is ephemeral: every OS picks it from 1024 and up (RFC 6335: never a
# system port; Linux 32768-60999, Windows 49152-65535). A rule whose source ports cover all of
# these admits a client whose port cannot be predicted; a narrower one cannot be counted on.
EPHEMERAL_PORTS = (1024, 65535)


def _default_rule(name: str, priority: int, access: str, source: str, destination: str) -> SecurityRule:
    return SecurityRule(
        name=name,
        priority=priority,
        direction="Inbound",
        access=access,
        protocol="*",
        source_prefixes=(source,),
        destination_prefixes=(destination,),
        default=True,
    )


# Azure's inbound default rules (used when an NSG document does not carry them).
DEFAULT_INBOUND_RULES = (
    _default_rule("AllowVnetInBound", 65000, "Allow", VIRTUAL_NETWORK, VIRTUAL_NETWORK),
    _default_rule("AllowAzureLoadBalancerInBound", 65001, "Allow", AZURE_LOAD_BALANCER, "*"),
    _default_rule("DenyAllInBound", 65500, "Deny", "*", "*"),
)


# --- sources -----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a connection comes from, as NSG rules see it."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    tags: frozenset[str]  # lower-case service tags the source belongs to

    @property
    def label(self) -> str:
        return str(self.address) if self.address is not None else INTERNET

    @classmethod
    def parse(cls, text: str | None, virtual_network_prefixes=DEFAULT_VIRTUAL_NETWORK_PREFIXES) -> Source:
        """'Internet' (default), 'VirtualNetwork', 'AzureLoadBalancer' or an IP address.

        Raises ValueError with one sentence for anything else."""
        value = (text or INTERNET).strip()
        tag = KNOWN_TAGS.get(value.lower())
        if tag:
            return cls(None, frozenset({tag.lower()}))
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"source {value!r} is neither an IP address nor one of Internet, VirtualNetwork, AzureLoadBalancer") from None
        return cls(address, classify_address(address, virtual_network_prefixes))


def classify_address(address, virtual_network_prefixes=DEFAULT_VIRTUAL_NETWORK_PREFIXES) -> frozenset[str]:
    """The service tags a concrete source address belongs to."""
    if address == AZURE_PLATFORM_ADDRESS:
        return frozenset({AZURE_LOAD_BALANCER.lower()})
    if any(address.version == net.version and address in net for net in virtual_network_prefixes):
        return frozenset({VIRTUAL_NETWORK.lower()})
    if address.is_global:
        return frozenset({INTERNET.lower()})
    # Loopback, link-local, documentation ranges: on no side Azure knows.
    return frozenset()


# --- compiled rules ----------------------------------------------------------


@dataclass(frozen=True)
class _Prefixes:
    any: bool
    tags: frozenset[str]
    networks: tuple[tuple[int, int, int], ...]  # (version, first, last)


@dataclass(frozen=True)
class _CompiledRule:
    rule: SecurityRule
    tcp: bool
    ports: tuple[tuple[int, int], ...] | None  # None: any
    source_ports_any: bool  # covers every ephemeral port a client may use
    sources: _Prefixes
    destinations: _Prefixes


def _compile_prefixes(prefixes: tuple[str, ...]) -> _Prefixes:
    tags: set[str] = set()
    nets: list[tuple[int, int, int]] = []
    for raw in prefixes:
        text = raw.strip()
        if text in ("*", "0.0.0.0/0", "::/0", "Any", "any"):
            return _Prefixes(True, frozenset(), ())
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            # A service tag (possibly regional, "Storage.WestEurope") or an ASG.
            tags.add(text.lower())
            continue
        nets.append((net.version, int(net.network_address), int(net.broadcast_address)))
    return _Prefixes(False, frozenset(tags), tuple(nets))


def parse_port_ranges(values: tuple[str, ...]) -> tuple[tuple[int, int], ...] | None:
    """('22', '3389-3390', '*') -> None (any) or ((22, 22), (3389, 3390)). Bad entries match nothing."""
    out: list[tuple[int, int]] = []
    for raw in values:
        text = str(raw).strip()
        if text in ("*", "0-65535", "Any", "any"):
            return None
        lo, sep, hi = text.partition("-")
        try:
            first = int(lo)
            last = int(hi) if sep else first
        except ValueError:
            continue
        if first <= last:
            out.append((first, last))
    return tuple(out)


def _covers_ephemeral(ranges: tuple[tuple[int, int], ...] | None) -> bool:
    if ranges is None:
        return True
    need, last_needed = EPHEMERAL_PORTS
    for lo, hi in sorted(ranges):
        if lo > need:
            return False
        need = max(need, hi + 1)
        if need > last_needed:
            return True
    return False


@lru_cache(maxsize=65536)
def _compile_rule(rule: SecurityRule) -> _CompiledRule:
    return _CompiledRule(
        rule=rule,
        tcp=rule.protocol.strip().lower() in ("*", "tcp", "any"),
        ports=parse_port_ranges(rule.destination_ports),
        source_ports_any=_covers_ephemeral(parse_port_ranges(rule.source_ports)),
        sources=_compile_prefixes(rule.source_prefixes),
        destinations=_compile_prefixes(rule.destination_prefixes),
    )


def _prefix_match(prefixes: _Prefixes, address, tags: frozenset[str]) -> bool:
    if prefixes.any:
        return True
    if prefixes.tags & tags:
        return True
    if address is not None:
        value = int(address)
        for version, first, last in prefixes.networks:
            if version == address.version and first <= value <= last:
                return True
    return False


def inbound_rules(nsg: NetworkSecurityGroup) -> tuple[SecurityRule, ...]:
    """Custom and default inbound rules in the order Azure applies them."""
    rules = [r for r in nsg.rules if r.direction.lower() == "inbound"]
    defaults = [r for r in nsg.default_rules if r.direction.lower() == "inbound"] or list(DEFAULT_INBOUND_RULES)
    return tuple(sorted(rules + defaults, key=lambda r: (r.priority, r.default)))


@lru_cache(maxsize=4096)
def _compiled_nsg(nsg: NetworkSecurityGroup) -> tuple[_CompiledRule, ...]:
    return tuple(_compile_rule(r) for r in inbound_rules(nsg))


# --- decisions ---------------------------------------------------------------


@dataclass(frozen=True)
class NsgDecision:
    """One NSG's answer for one flow."""

    level: str  # "subnet" or "nic"
    nsg_id: str | None  # None: no NSG at this level (everything passes)
    allowed: bool
    rule: SecurityRule | None  # the deciding rule

    @property
    def nsg_name(self) -> str:
        return id_name(self.nsg_id)

    def describe(self) -> str:
        where = f"{self.level} NSG {self.nsg_name}"
        if self.nsg_id is None:
            return f"no {self.level} NSG: nothing filtered at this level"
        if self.rule is None:
            return f"{where} could not be read: not evaluated"
        verb = "allows" if self.allowed else "denies"
        rule = self.rule
        kind = "default rule" if rule.default else "rule"
        return f"{where} {verb} by {kind} {rule.name} (priority {rule.priority}, {rule.access}: {_rule_summary(rule)})"


@dataclass(frozen=True)
class Flow:
    """An inbound TCP flow as the NSGs see it."""

    source: Source
    destination: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # the VM's private IP
    port: int
    source_port: int | None = None  # None: an ephemeral port nobody can predict

    @property
    def destination_tags(self) -> frozenset[str]:
        # The VM's own address is always part of its VirtualNetwork.
        return frozenset({VIRTUAL_NETWORK.lower()})


@dataclass(frozen=True)
class NetworkVerdict:
    """Subnet and NIC decisions for one flow; both must allow."""

    flow: Flow
    decisions: tuple[NsgDecision, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return all(d.allowed for d in self.decisions)

    @property
    def blocking(self) -> NsgDecision | None:
        """The first decision that denies (the subnet NSG is evaluated first)."""
        return next((d for d in self.decisions if not d.allowed), None)

    def evidence(self) -> list[str]:
        lines = [d.describe() for d in self.decisions]
        return lines + list(self.notes)


def _rule_summary(rule: SecurityRule) -> str:
    return f"from {','.join(rule.source_prefixes)} to {','.join(rule.destination_prefixes)} port {','.join(rule.destination_ports)} {rule.protocol}"


def rule_matches(rule: SecurityRule, flow: Flow) -> bool:
    compiled = _compile_rule(rule)
    return _matches(compiled, flow)


def _matches(compiled: _CompiledRule, flow: Flow) -> bool:
    if not compiled.tcp:
        return False
    if compiled.ports is not None and not any(lo <= flow.port <= hi for lo, hi in compiled.ports):
        return False
    if flow.source_port is None:
        if not compiled.source_ports_any:
            return False
    else:
        ranges = parse_port_ranges(compiled.rule.source_ports)
        if ranges is not None and not any(lo <= flow.source_port <= hi for lo, hi in ranges):
            return False
    if not _prefix_match(compiled.sources, flow.source.address, flow.source.tags):
        return False
    return _prefix_match(compiled.destinations, flow.destination, flow.destination_tags)


def evaluate_nsg(nsg: NetworkSecurityGroup | None, flow: Flow, level: str, nsg_id: str | None = None) -> NsgDecision:
    """The first matching inbound rule of one NSG decides; no NSG allows everything."""
    if nsg is None:
        if nsg_id:
            # The NIC names an NSG the inventory could not read: do not guess.
            return NsgDecision(level, nsg_id, True, None)
        return NsgDecision(level, None, True, None)
    for compiled in _compiled_nsg(nsg):
        if _matches(compiled, flow):
            return NsgDecision(level, nsg.id, compiled.rule.access.lower() == "allow", compiled.rule)
    # Unreachable with the default rules in place; deny is Azure's behaviour.
    return NsgDecision(level, nsg.id, False, DEFAULT_INBOUND_RULES[-1])


def evaluate_inbound(
    flow: Flow,
    subnet_nsg: NetworkSecurityGroup | None,
    nic_nsg: NetworkSecurityGroup | None,
    *,
    subnet_nsg_id: str | None = None,
    nic_nsg_id: str | None = None,
) -> NetworkVerdict:
    """Subnet NSG first, then the NIC NSG (Azure's inbound order)."""
    subnet_id = subnet_nsg.id if subnet_nsg else subnet_nsg_id
    nic_id = nic_nsg.id if nic_nsg else nic_nsg_id
    decisions = (
        evaluate_nsg(subnet_nsg, flow, "subnet", subnet_id),
        evaluate_nsg(nic_nsg, flow, "nic", nic_id),
    )
    notes: list[str] = []
    for nsg, nsg_id in ((subnet_nsg, subnet_id), (nic_nsg, nic_id)):
        if nsg is None and nsg_id:
            notes.append(f"NSG {id_name(nsg_id)} could not be read; its rules were not evaluated")
        if nsg is not None:
            for rule in inbound_rules(nsg):
                unresolved = [p for p in rule.source_prefixes if p.lower().startswith("asg:")]
                if unresolved and rule_could_apply(rule, flow):
                    notes.append(f"rule {rule.name} names application security group {unresolved[0][4:]}, which cannot be resolved here")
    if flow.source.address is None and not all(d.allowed for d in decisions):
        narrow = _narrow_allows(flow, subnet_nsg, nic_nsg)
        if narrow:
            notes.append(narrow)
    return NetworkVerdict(flow, decisions, tuple(notes))


def rule_could_apply(rule: SecurityRule, flow: Flow) -> bool:
    """Protocol and port match (ignoring addresses)."""
    compiled = _compile_rule(rule)
    return compiled.tcp and (compiled.ports is None or any(lo <= flow.port <= hi for lo, hi in compiled.ports))


def _narrow_allows(flow: Flow, *nsgs: NetworkSecurityGroup | None) -> str | None:
    """An Allow rule for this port that admits specific addresses only: worth telling."""
    for nsg in nsgs:
        if nsg is None:
            continue
        for rule in inbound_rules(nsg):
            broad = any(p.strip().lower() in ("*", "internet", "0.0.0.0/0", "any") for p in rule.source_prefixes)
            if rule.access.lower() == "allow" and not rule.default and not broad and rule_could_apply(rule, flow):
                return (
                    f"rule {rule.name} (priority {rule.priority}) allows port {flow.port} only from "
                    f"{','.join(rule.source_prefixes)}; give --source-ip to evaluate from your own address"
                )
    return None


# --- reachability facts ------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a VM's guest port."""

    vm_id: str
    vm_name: str
    kind: str  # public-ip / fqdn / lb-nat / private
    host: str  # an address or a name
    port: int  # the port a client connects to
    guest_port: int  # the port inside the VM (differs behind a NAT rule)
    via: str = ""  # public IP / load balancer NAT rule / NIC name
    nic_id: str | None = None

    @property
    def protocol(self) -> str:
        return protocol_for_port(self.guest_port)


def protocol_for_port(port: int) -> str:
    return {SSH_PORT: "ssh", RDP_PORT: "rdp"}.get(port, "tcp")


def default_ports(vm: Vm, extra_ports: tuple[int, ...] = ()) -> tuple[int, ...]:
    """22 for Linux, 3389 for Windows, plus configured extra ports."""
    base = RDP_PORT if vm.os_type.lower() == "windows" else SSH_PORT
    return tuple(dict.fromkeys((base, *extra_ports)))


def endpoints(vm: Vm, inventory: Inventory | None, ports: tuple[int, ...], *, private: bool = False) -> list[Endpoint]:
    """Public IPs, FQDNs and load-balancer NAT frontends that lead to `ports`; private IPs on request."""
    out: list[Endpoint] = []
    for nic in vm.nics:
        for port in ports:
            for pip in nic.public_ips:
                if pip.ip_address:
                    out.append(Endpoint(vm.id, vm.name, "public-ip", pip.ip_address, port, port, pip.name, nic.id))
                if pip.fqdn:
                    out.append(Endpoint(vm.id, vm.name, "fqdn", pip.fqdn, port, port, pip.name, nic.id))
    for rule, nic_id in nat_rules_for(vm, inventory):
        if rule.backend_port in ports and rule.protocol.lower() in ("tcp", "all", "*"):
            label = f"{id_name(rule.load_balancer_id)}/{rule.name}"
            if rule.frontend_ip:
                out.append(Endpoint(vm.id, vm.name, "lb-nat", rule.frontend_ip, rule.frontend_port, rule.backend_port, label, nic_id))
            if rule.frontend_fqdn:
                out.append(Endpoint(vm.id, vm.name, "fqdn", rule.frontend_fqdn, rule.frontend_port, rule.backend_port, label, nic_id))
    if private:
        for nic in vm.nics:
            for ip in nic.private_ips:
                for port in ports:
                    out.append(Endpoint(vm.id, vm.name, "private", ip, port, port, nic.name, nic.id))
    # The same host and port can come from two facts (a NAT rule also listed on the NIC).
    seen: set[tuple[str, int]] = set()
    unique = []
    for e in out:
        key = (e.host.lower(), e.port)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique


def nat_rules_for(vm: Vm, inventory: Inventory | None):
    """(InboundNatRule, NIC id) for every load-balancer NAT rule whose backend is one of the VM's NICs."""
    if inventory is None or not inventory.load_balancers:
        return []
    by_rule, by_ipconfig = _nat_rule_index(inventory.load_balancers)
    found: dict[int, tuple[Any, str]] = {}  # rule position -> (rule, NIC id), in the load balancers' order
    for nic in vm.nics:
        for rule_id in nic.load_balancer_inbound_nat_rule_ids:
            for position, rule in by_rule.get(rule_id.lower(), ()):
                found.setdefault(position, (rule, nic.id))
    for nic in vm.nics:
        for config_id in nic.ip_configuration_ids:
            for position, rule in by_ipconfig.get(config_id.lower(), ()):
                found.setdefault(position, (rule, nic.id))
    return [found[position] for position in sorted(found)]


# The index of the last load balancers seen: every VM of an inventory is looked up in the
# same ones, and scanning every NAT rule of the estate once per VM took the console's event
# loop 0.6 s after a 10,000-VM load (the background probe's plan).
_nat_index: tuple[dict[str, Any], tuple[dict[str, list[tuple[int, Any]]], dict[str, list[tuple[int, Any]]]]] | None = None


def _nat_rule_index(load_balancers: dict[str, Any]) -> tuple[dict[str, list[tuple[int, Any]]], dict[str, list[tuple[int, Any]]]]:
    """Each NAT rule (with its position among all of them) by its lower-case id and by
    its backend IP configuration's lower-case id."""
    global _nat_index
    cached = _nat_index
    if cached is not None and cached[0] is load_balancers:
        return cached[1]
    by_rule: dict[str, list[tuple[int, Any]]] = {}
    by_ipconfig: dict[str, list[tuple[int, Any]]] = {}
    position = 0
    for lb in load_balancers.values():
        for rule in lb.inbound_nat_rules:
            by_rule.setdefault(rule.id.lower(), []).append((position, rule))
            if rule.backend_ip_configuration_id:
                by_ipconfig.setdefault(rule.backend_ip_configuration_id.lower(), []).append((position, rule))
            position += 1
    _nat_index = (load_balancers, (by_rule, by_ipconfig))
    return by_rule, by_ipconfig


def has_public_path(vm: Vm, inventory: Inventory | None) -> bool:
    return bool(vm.public_ips or vm.fqdn or nat_rules_for(vm, inventory))


def vm_flow_verdict(vm: Vm, inventory: Inventory | None, port: int, source: Source, nic_id: str | None = None) -> NetworkVerdict:
    """NSG verdict for `port` on the VM's NIC (the given one, else the primary)."""
    nics = vm.nics
    nic = next((n for n in nics if nic_id and n.id.lower() == nic_id.lower()), None)
    nic = nic or next((n for n in nics if n.primary), None) or (nics[0] if nics else None)
    if nic is None:
        return NetworkVerdict(Flow(source, None, port), (), ("the VM has no network interface",))
    destination = None
    if nic.private_ips:
        try:
            destination = ipaddress.ip_address(nic.private_ips[0])
        except ValueError:
            destination = None
    flow = Flow(source, destination, port)
    lookup = inventory.nsg if inventory is not None else (lambda _id: None)
    return evaluate_inbound(
        flow,
        lookup(nic.subnet_nsg_id),
        lookup(nic.nsg_id),
        subnet_nsg_id=nic.subnet_nsg_id,
        nic_nsg_id=nic.nsg_id,
    )


# --- what Azure itself reports about paths -----------------------------------


@dataclass(frozen=True)
class ConnectivityIssue:
    origin: str  # Local / Inbound / Outbound
    severity: str  # Error / Warning
    type: str  # NetworkSecurityRule, GuestFirewall, SocketBind, Platform, DnsResolution, ...
    context: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        extra = ", ".join(f"{k} {v}" for k, v in self.context)
        return f"{self.type} ({self.origin.lower()}{': ' + extra if extra else ''})"


@dataclass(frozen=True)
class ConnectivityHop:
    type: str
    address: str | None
    resource_id: str | None
    issues: tuple[ConnectivityIssue, ...] = ()


@dataclass(frozen=True)
class ConnectivityCheck:
    """Network Watcher's connectivity check from a VM in Azure."""

    source_vm: str
    destination: str
    port: int
    status: str  # Connected / Disconnected / Degraded / Unknown
    hops: tuple[ConnectivityHop, ...] = ()
    avg_latency_ms: float | None = None
    probes_sent: int | None = None
    probes_failed: int | None = None

    @property
    def connected(self) -> bool:
        return self.status.lower() in ("connected", "reachable")

    @property
    def issues(self) -> tuple[ConnectivityIssue, ...]:
        return tuple(i for hop in self.hops for i in hop.issues)

    def describe(self) -> str:
        head = f"Network Watcher from {self.source_vm} in Azure to {self.destination}:{self.port}: {self.status}"
        if self.connected and self.avg_latency_ms is not None:
            head += f" ({self.avg_latency_ms:g} ms)"
        if self.issues:
            head += "; " + "; ".join(i.describe() for i in self.issues)
        return head


@dataclass(frozen=True)
class VpnConnection:
    id: str
    name: str
    status: str  # Connected / Connecting / NotConnected / Unknown
    connection_type: str | None = None  # IPsec / Vnet2Vnet / ExpressRoute
    gateway_id: str | None = None
    peer: str | None = None  # local network gateway or peer name

    @property
    def connected(self) -> bool:
        return self.status.lower() == "connected"


@dataclass(frozen=True)
class PrivatePath:
    """How a VM without a public endpoint can be reached: VPN connections and Bastion in its VNet."""

    vnet_id: str | None
    vpn_connections: tuple[VpnConnection, ...] = ()
    bastion_hosts: tuple[str, ...] = ()
    error: str | None = None  # why the facts could not be read

    def evidence(self) -> list[str]:
        lines = []
        vnet = id_name(self.vnet_id) or "its virtual network"
        if self.error:
            lines.append(f"the private path could not be read: {self.error}")
        for c in self.vpn_connections:
            via = f" to {c.peer}" if c.peer else ""
            lines.append(f"{c.connection_type or 'VPN'} connection {c.name}{via} is {c.status}")
        if not self.vpn_connections and not self.error:
            lines.append(f"no VPN gateway connection serves {vnet}")
        if self.bastion_hosts:
            lines.append(f"Azure Bastion {', '.join(self.bastion_hosts)} serves {vnet}: connect through Bastion")
        elif not self.error:
            lines.append(f"no Azure Bastion in {vnet}")
        return lines
