"""The built-in estates of the ARM emulator: shapes, references, stories, errors, scale."""

from __future__ import annotations

import copy
import gzip
import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from backend.emulator.estates import EstateError, load_estate, parse_resource_id, validate_estate

NOW = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
VM_TYPE = "Microsoft.Compute/virtualMachines"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
TEN = ipaddress.ip_network("10.0.0.0/8")


@pytest.fixture(scope="module")
def demo() -> dict:
    return load_estate("demo", now=NOW)


@pytest.fixture(scope="module")
def scale() -> dict:
    return load_estate("scale:600", subscriptions=5, seed=7, now=NOW)


# ----------------------------------------------------------------- helpers


def by_type(estate: dict, rtype: str) -> list[dict]:
    return [r for r in estate["resources"] if r["type"].lower() == rtype.lower()]


def index(estate: dict) -> dict[str, dict]:
    return {r["id"].lower(): r for r in estate["resources"]}


def vms(estate: dict) -> dict[str, dict]:
    return {v["name"]: v for v in by_type(estate, VM_TYPE)}


def health(estate: dict) -> dict[str, dict]:
    """vm id (lower) -> availability status properties."""
    suffix = "/providers/microsoft.resourcehealth/availabilitystatuses/current"
    return {s["id"].lower()[: -len(suffix)]: s["properties"] for s in estate["availabilityStatuses"]}


def guest(estate: dict, vm: dict) -> dict:
    return estate["guest"][vm["id"]]


def nic_of(estate: dict, vm: dict) -> dict:
    return index(estate)[vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower()]


def ipconfig(nic: dict) -> dict:
    return nic["properties"]["ipConfigurations"][0]["properties"]


def power(vm: dict) -> str:
    for s in vm["properties"].get("instanceView", {}).get("statuses", []):
        if s["code"].startswith("PowerState/"):
            return s["code"].split("/", 1)[1]
    return "running"  # the emulator derives a running view where none is given


