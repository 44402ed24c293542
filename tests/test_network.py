"""NSG evaluation: worked cases an operator would recognise, and property tests
against a small reference evaluator written the slow, obvious way."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend import mapping
from backend.emulator import nsg as emulated_nsg
from backend.models import InboundNatRule, Inventory, LoadBalancer, NetworkSecurityGroup, SecurityRule
from backend.network import DEFAULT_INBOUND_RULES, Flow, Source, default_ports, endpoints, evaluate_inbound, has_public_path, vm_flow_verdict
from tests.support import SUB, VM_IP, make_vm


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
    inv = Inventory(
        subscriptions=(),
        vms=(),
        load_balancers={lb_id.lower(): LoadBalancer(id=lb_id, name="lb1", location="westeurope", sku="Standard", inbound_nat_rules=(nat,))},
    )
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


# --- property tests: the product against the emulator's own evaluator ----------
# backend/emulator/nsg.py is written from Azure's documented rules, independently of
# backend/network.py, and reads the ARM documents themselves; here both evaluate the
# same random NSG documents (through the product's ARM mapping) and must agree.

ADDRESSES = ["52.1.2.3", "20.30.40.50", "10.1.0.4", "10.2.0.9", "192.168.1.10", "168.63.129.16", "100.64.1.1", "172.16.5.5"]
PREFIXES = [
    "*",
    "Internet",
    "VirtualNetwork",
    "AzureLoadBalancer",
    "Storage",
    "AzureCloud.westeurope",
    "10.0.0.0/8",
    "10.1.0.0/24",
    "10.1.0.4/32",
    "52.0.0.0/8",
    "52.1.2.3",
    "20.30.40.0/24",
    "0.0.0.0/0",
    "168.63.129.16/32",
]
DESTINATIONS = ["*", "VirtualNetwork", "10.1.0.4", "10.1.0.0/24", "10.9.0.0/16", "Internet", "AzureLoadBalancer", "0.0.0.0/0"]
PORT_SPECS = ["*", "22", "3389", "20-30", "3000-4000", "80", "0-65535", "22-22"]
SOURCE_PORT_SPECS = [["*"], ["*"], ["0-65535"], ["1024-65535"], ["0-1023", "1024-65535"], ["49152-65535"], ["22"], ["1024-40000", "40001-65535"]]
PROTOCOLS = ["*", "Tcp", "TCP", "tcp", "Udp", "Icmp", "Esp", "Ah"]
ASG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/asg-web"


def _arm_field(props: dict, single: str, plural: str, values: list, as_list: bool) -> None:
    if as_list or len(values) > 1:
        props[plural] = list(values)
    else:
        props[single] = values[0]


@st.composite
def arm_rule(draw, priority: int) -> dict:
    """One security rule as ARM returns it (singular or plural fields, ASGs sometimes)."""
    props = {
        "priority": priority,
        "direction": draw(st.sampled_from(["Inbound", "Inbound", "Inbound", "Outbound"])),
        "access": draw(st.sampled_from(["Allow", "Deny"])),
        "protocol": draw(st.sampled_from(PROTOCOLS)),
    }
    plural = draw(st.booleans())
    if draw(st.integers(0, 9)) == 0:
        props["sourceApplicationSecurityGroups"] = [{"id": ASG}]
    else:
        _arm_field(props, "sourceAddressPrefix", "sourceAddressPrefixes", draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3)), plural)
    if draw(st.integers(0, 9)) == 0:
        props["destinationApplicationSecurityGroups"] = [{"id": ASG}]
    else:
        _arm_field(
            props, "destinationAddressPrefix", "destinationAddressPrefixes", draw(st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=2)), plural
        )
    _arm_field(props, "sourcePortRange", "sourcePortRanges", draw(st.sampled_from(SOURCE_PORT_SPECS)), plural)
    _arm_field(props, "destinationPortRange", "destinationPortRanges", draw(st.lists(st.sampled_from(PORT_SPECS), min_size=1, max_size=3)), plural)
    return {"name": draw(st.sampled_from(["A", "B", "C", "D", "E"])) + str(priority), "properties": props}


@st.composite
def arm_nsg(draw, name: str = "n") -> dict:
    priorities = draw(st.lists(st.integers(100, 4096), max_size=8, unique=True))
    nid = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/{name}"
    props: dict = {"securityRules": [draw(arm_rule(p)) for p in priorities]}
    if draw(st.booleans()):  # ARM returns the default rules; an estate or a cache may not
        props["defaultSecurityRules"] = [dict(r, properties=dict(r["properties"])) for r in emulated_nsg.DEFAULT_RULES]
    return {"id": nid, "name": name, "location": "westeurope", "properties": props}


nsg_doc_strategy = st.one_of(st.none(), arm_nsg())
# None: somewhere on the Internet (the product's default source); else a concrete address.
source_strategy = st.one_of(st.none(), st.sampled_from(ADDRESSES))
port_strategy = st.sampled_from([22, 25, 80, 3389, 3500, 4001, 8080])


def product_verdict(subnet: dict | None, nic: dict | None, source: str | None, port: int):
    return evaluate_inbound(
        flow(source or "Internet", port),
        mapping.network_security_group(subnet) if subnet else None,
        mapping.network_security_group(nic) if nic else None,
    )


def emulator_decisions(subnet: dict | None, nic: dict | None, source: str | None, port: int):
    return emulated_nsg.evaluate(subnet, nic, emulated_nsg.Party(source), emulated_nsg.Party(VM_IP), port)


@settings(max_examples=600, deadline=None)
@given(subnet=nsg_doc_strategy, nic=nsg_doc_strategy, source=source_strategy, port=port_strategy)
def test_product_evaluator_agrees_with_the_emulators(subnet, nic, source, port):
    verdict = product_verdict(subnet, nic, source, port)
    emulated = emulator_decisions(subnet, nic, source, port)
    got = [(d.level, d.allowed, d.rule.name if d.rule else None) for d in verdict.decisions]
    assert got == [(d.level, d.allowed, d.rule) for d in emulated]
    blocking = emulated_nsg.blocking(emulated)
    assert verdict.allowed == (blocking is None)
    if blocking is not None:
        assert (verdict.blocking.level, verdict.blocking.rule.name) == (blocking.level, blocking.rule)


def test_an_ephemeral_source_port_rule_admits_any_client():
    """Clients connect from an ephemeral port (1024 and up, never a system port): a rule
    whose source ports cover 1024-65535 admits them; one that covers only Windows'
    49152-65535 cannot be counted on for a client whose OS is unknown."""
    ephemeral = nsg("nic-nsg", rule("AllowRDPFromClients", 100, source_ports=("1024-65535",)))
    assert evaluate_inbound(flow(), None, ephemeral).allowed
    split = nsg("nic-nsg", rule("AllowRDPSplit", 100, source_ports=("0-1023", "1024-65535")))
    assert evaluate_inbound(flow(), None, split).allowed
    # A known source port is checked as it is: port 80 is not in 1024-65535.
    assert not evaluate_inbound(Flow(Source.parse("Internet"), ipaddress.ip_address(VM_IP), 3389, source_port=80), None, ephemeral).allowed
    windows_only = nsg("nic-nsg", rule("AllowRDPFromWindows", 100, source_ports=("49152-65535",)))
    verdict = evaluate_inbound(flow(), None, windows_only)
    assert not verdict.allowed and verdict.blocking.rule.name == "DenyAllInBound"


rules_strategy = st.lists(
    st.builds(
        lambda name, prio, access, ports, sources, protocol, dests, sports, direction: rule(
            name, prio, access, ports, sources, protocol, dests, sports, direction
        ),
        name=st.sampled_from(["A", "B", "C", "D", "E"]),
        prio=st.integers(100, 4096),
        access=st.sampled_from(["Allow", "Deny"]),
        ports=st.lists(st.sampled_from(PORT_SPECS), min_size=1, max_size=3),
        sources=st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3),
        protocol=st.sampled_from(PROTOCOLS),
        dests=st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=2),
        sports=st.sampled_from([tuple(p) for p in SOURCE_PORT_SPECS]),
        direction=st.sampled_from(["Inbound", "Inbound", "Inbound", "Outbound"]),
    ),
    max_size=8,
    unique_by=lambda r: r.priority,
)
rule_source_strategy = st.sampled_from(["Internet", "VirtualNetwork", "AzureLoadBalancer", *ADDRESSES])


@settings(max_examples=200, deadline=None)
@given(rules=rules_strategy, source=rule_source_strategy, port=port_strategy)
def test_rule_order_in_the_document_does_not_matter(rules, source, port):
    forward = evaluate_inbound(flow(source, port), None, nsg("n", *rules))
    backward = evaluate_inbound(flow(source, port), None, nsg("n", *reversed(rules)))
    assert (forward.allowed, forward.decisions[1].rule) == (backward.allowed, backward.decisions[1].rule)


@settings(max_examples=200, deadline=None)
@given(rules=rules_strategy, source=rule_source_strategy, port=port_strategy)
def test_adding_a_deny_before_everything_blocks(rules, source, port):
    blocker = rule("Blocker", 99, "Deny", ports=("*",), sources=("*",), protocol="*")
    verdict = evaluate_inbound(flow(source, port), None, nsg("n", blocker, *rules))
    assert not verdict.allowed and verdict.blocking.rule.name == "Blocker"
