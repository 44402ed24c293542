"""NSG evaluation: worked cases an operator would recognise, and property tests
against a small reference evaluator written the slow, obvious way."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.models import (
    Disk,
    InboundNatRule,
    Inventory,
    LoadBalancer,
    NetworkInterface,
    NetworkSecurityGroup,
    PublicIp,
    SecurityRule,
    Vm,
)
from backend.network import (
    DEFAULT_INBOUND_RULES,
    Flow,
    Source,
    default_ports,
    endpoints,
    evaluate_inbound,
    has_public_path,
    vm_flow_verdict,
)

VM_IP = "10.1.0.4"


def rule(name, priority, access="Allow", ports=("3389",), sources=("*",), protocol="Tcp", destinations=("*",), source_ports=("*",), direction="Inbound"):
    return SecurityRule(
        name=name,
        priority=priority,
        direction=direction,
        access=access,
        protocol=protocol,
        source_prefixes=tuple(sources),
        source_ports=tuple(source_ports),
        destination_prefixes=tuple(destinations),
        destination_ports=tuple(ports),
    )


def nsg(name, *rules, defaults=True):
    nid = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/{name}"
    return NetworkSecurityGroup(id=nid, name=name, location="westeurope", rules=tuple(rules), default_rules=DEFAULT_INBOUND_RULES if defaults else ())


def flow(source="Internet", port=3389, destination=VM_IP):
    return Flow(Source.parse(source), ipaddress.ip_address(destination), port)


# --- worked cases -------------------------------------------------------------


def test_no_nsg_anywhere_allows_everything():
    verdict = evaluate_inbound(flow(), None, None)
    assert verdict.allowed
    assert verdict.evidence() == ["no subnet NSG: nothing filtered at this level", "no nic NSG: nothing filtered at this level"]


def test_nic_allow_is_not_enough_when_the_subnet_denies():
    subnet = nsg("subnet-nsg")  # only the defaults: DenyAllInBound for Internet
    nic = nsg("nic-nsg", rule("AllowRDP", 100))
    verdict = evaluate_inbound(flow(), subnet, nic)
    assert not verdict.allowed
    assert verdict.blocking.level == "subnet"
    assert verdict.blocking.rule.name == "DenyAllInBound"
    assert verdict.blocking.rule.priority == 65500
    # The NIC still says allow: the operator sees both levels.
    assert [d.allowed for d in verdict.decisions] == [False, True]


def test_both_levels_must_allow():
    subnet = nsg("subnet-nsg", rule("AllowRDP", 300))
    nic = nsg("nic-nsg", rule("AllowRDP", 100))
    assert evaluate_inbound(flow(), subnet, nic).allowed
    assert not evaluate_inbound(flow(), subnet, nsg("empty")).allowed


def test_lower_priority_number_wins():
    nic = nsg("nic-nsg", rule("DenyRDP", 200, "Deny"), rule("AllowRDP", 100))
    assert evaluate_inbound(flow(), None, nic).allowed
    nic = nsg("nic-nsg", rule("DenyRDP", 100, "Deny"), rule("AllowRDP", 200))
    verdict = evaluate_inbound(flow(), None, nic)
    assert not verdict.allowed
    assert (verdict.blocking.rule.name, verdict.blocking.rule.priority, verdict.blocking.level) == ("DenyRDP", 100, "nic")
    assert "denies by rule DenyRDP (priority 100" in verdict.evidence()[1]


def test_a_rule_for_one_cidr_does_not_admit_the_whole_internet():
    nic = nsg("nic-nsg", rule("AllowRDPFromOffice", 100, sources=("52.1.2.0/24",)))
    verdict = evaluate_inbound(flow("Internet"), None, nic)
    assert not verdict.allowed
    assert any("only from 52.1.2.0/24" in line and "--source-ip" in line for line in verdict.evidence())
    assert evaluate_inbound(flow("52.1.2.9"), None, nic).allowed
    assert not evaluate_inbound(flow("52.1.3.9"), None, nic).allowed


def test_port_ranges_lists_and_protocols():
    nic = nsg("nic-nsg", rule("Mgmt", 100, ports=("20-23", "3380-3390")), rule("Udp", 90, "Deny", ports=("*",), protocol="Udp"))
    assert evaluate_inbound(flow(port=22), None, nic).allowed
    assert evaluate_inbound(flow(port=3389), None, nic).allowed
    assert not evaluate_inbound(flow(port=3391), None, nic).allowed  # a UDP deny never applies to TCP


def test_service_tags():
    nic = nsg("nic-nsg", rule("InternetOnly", 100, sources=("Internet",)))
    assert evaluate_inbound(flow("Internet"), None, nic).allowed
    assert evaluate_inbound(flow("20.30.40.50"), None, nic).allowed
    # From inside the VNet the default AllowVnetInBound admits it instead.
    verdict = evaluate_inbound(flow("10.2.0.9"), None, nsg("empty"))
    assert verdict.allowed and verdict.decisions[1].rule.name == "AllowVnetInBound"
    # Azure's health probe address is the AzureLoadBalancer tag.
    verdict = evaluate_inbound(flow("168.63.129.16"), None, nsg("empty"))
    assert verdict.allowed and verdict.decisions[1].rule.name == "AllowAzureLoadBalancerInBound"


def test_destination_prefix_is_the_private_address():
    nic = nsg("nic-nsg", rule("ToThisVm", 100, destinations=(f"{VM_IP}/32",)), rule("ToOther", 110, "Deny", destinations=("10.1.0.99",)))
    assert evaluate_inbound(flow(), None, nic).allowed
    assert not evaluate_inbound(flow(destination="10.1.0.5"), None, nic).allowed


def test_missing_default_rules_are_supplied():
    verdict = evaluate_inbound(flow(), None, nsg("bare", defaults=False))
    assert not verdict.allowed and verdict.blocking.rule.name == "DenyAllInBound"


def test_unreadable_nsg_is_said_not_guessed():
    verdict = evaluate_inbound(flow(), None, None, nic_nsg_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/gone")
    assert any("could not be read" in line for line in verdict.evidence())


def test_bad_source_is_one_sentence():
    with pytest.raises(ValueError, match="neither an IP address nor one of Internet"):
        Source.parse("my-laptop")


# --- reachability facts -------------------------------------------------------

SUB = "/subscriptions/s/resourceGroups/rg/providers"


def make_vm(name="web1", os_type="Linux", pip=None, fqdn=None, nat_ids=(), nsg_id=None, subnet_nsg_id=None):
    nic_id = f"{SUB}/Microsoft.Network/networkInterfaces/{name}-nic"
    public = (PublicIp(id=f"{SUB}/Microsoft.Network/publicIPAddresses/{name}-pip", name=f"{name}-pip", ip_address=pip, fqdn=fqdn),) if pip or fqdn else ()
    nic = NetworkInterface(
        id=nic_id,
        name=f"{name}-nic",
        delete_option="Detach",
        nsg_id=nsg_id,
        subnet_nsg_id=subnet_nsg_id,
        private_ips=(VM_IP,),
        public_ips=public,
        ip_configuration_ids=(f"{nic_id}/ipConfigurations/ipconfig1",),
        load_balancer_inbound_nat_rule_ids=tuple(nat_ids),
    )
    return Vm(
        id=f"{SUB}/Microsoft.Compute/virtualMachines/{name}",
        name=name,
        subscription_id="s",
        resource_group="rg",
        location="westeurope",
        size="Standard_B2s",
        os_type=os_type,
        power_state="running",
        provisioning_state="Succeeded",
        os_disk=Disk(name=f"{name}-os", id=None, sku="Premium_LRS", managed=True, delete_option="Detach"),
        nics=(nic,),
    )


def test_endpoints_cover_public_ip_fqdn_nat_and_private_on_request():
    lb_id = f"{SUB}/Microsoft.Network/loadBalancers/lb1"
    nat = InboundNatRule(
        id=f"{lb_id}/inboundNatRules/ssh-web1",
        name="ssh-web1",
        load_balancer_id=lb_id,
        frontend_ip="127.0.3.1",
        frontend_fqdn=None,
        frontend_port=50022,
        backend_port=22,
        protocol="Tcp",
        backend_ip_configuration_id=f"{SUB}/Microsoft.Network/networkInterfaces/web1-nic/ipConfigurations/ipconfig1",
    )
    inv = Inventory(subscriptions=(), vms=(), load_balancers={lb_id.lower(): LoadBalancer(id=lb_id, name="lb1", location="westeurope", sku="Standard", inbound_nat_rules=(nat,))})
    vm = make_vm(pip="127.0.2.9", fqdn="web1.westeurope.cloudapp.azure.test")
    found = [(e.kind, e.host, e.port, e.guest_port, e.protocol) for e in endpoints(vm, inv, default_ports(vm))]
    assert found == [
        ("public-ip", "127.0.2.9", 22, 22, "ssh"),
        ("fqdn", "web1.westeurope.cloudapp.azure.test", 22, 22, "ssh"),
        ("lb-nat", "127.0.3.1", 50022, 22, "ssh"),
    ]
    private = [e for e in endpoints(vm, inv, (22,), private=True) if e.kind == "private"]
    assert [(e.host, e.port) for e in private] == [(VM_IP, 22)]
    # A NAT rule for another port is not an SSH path.
    assert [e.kind for e in endpoints(vm, inv, (3389,))] == ["public-ip", "fqdn"]


def test_windows_gets_rdp_and_extra_ports():
    vm = make_vm(os_type="Windows")
    assert default_ports(vm) == (3389,)
    assert default_ports(vm, (443, 3389)) == (3389, 443)


def test_no_public_path():
    vm = make_vm()
    assert not has_public_path(vm, Inventory(subscriptions=(), vms=()))
    assert endpoints(vm, None, (22,)) == []


def test_vm_verdict_reads_the_nic_and_subnet_nsgs_from_the_inventory():
    nic_nsg = nsg("nic-nsg", rule("AllowSSH", 100, ports=("22",)))
    subnet_nsg = nsg("subnet-nsg", rule("DenySSH", 4000, "Deny", ports=("22",)))
    inv = Inventory(subscriptions=(), vms=(), nsgs={nic_nsg.id.lower(): nic_nsg, subnet_nsg.id.lower(): subnet_nsg})
    vm = make_vm(pip="127.0.2.9", nsg_id=nic_nsg.id, subnet_nsg_id=subnet_nsg.id)
    verdict = vm_flow_verdict(vm, inv, 22, Source.parse(None))
    assert not verdict.allowed
    assert verdict.blocking.level == "subnet" and verdict.blocking.rule.name == "DenySSH"


# --- property tests against a reference evaluator -----------------------------

ADDRESSES = ["52.1.2.3", "20.30.40.50", "10.1.0.4", "10.2.0.9", "192.168.1.10", "168.63.129.16"]
TAG_SOURCES = ["Internet", "VirtualNetwork", "AzureLoadBalancer"]
PREFIXES = ["*", "Internet", "VirtualNetwork", "AzureLoadBalancer", "Storage", "10.0.0.0/8", "10.1.0.0/24", "10.1.0.4/32", "52.0.0.0/8", "52.1.2.3", "20.30.40.0/24", "0.0.0.0/0"]
PORT_SPECS = ["*", "22", "3389", "20-30", "3000-4000", "80", "0-65535"]
PROTOCOLS = ["*", "Tcp", "TCP", "Udp", "Icmp"]
VNET_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]


def ref_tag_of(address: str) -> str | None:
    addr = ipaddress.ip_address(address)
    if address == "168.63.129.16":
        return "AzureLoadBalancer"
    if any(addr in net for net in VNET_RANGES):
        return "VirtualNetwork"
    if addr.is_global:
        return "Internet"
    return None


def ref_in(prefix: str, who: tuple[str, str]) -> bool:
    kind, value = who
    if prefix == "*":
        return True
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        tag = value if kind == "tag" else ref_tag_of(value)
        return tag is not None and prefix.lower() == tag.lower()
    if kind == "tag":
        # An address nobody knows is only inside a prefix that holds every address.
        return network.num_addresses == 2**32
    return ipaddress.ip_address(value) in network


def ref_ports(spec: str) -> set[int]:
    if spec == "*":
        return set(range(65536))
    lo, _, hi = spec.partition("-")
    return set(range(int(lo), int(hi or lo) + 1))


def ref_rule_matches(r: SecurityRule, source: tuple[str, str], port: int) -> bool:
    if r.direction != "Inbound" or r.protocol.lower() not in ("*", "tcp"):
        return False
    if not any(port in ref_ports(p) for p in r.destination_ports):
        return False
    # An unpredictable ephemeral source port is only matched by a rule that takes every port.
    if set().union(*(ref_ports(p) for p in r.source_ports)) != set(range(65536)):
        return False
    if not any(ref_in(p, source) for p in r.source_prefixes):
        return False
    return any(ref_in(p, ("addr", VM_IP)) or p.lower() == "virtualnetwork" for p in r.destination_prefixes)


def ref_nsg(group: NetworkSecurityGroup | None, source, port) -> tuple[bool, str | None]:
    if group is None:
        return True, None
    every = list(group.rules) + list(group.default_rules or DEFAULT_INBOUND_RULES)
    for r in sorted(every, key=lambda r: r.priority):
        if ref_rule_matches(r, source, port):
            return r.access == "Allow", r.name
    return False, None


rules_strategy = st.lists(
    st.builds(
        lambda name, prio, access, ports, sources, protocol, dests, sports, direction: rule(name, prio, access, ports, sources, protocol, dests, sports, direction),
        name=st.sampled_from(["A", "B", "C", "D", "E"]),
        prio=st.integers(100, 4096),
        access=st.sampled_from(["Allow", "Deny"]),
        ports=st.lists(st.sampled_from(PORT_SPECS), min_size=1, max_size=3),
        sources=st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3),
        protocol=st.sampled_from(PROTOCOLS),
        dests=st.lists(st.sampled_from(["*", "VirtualNetwork", "10.1.0.4", "10.1.0.0/24", "10.9.0.0/16", "Internet"]), min_size=1, max_size=2),
        sports=st.sampled_from([("*",), ("*",), ("1024-65535",), ("0-65535",)]),
        direction=st.sampled_from(["Inbound", "Inbound", "Inbound", "Outbound"]),
    ),
    max_size=8,
    unique_by=lambda r: r.priority,
)
nsg_strategy = st.one_of(st.none(), rules_strategy.map(lambda rs: nsg("n", *rs)))
source_strategy = st.one_of(st.sampled_from(ADDRESSES).map(lambda a: ("addr", a)), st.sampled_from(TAG_SOURCES).map(lambda t: ("tag", t)))
port_strategy = st.sampled_from([22, 25, 80, 3389, 3500, 4001, 8080])


@settings(max_examples=400, deadline=None)
@given(subnet=nsg_strategy, nic=nsg_strategy, source=source_strategy, port=port_strategy)
def test_evaluator_agrees_with_the_reference(subnet, nic, source, port):
    verdict = evaluate_inbound(flow(source[1], port), subnet, nic)
    ref_subnet = ref_nsg(subnet, source, port)
    ref_nic = ref_nsg(nic, source, port)
    assert verdict.allowed == (ref_subnet[0] and ref_nic[0])
    got = [(d.allowed, d.rule.name if d.rule else None) for d in verdict.decisions]
    assert got == [ref_subnet, ref_nic]
    if not verdict.allowed:
        # The blocking decision is the first denial in Azure's order: subnet, then NIC.
        expected_level = "subnet" if not ref_subnet[0] else "nic"
        assert verdict.blocking.level == expected_level


@settings(max_examples=200, deadline=None)
@given(rules=rules_strategy, source=source_strategy, port=port_strategy)
def test_rule_order_in_the_document_does_not_matter(rules, source, port):
    forward = evaluate_inbound(flow(source[1], port), None, nsg("n", *rules))
    backward = evaluate_inbound(flow(source[1], port), None, nsg("n", *reversed(rules)))
    assert (forward.allowed, forward.decisions[1].rule) == (backward.allowed, backward.decisions[1].rule)


@settings(max_examples=200, deadline=None)
@given(rules=rules_strategy, source=source_strategy, port=port_strategy)
def test_adding_a_deny_before_everything_blocks(rules, source, port):
    blocker = rule("Blocker", 99, "Deny", ports=("*",), sources=("*",), protocol="*")
    verdict = evaluate_inbound(flow(source[1], port), None, nsg("n", blocker, *rules))
    assert not verdict.allowed and verdict.blocking.rule.name == "Blocker"