def sub_resources(node) -> Iterator[dict]:
    """Every object below `node` with an id and properties (subnets, ip configurations, LB parts, rules), depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("id"), str) and "properties" in node:
            yield node
        for v in node.values():
            yield from sub_resources(v)
    elif isinstance(node, list):
        for v in node:
            yield from sub_resources(v)


def child_ids(estate: dict) -> set[str]:
    """Ids of sub-resources (subnets, ip configurations, LB parts, rules) in lower case."""
    return {node["id"].lower() for r in estate["resources"] for node in sub_resources(r.get("properties", {}))}


def rule_matches_port(props: dict, port: int) -> bool:
    ranges = props.get("destinationPortRanges") or [props.get("destinationPortRange", "*")]
    for r in ranges:
        if r == "*":
            return True
        lo, _, hi = r.partition("-")
        if int(lo) <= port <= int(hi or lo):
            return True
    return False


def rule_matches_source(props: dict, source: str) -> bool:
    prefixes = props.get("sourceAddressPrefixes") or [props.get("sourceAddressPrefix", "*")]
    for p in prefixes:
        if p in ("*", "Internet"):
            return True
        if source != "internet" and "/" in p:
            continue
    return False


def nsg_verdict(nsg: dict, port: int, source: str = "internet") -> dict:
    """The winning inbound rule (custom or default) for TCP to ``port`` from the Internet."""
    rules = nsg["properties"]["securityRules"] + nsg["properties"]["defaultSecurityRules"]
    rules = [r for r in rules if r["properties"]["direction"] == "Inbound"]
    for r in sorted(rules, key=lambda r: r["properties"]["priority"]):
        p = r["properties"]
        if p["protocol"] not in ("*", "Tcp"):
            continue
        if rule_matches_port(p, port) and rule_matches_source(p, source):
            return r
    raise AssertionError("no default rule matched")


def all_timestamps(node, out=None):
    out = [] if out is None else out
    if isinstance(node, dict):
        for v in node.values():
            all_timestamps(v, out)
    elif isinstance(node, list):
        for v in node:
            all_timestamps(v, out)
    elif isinstance(node, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", node):
        out.append(datetime.fromisoformat(node.replace("Z", "+00:00")))
    return out


def check_references(estate: dict) -> None:
    """Every id one document names resolves to a document of the estate (case-insensitively)."""
    idx = index(estate)
    kids = child_ids(estate)
    known = set(idx) | kids

    def resolves(ref: str, what: str):
        assert ref.lower() in known, f"{what} -> {ref} does not resolve"

    for vm in by_type(estate, VM_TYPE):
        p = vm["properties"]
        vid = vm["id"]
        for n in p["networkProfile"]["networkInterfaces"]:
            resolves(n["id"], f"{vid} NIC")
            assert idx[n["id"].lower()]["properties"]["virtualMachine"]["id"] == vid
        os_disk = p["storageProfile"]["osDisk"]
        if "managedDisk" in os_disk and "diffDiskSettings" not in os_disk:
            resolves(os_disk["managedDisk"]["id"], f"{vid} OS disk")
            assert idx[os_disk["managedDisk"]["id"].lower()]["managedBy"] == vid
        for d in p["storageProfile"]["dataDisks"]:
            if "managedDisk" in d:
                resolves(d["managedDisk"]["id"], f"{vid} data disk")
                assert idx[d["managedDisk"]["id"].lower()]["managedBy"] == vid
        if "availabilitySet" in p:
            resolves(p["availabilitySet"]["id"], f"{vid} availability set")
            members = {m["id"].lower() for m in idx[p["availabilitySet"]["id"].lower()]["properties"]["virtualMachines"]}
            assert vid.lower() in members
        if "virtualMachineScaleSet" in p:
            resolves(p["virtualMachineScaleSet"]["id"], f"{vid} scale set")
        assert vid in estate["guest"], f"{vid} has no guest facts"
    for nic in by_type(estate, "Microsoft.Network/networkInterfaces"):
        p = nic["properties"]
        resolves(p["virtualMachine"]["id"], f"{nic['id']} VM")
        if "networkSecurityGroup" in p:
            resolves(p["networkSecurityGroup"]["id"], f"{nic['id']} NSG")
            nsg = idx[p["networkSecurityGroup"]["id"].lower()]
            assert {"id": nic["id"]} in nsg["properties"]["networkInterfaces"]
        for cfg in p["ipConfigurations"]:
            cp = cfg["properties"]
            resolves(cp["subnet"]["id"], f"{cfg['id']} subnet")
            if "publicIPAddress" in cp:
                resolves(cp["publicIPAddress"]["id"], f"{cfg['id']} public IP")
                pip = idx[cp["publicIPAddress"]["id"].lower()]
                assert pip["properties"]["ipConfiguration"]["id"] == cfg["id"]
            for pool in cp.get("loadBalancerBackendAddressPools", []):
                resolves(pool["id"], f"{cfg['id']} LB pool")
            for rule in cp.get("loadBalancerInboundNatRules", []):
                resolves(rule["id"], f"{cfg['id']} NAT rule")
    for lb in by_type(estate, "Microsoft.Network/loadBalancers"):
        p = lb["properties"]
        for fe in p["frontendIPConfigurations"]:
            resolves(fe["properties"]["publicIPAddress"]["id"], f"{lb['id']} frontend")
        for nat in p["inboundNatRules"]:
            resolves(nat["properties"]["backendIPConfiguration"]["id"], f"{nat['id']} backend")
            resolves(nat["properties"]["frontendIPConfiguration"]["id"], f"{nat['id']} frontend")
        for pool in p["backendAddressPools"]:
            for cfg in pool["properties"]["backendIPConfigurations"]:
                resolves(cfg["id"], f"{pool['id']} member")
    for pip in by_type(estate, "Microsoft.Network/publicIPAddresses"):
        if "ipConfiguration" in pip["properties"]:
            resolves(pip["properties"]["ipConfiguration"]["id"], f"{pip['id']} ipConfiguration")
    for vnet in by_type(estate, "Microsoft.Network/virtualNetworks"):
        for sn in vnet["properties"]["subnets"]:
            if "networkSecurityGroup" in sn["properties"]:
                resolves(sn["properties"]["networkSecurityGroup"]["id"], f"{sn['id']} NSG")
            for cfg in sn["properties"]["ipConfigurations"]:
                resolves(cfg["id"], f"{sn['id']} ipConfiguration")
    for nsg in by_type(estate, "Microsoft.Network/networkSecurityGroups"):
        for ref in nsg["properties"]["networkInterfaces"] + nsg["properties"]["subnets"]:
            resolves(ref["id"], f"{nsg['id']} back reference")
    for aset in by_type(estate, "Microsoft.Compute/availabilitySets"):
        for m in aset["properties"]["virtualMachines"]:
            resolves(m["id"], f"{aset['id']} member")
    for disk in by_type(estate, "Microsoft.Compute/disks"):
        if "managedBy" in disk:
            resolves(disk["managedBy"], f"{disk['id']} managedBy")
    for gw in by_type(estate, "Microsoft.Network/virtualNetworkGateways"):
        for cfg in gw["properties"]["ipConfigurations"]:
            resolves(cfg["properties"]["subnet"]["id"], f"{gw['id']} subnet")
            resolves(cfg["properties"]["publicIPAddress"]["id"], f"{gw['id']} public IP")
    for cn in by_type(estate, "Microsoft.Network/connections"):
        resolves(cn["properties"]["virtualNetworkGateway1"]["id"], f"{cn['id']} gateway")
        resolves(cn["properties"]["localNetworkGateway2"]["id"], f"{cn['id']} local gateway")
    hv = health(estate)
    for target in hv:
        assert target in idx, f"health status for unknown {target}"
    for vm in by_type(estate, VM_TYPE):
        assert vm["id"].lower() in hv, f"{vm['id']} has no availability status"


def check_ids(estate: dict) -> None:
    subs = {s["subscriptionId"].lower() for s in estate["subscriptions"]}
    seen = set()
    for r in estate["resources"]:
        parsed = parse_resource_id(r["id"])
        assert parsed, r["id"]
        assert parsed[0].lower() in subs
        assert parsed[3] == r["name"]
        assert parsed[2].lower() == r["type"].lower()
        assert r["id"].lower() not in seen, f"duplicate id {r['id']}"
        seen.add(r["id"].lower())
    kids = Counter(
        node["id"].lower()
        for r in estate["resources"]
        for part in (r.get("properties", {}), r.get("resources", []))
        for node in sub_resources(part)
        if "name" in node
    )
    dupes = [k for k, n in kids.items() if n > 1]
    assert not dupes, dupes[:5]
    ids = [s["id"].lower() for s in estate["availabilityStatuses"]] + [e["id"].lower() for e in estate["events"]]
    assert len(ids) == len(set(ids))
    for e in estate["events"]:
        assert e["id"].split("/")[2].lower() in subs


def check_addresses(estate: dict) -> None:
    public = []
    for pip in by_type(estate, "Microsoft.Network/publicIPAddresses"):
        addr = pip["properties"].get("ipAddress")
        if addr:
            assert ipaddress.ip_address(addr) in LOOPBACK, addr
            public.append(addr)
        dns = pip["properties"].get("dnsSettings")
        if dns:
            assert dns["fqdn"] == f"{dns['domainNameLabel']}.{pip['location']}.cloudapp.azure.test"
    assert len(public) == len(set(public)), "public IPs must be distinct"
    for g in estate["guest"].values():
        if "previous_public_ip" in g:
            assert ipaddress.ip_address(g["previous_public_ip"]) in LOOPBACK
            assert g["previous_public_ip"] not in public
    private = Counter()
    for nic in by_type(estate, "Microsoft.Network/networkInterfaces"):
        for cfg in nic["properties"]["ipConfigurations"]:
            ip = cfg["properties"]["privateIPAddress"]
            assert ipaddress.ip_address(ip) in TEN
            private[(cfg["properties"]["subnet"]["id"].rsplit("/subnets/", 1)[0].lower(), ip)] += 1
    assert all(n == 1 for n in private.values())
    for vnet in by_type(estate, "Microsoft.Network/virtualNetworks"):
        space = [ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]
        for sn in vnet["properties"]["subnets"]:
            net = ipaddress.ip_network(sn["properties"]["addressPrefix"])
            assert any(net.subnet_of(s) for s in space)


# ----------------------------------------------------------- determinism


def test_demo_is_deterministic_for_a_fixed_now():
    a = load_estate("demo", now=NOW)
    b = load_estate("demo", now=NOW)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_scale_is_deterministic_for_seed_and_now():
    a = load_estate("scale:250", subscriptions=4, seed=3, now=NOW)
    b = load_estate("scale:250", subscriptions=4, seed=3, now=NOW)
    c = load_estate("scale:250", subscriptions=4, seed=4, now=NOW)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)


def test_every_call_returns_fresh_documents():
    a = load_estate("demo", now=NOW)
    a["resources"][0]["properties"]["mutated"] = True
    a["guest"].clear()
    b = load_estate("demo", now=NOW)
    assert "mutated" not in b["resources"][0]["properties"]
    assert b["guest"]


@pytest.mark.parametrize("spec", ["demo", "scale:200"])
def test_now_anchors_every_timestamp(spec):
    later = datetime(2031, 6, 1, 8, 30, tzinfo=UTC)
    est = load_estate(spec, now=later, subscriptions=2)
    stamps = all_timestamps(est)
    assert len(stamps) > 100
    assert min(stamps) > later - timedelta(days=6 * 365)
    assert max(stamps) < later + timedelta(days=40)
    assert max(stamps) > later  # maintenance windows lie ahead


def test_naive_now_is_taken_as_utc():
    a = load_estate("demo", now=NOW.replace(tzinfo=None))
    assert json.dumps(a, sort_keys=True) == json.dumps(load_estate("demo", now=NOW), sort_keys=True)


def test_default_now_is_the_current_time():
    est = load_estate("demo")
    stamps = all_timestamps(est)
    assert max(stamps) > datetime.now(UTC)


# ------------------------------------------------------------ well-formed


@pytest.mark.parametrize("fixture", ["demo", "scale"])
def test_ids_are_well_formed_and_unique(fixture, request):
    est = request.getfixturevalue(fixture)
    validate_estate(est, fixture)
    check_ids(est)


@pytest.mark.parametrize("fixture", ["demo", "scale"])
def test_every_reference_resolves(fixture, request):
    check_references(request.getfixturevalue(fixture))


@pytest.mark.parametrize("fixture", ["demo", "scale"])
def test_addresses_are_loopback_public_and_private_ten(fixture, request):
    check_addresses(request.getfixturevalue(fixture))


@pytest.mark.parametrize("fixture", ["demo", "scale"])
def test_nsgs_carry_the_six_azure_default_rules(fixture, request):
    expected = [
        ("AllowVnetInBound", 65000, "Inbound", "Allow"),
        ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow"),
        ("DenyAllInBound", 65500, "Inbound", "Deny"),
        ("AllowVnetOutBound", 65000, "Outbound", "Allow"),
        ("AllowInternetOutBound", 65001, "Outbound", "Allow"),
        ("DenyAllOutBound", 65500, "Outbound", "Deny"),
    ]
    nsgs = by_type(request.getfixturevalue(fixture), "Microsoft.Network/networkSecurityGroups")
    assert nsgs
    for nsg in nsgs:
        got = [
            (r["name"], r["properties"]["priority"], r["properties"]["direction"], r["properties"]["access"]) for r in nsg["properties"]["defaultSecurityRules"]
        ]
        assert got == expected
        for r in nsg["properties"]["securityRules"]:
            assert 100 <= r["properties"]["priority"] <= 4096


def test_demo_round_trips_through_a_json_file(demo, tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(demo))
    assert load_estate(str(path)) == demo
    gz = tmp_path / "demo.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(demo).encode()))
    assert load_estate(str(gz)) == demo


def test_documents_have_arm_shapes(demo):
    vm = vms(demo)["web-prod-01"]
    assert set(vm) >= {"id", "name", "type", "location", "tags", "properties"}
    p = vm["properties"]
    assert {"vmId", "hardwareProfile", "storageProfile", "osProfile", "networkProfile", "diagnosticsProfile", "provisioningState", "timeCreated"} <= set(p)
    iv = p["instanceView"]
    assert [s["code"] for s in iv["statuses"]] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert iv["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"
    disk = by_type(demo, "Microsoft.Compute/disks")[0]
    assert {"sku", "managedBy", "properties"} <= set(disk)
    assert {"diskSizeGB", "diskState", "creationData", "provisioningState"} <= set(disk["properties"])
    status = demo["availabilityStatuses"][0]
    assert status["name"] == "current" and status["type"] == "Microsoft.ResourceHealth/AvailabilityStatuses"
    event = demo["events"][0]
    assert event["type"] == "/providers/Microsoft.ResourceHealth/events"
    assert {"eventType", "status", "title", "impact", "impactStartTime"} <= set(event["properties"])


# ---------------------------------------------------------------- demo stories


def test_demo_subscriptions_regions_and_size(demo):
    names = sorted(s["displayName"] for s in demo["subscriptions"])
    assert names == ["Contoso Dev/Test", "Contoso Production", "Contoso Shared Services"]
    assert all(s["state"] == "Enabled" for s in demo["subscriptions"])
    v = by_type(demo, VM_TYPE)
    assert 25 <= len(v) <= 32
    assert {x["location"] for x in v} == {"westeurope", "northeurope", "eastus"}
    assert len({x["name"] for x in v}) == len(v)
    for sub in demo["subscriptions"]:
        assert any(x["id"].startswith(f"/subscriptions/{sub['subscriptionId']}/") for x in v)
    assert {g["name"] for g in demo["resourceGroups"]} >= {"rg-web-prod", "rg-sql-prod"}


def test_demo_service_healing(demo):
    hv = health(demo)
    healed = [v for v in by_type(demo, VM_TYPE) if hv[v["id"].lower()]["availabilityState"] == "Available" and "recentlyResolved" in hv[v["id"].lower()]]
    assert [v["name"] for v in healed] == ["web-prod-02"]
    rr = hv[healed[0]["id"].lower()]["recentlyResolved"]
    assert "service healing" in rr["unavailableSummary"]
    assert rr["unavailableOccuredTime"] < rr["resolvedTime"] < NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    unplanned = [e for e in demo["events"] if e["properties"].get("reason") == "Unplanned"]
    assert len(unplanned) == 1 and unplanned[0]["properties"]["status"] == "Resolved"
    assert unplanned[0]["properties"]["impactStartTime"] == rr["unavailableOccuredTime"]


def test_demo_unavailable_and_degraded(demo):
    hv = health(demo)
    by_state = {}
    for v in by_type(demo, VM_TYPE):
        h = hv[v["id"].lower()]
        by_state.setdefault((h["availabilityState"], h.get("reasonType")), []).append(v["name"])
    assert by_state[("Unavailable", "Unplanned")] == ["erp-prod-eus-01"]
    assert by_state[("Degraded", "Unplanned")] == ["sql-prod-02"]
    erp = hv[vms(demo)["erp-prod-eus-01"]["id"].lower()]
    assert len(erp["recommendedActions"]) >= 2
    assert erp["occuredTime"] < NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_demo_planned_maintenance_with_self_service_window(demo):
    now = NOW.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    pending = {}
    for v in by_type(demo, VM_TYPE):
        m = v["properties"].get("instanceView", {}).get("maintenanceRedeployStatus")
        if m:
            assert m["preMaintenanceWindowStartTime"] < m["preMaintenanceWindowEndTime"]
            assert m["preMaintenanceWindowEndTime"] <= m["maintenanceWindowStartTime"] < m["maintenanceWindowEndTime"]
            # Azure's flag says whether the self-service window holds the estate's now.
            inside = m["preMaintenanceWindowStartTime"] <= now <= m["preMaintenanceWindowEndTime"]
            assert m["isCustomerInitiatedMaintenanceAllowed"] is inside
            pending[v["name"]] = "open" if inside else ("later" if now < m["preMaintenanceWindowStartTime"] else "closed")
    # One VM the operator can start it on now, one whose window opens later.
    assert pending == {"app-prod-ne-01": "open", "app-prod-ne-02": "later"}
    planned = [e for e in demo["events"] if e["properties"]["eventType"] == "PlannedMaintenance"]
    assert len(planned) == 1 and planned[0]["properties"]["status"] == "Active"
    regions = [r["impactedRegion"] for i in planned[0]["properties"]["impact"] for r in i["impactedRegions"]]
    assert regions == ["North Europe"]


def test_demo_service_issues_and_advisory(demo):
    ev = [e["properties"] for e in demo["events"]]
    active = [e for e in ev if e["eventType"] == "ServiceIssue" and e["status"] == "Active"]
    assert active
    for e in active:
        regions = [r for i in e["impact"] for r in i["impactedRegions"]]
        assert {r["impactedRegion"] for r in regions} == {"East US"}
        assert "Virtual Machines" in [i["impactedService"] for i in e["impact"]]
        assert all(len(r["updates"]) >= 2 for r in regions)
        assert "impactMitigationTime" not in e
    # the eastus event reaches every subscription with VMs in eastus
    eus_subs = {v["id"].split("/")[2] for v in by_type(demo, VM_TYPE) if v["location"] == "eastus"}
    active_subs = {e["id"].split("/")[2] for e in demo["events"] if e["properties"]["eventType"] == "ServiceIssue" and e["properties"]["status"] == "Active"}
    assert eus_subs <= active_subs
    resolved = [e for e in ev if e["eventType"] == "ServiceIssue" and e["status"] == "Resolved" and e["eventSource"] == "ServiceHealth"]
    assert resolved and all("East US" not in {r["impactedRegion"] for i in e["impact"] for r in i["impactedRegions"]} for e in resolved)
    assert any(e["eventType"] == "HealthAdvisory" for e in ev)


def test_demo_exactly_one_windows_vm_has_a_winning_deny_rdp_rule(demo):
    idx = index(demo)
    blocked = []
    for v in by_type(demo, VM_TYPE):
        nic = nic_of(demo, v)
        nsg_ref = nic["properties"].get("networkSecurityGroup")
        if not nsg_ref:
            continue
        nsg = idx[nsg_ref["id"].lower()]
        win = nsg_verdict(nsg, 3389)
        if win["properties"]["access"] == "Deny" and win["name"] in {r["name"] for r in nsg["properties"]["securityRules"]}:
            allows = [r for r in nsg["properties"]["securityRules"] if r["properties"]["access"] == "Allow" and rule_matches_port(r["properties"], 3389)]
            assert allows and all(a["properties"]["priority"] > win["properties"]["priority"] for a in allows)
            blocked.append(v)
    assert [v["name"] for v in blocked] == ["jump-prod-01"]
    assert blocked[0]["properties"]["storageProfile"]["osDisk"]["osType"] == "Windows"


def test_demo_subnet_nsg_denies_ssh_while_nic_nsg_allows(demo):
    idx = index(demo)
    subnets = {sn["id"].lower(): sn for vn in by_type(demo, "Microsoft.Network/virtualNetworks") for sn in vn["properties"]["subnets"]}
    found = []
    for v in by_type(demo, VM_TYPE):
        nic = nic_of(demo, v)
        sn = subnets[ipconfig(nic)["subnet"]["id"].lower()]
        if "networkSecurityGroup" not in sn["properties"] or "networkSecurityGroup" not in nic["properties"]:
            continue
        subnet_nsg = idx[sn["properties"]["networkSecurityGroup"]["id"].lower()]
        nic_nsg = idx[nic["properties"]["networkSecurityGroup"]["id"].lower()]
        if nsg_verdict(subnet_nsg, 22)["properties"]["access"] == "Deny" and nsg_verdict(nic_nsg, 22)["properties"]["access"] == "Allow":
            found.append(v["name"])
    assert found == ["tools-lnx-shared-01"]
    assert vms(demo)["tools-lnx-shared-01"]["properties"]["storageProfile"]["osDisk"]["osType"] == "Linux"


def test_demo_public_ip_changed(demo):
    changed = [v for v in by_type(demo, VM_TYPE) if "previous_public_ip" in guest(demo, v)]
    assert [v["name"] for v in changed] == ["rdgw-shared-01"]
    pip = index(demo)[ipconfig(nic_of(demo, changed[0]))["publicIPAddress"]["id"].lower()]
    assert pip["properties"]["ipAddress"] != guest(demo, changed[0])["previous_public_ip"]
    assert pip["properties"]["publicIPAllocationMethod"] == "Dynamic"


def test_demo_guest_firewall_drops_rdp_while_nsg_allows(demo):
    idx = index(demo)
    silent = [v for v in by_type(demo, VM_TYPE) if guest(demo, v)["boot"] == "ok" and "silent" in guest(demo, v)["ports"].values()]
    assert [v["name"] for v in silent] == ["files-shared-01"]
    nsg = idx[nic_of(demo, silent[0])["properties"]["networkSecurityGroup"]["id"].lower()]
    assert nsg_verdict(nsg, 3389)["properties"]["access"] == "Allow"
    assert guest(demo, silent[0])["ports"] == {"3389": "silent"}


def test_demo_vm_agent_not_ready(demo):
    not_ready = [
        v
        for v in by_type(demo, VM_TYPE)
        if v["properties"].get("instanceView", {}).get("vmAgent", {}).get("statuses", [{}])[0].get("displayStatus") == "Not Ready"
    ]
    assert [v["name"] for v in not_ready] == ["mon-shared-eus-01"]
    assert guest(demo, not_ready[0])["agent"] == "not-ready"
    assert "WireServer" in guest(demo, not_ready[0])["serial_log"]
    assert sum(1 for g in demo["guest"].values() if g.get("agent") == "not-ready") == 1


def test_demo_placement_shapes(demo):
    v = by_type(demo, VM_TYPE)
    zonal = [x for x in v if x.get("zones")]
    assert len(zonal) >= 3 and {z for x in zonal for z in x["zones"]} >= {"1", "2", "3"}
    single = [x for x in v if not x.get("zones") and "availabilitySet" not in x["properties"] and "virtualMachineScaleSet" not in x["properties"]]
    assert len(single) >= 5
    sets = by_type(demo, "Microsoft.Compute/availabilitySets")
    sizes = sorted(len(s["properties"]["virtualMachines"]) for s in sets)
    assert sizes == [1, 3]
    crowded = next(s for s in sets if len(s["properties"]["virtualMachines"]) == 3)
    members = [x for x in v if x["properties"].get("availabilitySet", {}).get("id", "").lower() == crowded["id"].lower()]
    assert len(members) == 3
    assert {m["properties"]["instanceView"]["platformFaultDomain"] for m in members} == {0}
    assert crowded["properties"]["platformFaultDomainCount"] >= 2


def test_demo_unmanaged_vhds_share_one_storage_account(demo):
    vhd = [x for x in by_type(demo, VM_TYPE) if "vhd" in x["properties"]["storageProfile"]["osDisk"]]
    assert len(vhd) == 3
    for x in vhd:
        uri = x["properties"]["storageProfile"]["osDisk"]["vhd"]["uri"]
        assert uri.startswith("https://contosolegacyvhds.blob.core.windows.net/vhds/")
        assert x["properties"]["storageProfile"]["osDisk"]["createOption"] == "Attach"
        assert "managedDisk" not in x["properties"]["storageProfile"]["osDisk"]


def test_demo_delete_options(demo):
    all_delete = []
    detach_nics = 0
    v = by_type(demo, VM_TYPE)
    for x in v:
        sp = x["properties"]["storageProfile"]
        nic_opts = [n["properties"]["deleteOption"] for n in x["properties"]["networkProfile"]["networkInterfaces"]]
        detach_nics += nic_opts == ["Detach"]
        if (
            sp["osDisk"]["deleteOption"] == "Delete"
            and sp["dataDisks"]
            and nic_opts == ["Delete"]
            and all(d["deleteOption"] == "Delete" for d in sp["dataDisks"])
        ):
            all_delete.append(x["name"])
    assert all_delete == ["dev-sandbox-01"]
    assert detach_nics >= len(v) - 2


def test_demo_os_and_power_mix(demo):
    v = by_type(demo, VM_TYPE)
    oses = Counter(x["properties"]["storageProfile"]["osDisk"]["osType"] for x in v)
    assert oses["Linux"] >= 8 and oses["Windows"] >= 8
    powers = Counter(power(x) for x in v)
    assert powers["running"] >= 20
    assert powers["stopped"] >= 1 and powers["deallocated"] >= 1 and powers["starting"] >= 1
    stopped = [x["name"] for x in v if power(x) == "stopped"]
    assert stopped == ["qa-win-01"]


def test_demo_nat_only_vms(demo):
    idx = index(demo)
    nat_only = {}
    for x in by_type(demo, VM_TYPE):
        cfg = ipconfig(nic_of(demo, x))
        if "publicIPAddress" not in cfg and cfg.get("loadBalancerInboundNatRules"):
            rules = []
            for ref in cfg["loadBalancerInboundNatRules"]:
                lb_id = ref["id"].rsplit("/inboundNatRules/", 1)[0]
                rule = next(r for r in idx[lb_id.lower()]["properties"]["inboundNatRules"] if r["id"] == ref["id"])
                rules.append((rule["properties"]["frontendPort"], rule["properties"]["backendPort"]))
            nat_only[x["name"]] = rules
    assert nat_only == {"build-lnx-01": [(50001, 22)], "build-win-01": [(50002, 3389)]}
    lb = idx[next(r for r in by_type(demo, "Microsoft.Network/loadBalancers") if r["name"] == "lb-build-shared")["id"].lower()]
    fe_pip = idx[lb["properties"]["frontendIPConfigurations"][0]["properties"]["publicIPAddress"]["id"].lower()]
    assert ipaddress.ip_address(fe_pip["properties"]["ipAddress"]) in LOOPBACK


def test_demo_private_only_vm_behind_a_broken_vpn(demo):
    idx = index(demo)
    private = [
        x
        for x in by_type(demo, VM_TYPE)
        if "publicIPAddress" not in ipconfig(nic_of(demo, x)) and not ipconfig(nic_of(demo, x)).get("loadBalancerInboundNatRules")
    ]
    assert [x["name"] for x in private] == ["payroll-app-01"]
    vnet_id = ipconfig(nic_of(demo, private[0]))["subnet"]["id"].rsplit("/subnets/", 1)[0].lower()
    gws = [
        g
        for g in by_type(demo, "Microsoft.Network/virtualNetworkGateways")
        if g["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"].lower().startswith(vnet_id + "/")
    ]
    assert len(gws) == 1
    conns = [c for c in by_type(demo, "Microsoft.Network/connections") if c["properties"]["virtualNetworkGateway1"]["id"] == gws[0]["id"]]
    assert [c["properties"]["connectionStatus"] for c in conns] == ["NotConnected"]
    assert idx[vnet_id]["properties"]["subnets"][0]["name"] == "GatewaySubnet"


def test_demo_boot_diagnostics(demo):
    kinds = Counter()
    for x in by_type(demo, VM_TYPE):
        bd = x["properties"]["diagnosticsProfile"]["bootDiagnostics"]
        kinds["off" if not bd["enabled"] else "custom" if bd.get("storageUri") else "managed"] += 1
    assert kinds["off"] == 1 and kinds["custom"] == 1 and kinds["managed"] >= 20
    custom = next(x for x in by_type(demo, VM_TYPE) if x["properties"]["diagnosticsProfile"]["bootDiagnostics"].get("storageUri"))
    assert custom["properties"]["instanceView"]["bootDiagnostics"]["serialConsoleLogBlobUri"].startswith(
        custom["properties"]["diagnosticsProfile"]["bootDiagnostics"]["storageUri"]
    )


def test_demo_special_vm_kinds(demo):
    idx = index(demo)
    v = vms(demo)
    spot = [x for x in v.values() if x["properties"].get("priority") == "Spot"]
    assert [x["name"] for x in spot] == ["dev-spot-01"]
    assert spot[0]["properties"]["evictionPolicy"] == "Deallocate"
    eph = [x for x in v.values() if "diffDiskSettings" in x["properties"]["storageProfile"]["osDisk"]]
    assert [x["name"] for x in eph] == ["dev-ephemeral-01"]
    assert eph[0]["properties"]["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    flex = [x for x in v.values() if "virtualMachineScaleSet" in x["properties"]]
    assert len(flex) == 1
    assert idx[flex[0]["properties"]["virtualMachineScaleSet"]["id"].lower()]["properties"]["orchestrationMode"] == "Flexible"
    tl = [x for x in v.values() if x["properties"].get("securityProfile", {}).get("securityType") == "TrustedLaunch"]
    assert len(tl) == 1
    os_disk = idx[tl[0]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"].lower()]
    assert os_disk["properties"]["hyperVGeneration"] == "V2"
    assert os_disk["properties"]["securityProfile"]["securityType"] == "TrustedLaunch"
    locks = by_type(demo, "Microsoft.Authorization/locks")
    assert len(locks) == 1 and locks[0]["id"].startswith(v["dc-shared-01"]["id"] + "/providers/")


def test_demo_disk_mix(demo):
    skus = {d["sku"]["name"] for d in by_type(demo, "Microsoft.Compute/disks")}
    assert skus >= {"Premium_LRS", "StandardSSD_LRS", "Standard_LRS", "Premium_ZRS", "UltraSSD_LRS"}
    deallocated = [x for x in by_type(demo, VM_TYPE) if power(x) == "deallocated"]
    idx = index(demo)
    for x in deallocated:
        md = x["properties"]["storageProfile"]["osDisk"].get("managedDisk")
        if md:
            assert idx[md["id"].lower()]["properties"]["diskState"] == "Reserved"


def test_demo_boot_stories_and_serial_logs(demo):
    v = by_type(demo, VM_TYPE)
    boots = Counter(guest(demo, x)["boot"] for x in v)
    assert boots["emergency-fstab"] == 1 and boots["fsck"] == 1
    assert boots["stop-code:INACCESSIBLE_BOOT_DEVICE"] == 1
    assert boots["ok"] == len(v) - 3
    for x in v:
        g = guest(demo, x)
        os_type = x["properties"]["storageProfile"]["osDisk"]["osType"]
        log = g["serial_log"]
        assert len(log.splitlines()) >= 24, x["name"]
        if os_type == "Linux":
            assert "Hyper-V" in log
            if g["boot"] != "fsck":  # the initramfs stops before the hostname is set
                assert f"Hostname set to <{x['name']}>" in log
        else:
            assert "Windows Boot Manager" in log and "SAC" in log
        if g["boot"] == "emergency-fstab":
            assert os_type == "Linux" and "You are in emergency mode" in log and "/datadrive" in log
        elif g["boot"] == "fsck":
            assert os_type == "Linux" and "RUN fsck MANUALLY" in log and "(initramfs)" in log
        elif g["boot"].startswith("stop-code:"):
            assert os_type == "Windows" and "INACCESSIBLE_BOOT_DEVICE" in log
        elif os_type == "Linux":
            assert "login:" in log and ipconfig(nic_of(demo, x))["privateIPAddress"] in log
        else:
            assert x["name"][:15].upper() in log


def test_demo_guest_facts_for_every_vm(demo):
    v = by_type(demo, VM_TYPE)
    assert len(demo["guest"]) == len(v)
    for x in v:
        g = guest(demo, x)
        assert set(g) >= {"ports", "boot", "serial_log"}
        os_type = x["properties"]["storageProfile"]["osDisk"]["osType"]
        assert list(g["ports"]) == (["22"] if os_type == "Linux" else ["3389"])
        assert set(g["ports"].values()) <= {"ssh", "rdp", "refused", "silent"}
    assert [x["name"] for x in v if "refused" in guest(demo, x)["ports"].values()] == ["legacy-ftp-01"]


def test_demo_windows_computer_names_fit_netbios(demo):
    for x in by_type(demo, VM_TYPE):
        osp = x["properties"].get("osProfile")
        if osp and "windowsConfiguration" in osp:
            assert len(osp["computerName"]) <= 15


# ------------------------------------------------------------------ scale


@pytest.mark.parametrize("n,subs", [(1, 3), (7, 3), (100, 3), (999, 20), (50, 50)])
def test_scale_count_is_exact(n, subs):
    est = load_estate(f"scale:{n}", subscriptions=subs, now=NOW)
    v = by_type(est, VM_TYPE)
    assert len(v) == n
    assert len(est["subscriptions"]) == subs
    assert len(est["guest"]) == n
    assert len(est["availabilityStatuses"]) == n
    validate_estate(est, "scale")


def test_scale_default_is_three_subscriptions():
    assert len(load_estate("scale:10", now=NOW)["subscriptions"]) == 3


def test_scale_variety(scale):
    v = by_type(scale, VM_TYPE)
    names = Counter((x["id"].split("/")[4].lower(), x["name"].lower()) for x in v)
    assert max(names.values()) == 1
    assert len({x["id"].split("/")[2] for x in v}) == 5
    assert len({x["location"] for x in v}) >= 4
    hv = health(scale)
    states = Counter(hv[x["id"].lower()]["availabilityState"] for x in v)
    assert states["Available"] > 0.75 * len(v)
    assert states["Unavailable"] > 0 and states["Degraded"] > 0
    oses = Counter(x["properties"]["storageProfile"]["osDisk"]["osType"] for x in v)
    assert oses["Linux"] > 0.3 * len(v) and oses["Windows"] > 0.2 * len(v)
    with_pip = sum(1 for x in v if "publicIPAddress" in ipconfig(nic_of(scale, x)))
    assert 0.35 * len(v) < with_pip < 0.65 * len(v)
    assert sum(1 for x in v if x.get("zones")) > 0.1 * len(v)
    assert sum(1 for x in v if "availabilitySet" in x["properties"]) > 0.1 * len(v)
    assert any(x["properties"].get("instanceView", {}).get("maintenanceRedeployStatus") for x in v)
    assert any(power(x) == "deallocated" for x in v) and any(power(x) == "stopped" for x in v)
    datas = Counter(len(x["properties"]["storageProfile"]["dataDisks"]) for x in v)
    assert set(datas) >= {0, 1, 2}
    assert any("vhd" in x["properties"]["storageProfile"]["osDisk"] for x in v)
    assert any(x["properties"]["storageProfile"]["osDisk"]["deleteOption"] == "Delete" for x in v)
    assert any(x["properties"].get("priority") == "Spot" for x in v)
    for sub in scale["subscriptions"]:
        types = {e["properties"]["eventType"] for e in scale["events"] if e["id"].startswith(f"/subscriptions/{sub['subscriptionId']}/")}
        assert {"ServiceIssue", "HealthAdvisory"} <= types
    boots = Counter(g["boot"].split(":")[0] for g in scale["guest"].values())
    assert boots["ok"] > 0.9 * len(v)
    # NSGs are shared by the VMs of a group
    nsgs = by_type(scale, "Microsoft.Network/networkSecurityGroups")
    assert len(nsgs) < len(v) / 5


def test_scale_nat_rules_point_at_vms_without_public_ip(scale):
    idx = index(scale)
    rules = [r for lb in by_type(scale, "Microsoft.Network/loadBalancers") for r in lb["properties"]["inboundNatRules"]]
    assert rules
    for r in rules:
        cfg_id = r["properties"]["backendIPConfiguration"]["id"]
        nic = idx[cfg_id.rsplit("/ipConfigurations/", 1)[0].lower()]
        vm = idx[nic["properties"]["virtualMachine"]["id"].lower()]
        os_type = vm["properties"]["storageProfile"]["osDisk"]["osType"]
        assert r["properties"]["backendPort"] == (22 if os_type == "Linux" else 3389)
        assert "publicIPAddress" not in ipconfig(nic)


def test_scale_10000_is_fast():
    load_estate("scale:10", now=NOW)  # imports
    t = time.process_time()  # CPU time: robust when pytest-xdist workers share the machine
    est = load_estate("scale:10000", subscriptions=20, now=NOW)
    elapsed = time.process_time() - t
    assert len(est["guest"]) == 10000
    assert elapsed < 3.0, f"scale:10000 took {elapsed:.2f}s of CPU"


# ------------------------------------------------------------------ errors


def write(tmp_path, data, name="e.json") -> str:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(p)


def minimal(sub="11111111-2222-3333-4444-555555555555") -> dict:
    vm_id = f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"
    return {
        "subscriptions": [{"subscriptionId": sub, "displayName": "One", "state": "Enabled"}],
        "resources": [
            {
                "id": vm_id,
                "name": "vm1",
                "type": "Microsoft.Compute/virtualMachines",
                "location": "westeurope",
                "properties": {
                    "hardwareProfile": {"vmSize": "Standard_B2s"},
                    "storageProfile": {"osDisk": {"osType": "Linux", "name": "d"}},
                    "networkProfile": {"networkInterfaces": []},
                },
            }
        ],
        "availabilityStatuses": [
            {
                "id": vm_id + "/providers/Microsoft.ResourceHealth/availabilityStatuses/current",
                "name": "current",
                "properties": {"availabilityState": "Available"},
            }
        ],
        "events": [],
        "guest": {vm_id: {"ports": {"22": "ssh"}, "boot": "ok"}},
    }


def test_a_minimal_file_loads_and_gets_defaults(tmp_path):
    data = minimal()
    del data["events"]
    data["subscriptions"][0].pop("state")
    est = load_estate(write(tmp_path, data))
    assert est["events"] == [] and est["resourceGroups"] == []
    assert est["subscriptions"][0]["state"] == "Enabled"


def test_error_not_json(tmp_path):
    path = write(tmp_path, '{\n  "subscriptions": [\n    {"subscriptionId": "x"\n  ]\n}')
    with pytest.raises(EstateError) as exc:
        load_estate(path)
    assert str(exc.value).startswith(f"estate file {path} is not valid JSON (line 4, column 3)")


def test_error_missing_id(tmp_path):
    data = minimal()
    data["resources"].append({"name": "x", "type": "Microsoft.Network/networkInterfaces"})
    path = write(tmp_path, data)
    with pytest.raises(EstateError, match=r"^estate file .*e\.json: resources\[1\] has no 'id'$"):
        load_estate(path)


def test_error_unknown_subscription(tmp_path):
    data = minimal()
    other = minimal("99999999-2222-3333-4444-555555555555")["resources"][0]
    data["resources"].append(other)
    path = write(tmp_path, data)
    with pytest.raises(EstateError) as exc:
        load_estate(path)
    msg = str(exc.value)
    assert msg.startswith(f"estate file {path}: resources[1]")
    assert "99999999-2222-3333-4444-555555555555" in msg and "not listed in 'subscriptions'" in msg


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda d: d.update(extra=1), "unknown top-level key 'extra'"),
        (lambda d: d.update(resources={}), "'resources' must be a list"),
        (lambda d: d.pop("subscriptions"), "there is no 'subscriptions' list"),
        (lambda d: d["subscriptions"][0].update(subscriptionId="not-a-guid"), "subscriptions[0] needs a 'subscriptionId'"),
        (lambda d: d["resources"][0].update(id="/subscriptions/11111111-2222-3333-4444-555555555555/vm1"), "has a malformed ARM id"),
        (lambda d: d["resources"][0].update(name="other"), "has name 'other' but its id ends in 'vm1'"),
        (lambda d: d["resources"][0].update(type="Microsoft.Compute/disks"), "has type 'Microsoft.Compute/disks'"),
        (lambda d: d["resources"].append(dict(d["resources"][0])), "resources[1] repeats the id"),
        (lambda d: d["resources"][0]["properties"].pop("hardwareProfile"), "has no properties.hardwareProfile.vmSize"),
        (
            lambda d: d["availabilityStatuses"][0].update(id=d["resources"][0]["id"] + "/providers/Microsoft.ResourceHealth/availabilityStatuses/latest"),
            "must end with /providers/Microsoft.ResourceHealth/availabilityStatuses/current",
        ),
        (lambda d: d["availabilityStatuses"][0]["properties"].update(availabilityState="Fine"), "needs properties.availabilityState"),
        (
            lambda d: d["events"].append(
                {
                    "id": "/subscriptions/99999999-2222-3333-4444-555555555555/providers/Microsoft.ResourceHealth/events/AB-1",
                    "name": "AB-1",
                    "properties": {"eventType": "ServiceIssue"},
                }
            ),
            "events[0] (/subscriptions/9999",
        ),
        (
            lambda d: d["guest"].update({"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/nope": {}}),
            "is not the id of a virtual machine in 'resources'",
        ),
        (lambda d: next(iter(d["guest"].values())).update(ports={"22": "open"}), "use one of"),
        (lambda d: next(iter(d["guest"].values())).update(boot="broken"), ".boot is 'broken'"),
        (lambda d: next(iter(d["guest"].values())).update(previous_public_ip="nope"), "not an IPv4 address"),
    ],
)
def test_error_messages_name_the_file_and_the_problem(tmp_path, mutate, expected):
    data = minimal()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(EstateError) as exc:
        load_estate(path)
    msg = str(exc.value)
    assert msg.startswith(f"estate file {path}")
    assert expected in msg
    assert "\n" not in msg


def test_error_file_problems(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(EstateError, match=r"^estate file .*nope\.json does not exist$"):
        load_estate(missing)
    with pytest.raises(EstateError, match="is not valid JSON"):
        load_estate(write(tmp_path, ""))
    with pytest.raises(EstateError, match="the top level must be a JSON object, not list"):
        load_estate(write(tmp_path, "[]"))
    p = tmp_path / "bin.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EstateError, match="is not UTF-8 text"):
        load_estate(str(p))


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("foo", "unknown estate 'foo': use demo, hostile, scale:N or a JSON file"),
        ("", "use demo, hostile, scale:N or a JSON file"),
        ("scale:abc", "scale:N needs a positive whole number"),
        ("scale:0", "scale:N needs a positive whole number"),
        ("scale:-3", "scale:N needs a positive whole number"),
        ("scale:1.5", "scale:N needs a positive whole number"),
        ("scale", "scale:N needs a positive whole number"),
    ],
)
def test_error_bad_specs(spec, expected):
    with pytest.raises(EstateError) as exc:
        load_estate(spec)
    assert expected in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_error_bad_subscription_count():
    with pytest.raises(EstateError, match="positive whole number of subscriptions"):
        load_estate("scale:5", subscriptions=0)


def test_validate_accepts_a_deep_copy_of_the_demo(demo):
    validate_estate(copy.deepcopy(demo), "copy")
