"""Diagnosis end to end: the real adapter, the emulator and its real loopback
guests. Every demo VM gets the verdict its story calls for; the guests follow
power, NSG and guest changes; an address change is caught across two runs;
Network Watcher answers from inside Azure."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from backend import connectivity
from backend.adapter import BackendError
from backend.azure import network_ops
from backend.azure.backend import AzureBackend
from backend.diagnose import BLOCKED_BY_NSG, GUEST_NOT_ANSWERING, IP_CHANGED, NO_PUBLIC_PATH, PLATFORM_UNHEALTHY, REACHABLE, VM_NOT_RUNNING, Facts, diagnose
from backend.lastknown import LastKnownStore
from backend.models import HealthStatus
from backend.network import Source, vm_flow_verdict
from backend.probe import OPEN, REFUSED, TIMEOUT, ProbeResult, ProbeTarget
from tests.support import demo_settings, emulator_control, inbound_rule, start_emulator

pytestmark = pytest.mark.xdist_group("connectivity")

QUICK = dict(timeout=0.3, attempts=1)

# Every demo VM: (verdict, recommended scenario, a phrase its summary must hold).
EXPECTED = {
    "web-prod-01": (REACHABLE, None, "SSH answers"),
    "web-prod-02": (REACHABLE, None, "SSH answers"),
    "web-prod-03": (REACHABLE, None, "SSH answers"),
    "sql-prod-01": (REACHABLE, None, "RDP answers"),
    "sql-prod-02": (PLATFORM_UNHEALTHY, "redeploy", "Degraded"),
    "sql-prod-03": (REACHABLE, None, "RDP answers"),
    "app-prod-ne-01": (REACHABLE, "perform-maintenance", "RDP answers"),  # its maintenance window is open: start it
    "app-prod-ne-02": (REACHABLE, None, "SSH answers"),
    "erp-prod-eus-01": (PLATFORM_UNHEALTHY, "redeploy", "Unavailable"),
    "jump-prod-01": (BLOCKED_BY_NSG, "fix-nsg", "blocked by NSG rule Deny-RDP-Incident-4711 at priority 200 (NIC NSG nsg-jump-prod)"),
    "dc-shared-01": (REACHABLE, None, "RDP answers"),
    "rdgw-shared-01": (IP_CHANGED, "upgrade-public-ip", "IP changed from 127.10.2.201 to 127.10.2.11"),
    "tools-lnx-shared-01": (BLOCKED_BY_NSG, "fix-nsg", "blocked by NSG rule Deny-SSH-Inbound at priority 110 (subnet NSG nsg-snet-tools-shared)"),
    "files-shared-01": (GUEST_NOT_ANSWERING, "run-fix", "RDP times out"),
    "mon-shared-eus-01": (REACHABLE, None, "SSH answers"),
    "legacy-app-01": (REACHABLE, None, "RDP answers"),
    "legacy-app-02": (VM_NOT_RUNNING, "start", "deallocated"),
    "legacy-ftp-01": (GUEST_NOT_ANSWERING, "reset-access", "SSH refused"),
    "build-lnx-01": (REACHABLE, None, "SSH answers"),
    "build-win-01": (REACHABLE, None, "RDP answers"),
    "payroll-app-01": (NO_PUBLIC_PATH, "reset-vpn", "no public path"),
    "dev-spot-01": (VM_NOT_RUNNING, "start", "deallocated"),
    "dev-ephemeral-01": (REACHABLE, None, "SSH answers"),
    "dev-sandbox-01": (REACHABLE, None, "SSH answers"),
    "api-dev-01": (GUEST_NOT_ANSWERING, "rescue", "the OS did not boot: emergency mode (fstab)"),
    "pg-dev-01": (GUEST_NOT_ANSWERING, "rescue", "the OS did not boot: file system check required"),
    "vmss-build-dev_3f9a1c2e": (REACHABLE, None, "SSH answers"),
    "win11-tl-dev-01": (VM_NOT_RUNNING, None, "starting"),
    "qa-win-01": (VM_NOT_RUNNING, "start", "stopped"),
    "iis-test-01": (GUEST_NOT_ANSWERING, "rescue", "the OS did not boot: Windows stop code"),
}


@pytest.fixture(scope="module")
def guest_emulator():
    emu = start_emulator("demo")
    yield emu
    emu.stop()


@pytest.fixture
async def guest_backend(guest_emulator):
    b = AzureBackend(demo_settings(guest_emulator), retry_total=2)
    yield b
    await b.close()
    emulator_control(guest_emulator, "POST", "/_emulator/reset")


async def probe_run(backend, store, names=None, **request):
    inventory = await backend.inventory()
    env = await connectivity.environment(backend.settings, inventory)
    connectivity.seed_demo_history(store, env, inventory) if request.pop("seed", False) else None
    vms = connectivity.choose_vms(inventory, names)
    report = await connectivity.run(backend, inventory, vms, connectivity.Request(**(QUICK | request)), env=env, store=store)
    return inventory, report


def by_vm(report):
    return {d.vm: d for d in report.diagnoses}


async def test_every_demo_vm_gets_its_story(guest_backend, tmp_path):
    store = LastKnownStore(tmp_path / "lastknown.json", scope="demo")
    inventory, report = await probe_run(guest_backend, store, seed=True)
    diagnoses = by_vm(report)
    assert set(diagnoses) == {vm.name for vm in inventory.vms} == set(EXPECTED)
    got = {name: (d.verdict, d.recommended_scenario) for name, d in diagnoses.items()}
    assert got == {name: exp[:2] for name, exp in EXPECTED.items()}
    for name, (_verdict, _scenario, phrase) in EXPECTED.items():
        assert phrase in diagnoses[name].summary, (name, diagnoses[name].summary)
        assert diagnoses[name].evidence, name
    # Evidence an operator needs to act.
    assert any("NotConnected" in line for line in diagnoses["payroll-app-01"].evidence)
    assert any("active service issue 7T2K-LQ8" in line for line in diagnoses["erp-prod-eus-01"].evidence)
    assert any("Network Watcher" in line or "demo port 10022" in line or "refused" in line for line in diagnoses["legacy-ftp-01"].evidence)
    assert any("still answers" in line for line in diagnoses["sql-prod-02"].evidence)
    # The serial log tells a guest that did not boot from one whose firewall drops the port.
    assert any("boot diagnostics: emergency mode (fstab)" in line for line in diagnoses["api-dev-01"].evidence)
    assert any("INACCESSIBLE_BOOT_DEVICE" in line for line in diagnoses["iis-test-01"].evidence)
    assert any("boot diagnostics: the last boot reached the login prompt" in line for line in diagnoses["files-shared-01"].evidence)
    assert diagnoses["build-lnx-01"].connect[0].startswith("ssh -p ")
    nat = [r for r in report.results if r.target.vm == "build-win-01" and r.target.kind == "lb-nat"]
    assert nat and nat[0].target.port == 50002 and nat[0].answered == "rdp"


async def test_probe_results_say_what_answered(guest_backend, tmp_path):
    store = LastKnownStore(tmp_path / "lastknown.json", scope="t")
    _inv, report = await probe_run(guest_backend, store, ["web-prod-01", "sql-prod-01", "legacy-ftp-01", "files-shared-01", "legacy-app-02"])
    status = {(r.target.vm, r.target.kind): r for r in report.results}
    ssh = status[("web-prod-01", "public-ip")]
    assert (ssh.status, ssh.answered, ssh.target.port) == (OPEN, "ssh", 22) and ssh.banner.startswith("SSH-2.0-OpenSSH_9.6")
    # Non-root friendly: the demo's SSH listens above 1024 and the probe knows where.
    assert ssh.connect_port != 22
    rdp = status[("sql-prod-01", "public-ip")]
    assert (rdp.status, rdp.answered) == (OPEN, "rdp") and "Connection Confirm" in rdp.banner
    assert status[("legacy-ftp-01", "public-ip")].status == REFUSED
    assert status[("files-shared-01", "public-ip")].status == TIMEOUT
    # A deallocated Basic IP has no address: its FQDN resolves to nothing, and no DNS query left the process.
    assert status[("legacy-app-02", "fqdn")].status == "dns-failed"


async def test_guests_follow_power_nsg_and_guest_changes(guest_backend, guest_emulator, tmp_path):
    store = LastKnownStore(tmp_path / "lastknown.json", scope="t")
    inventory = await guest_backend.inventory()
    sandbox = inventory.vm_by_name("dev-sandbox-01")[0]
    compute = guest_backend.client("compute", sandbox.subscription_id)
    network = guest_backend.client("network", sandbox.subscription_id)

    await (await compute.virtual_machines.begin_power_off(sandbox.resource_group, sandbox.name)).result()
    _inv, report = await probe_run(guest_backend, store, ["dev-sandbox-01"])
    assert by_vm(report)["dev-sandbox-01"].verdict == VM_NOT_RUNNING
    assert {r.status for r in report.results} == {TIMEOUT}

    await (await compute.virtual_machines.begin_start(sandbox.resource_group, sandbox.name)).result()
    _inv, report = await probe_run(guest_backend, store, ["dev-sandbox-01"])
    assert by_vm(report)["dev-sandbox-01"].verdict == REACHABLE

    rule = inbound_rule(120, "22")
    await (await network.security_rules.begin_create_or_update("rg-dev-weu", "nsg-dev-weu", "Deny-SSH-Test", rule)).result()
    _inv, report = await probe_run(guest_backend, store, ["dev-sandbox-01"])
    d = by_vm(report)["dev-sandbox-01"]
    assert (d.verdict, d.summary) == (BLOCKED_BY_NSG, "blocked by NSG rule Deny-SSH-Test at priority 120 (NIC NSG nsg-dev-weu)")
    assert {r.status for r in report.results} == {TIMEOUT}

    # A fix inside the guest (what a run command does): the firewall lets RDP through again.
    files = inventory.vm_by_name("files-shared-01")[0]
    guest_emulator.call(lambda: guest_emulator.store.own_guest(files.id)["ports"].__setitem__("3389", "rdp"))
    _inv, report = await probe_run(guest_backend, store, ["files-shared-01"])
    assert by_vm(report)["files-shared-01"].verdict == REACHABLE


async def test_ip_change_is_caught_across_two_runs(guest_backend, guest_emulator, tmp_path):
    path = tmp_path / "lastknown.json"
    store = LastKnownStore(path, scope="t")
    inventory, report = await probe_run(guest_backend, store, ["web-prod-03"])
    assert by_vm(report)["web-prod-03"].verdict == REACHABLE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    web3 = inventory.vm_by_name("web-prod-03")[0]
    pip_id = web3.nics[0].public_ips[0].id
    guest_emulator.call(lambda: guest_emulator.store.own(pip_id)["properties"].__setitem__("ipAddress", "127.10.1.99"))

    _inv, report = await probe_run(guest_backend, LastKnownStore(path, scope="t"), ["web-prod-03"])
    d = by_vm(report)["web-prod-03"]
    assert (d.verdict, d.summary) == (IP_CHANGED, "IP changed from 127.10.1.13 to 127.10.1.99")
    # The ssh line names the VM's DNS name, which followed the new address (a line with the old address would be stale).
    assert d.connect[0].startswith("ssh -p ") and d.connect[0].endswith("azureuser@web-prod-03.westeurope.cloudapp.azure.test")
    assert report.changes and next(iter(report.changes.values()))[0].old == ("127.10.1.13",)

    # Seen once, remembered: the third run is simply reachable again.
    _inv, report = await probe_run(guest_backend, LastKnownStore(path, scope="t"), ["web-prod-03"])
    assert by_vm(report)["web-prod-03"].verdict == REACHABLE


async def test_network_watcher_checks_from_inside_azure(guest_backend):
    inventory = await guest_backend.inventory()
    vm = {v.name: v for v in inventory.vms}
    same_vnet = await network_ops.check_connectivity(guest_backend, vm["web-prod-02"], 22, destination=vm["web-prod-01"])
    assert same_vnet.connected and same_vnet.hops[0].type == "Source" and same_vnet.hops[-1].address == vm["web-prod-01"].private_ips[0]
    blocked = await network_ops.check_connectivity(guest_backend, vm["sql-prod-01"], 3389, address=vm["jump-prod-01"].public_ips[0])
    assert not blocked.connected
    assert [(i.type, dict(i.context).get("RuleName")) for i in blocked.issues] == [("NetworkSecurityRule", "Deny-RDP-Incident-4711")]
    firewall = await network_ops.check_connectivity(guest_backend, vm["dev-sandbox-01"], 22, destination=vm["api-dev-01"])
    assert [i.type for i in firewall.issues] == ["GuestFirewall"]
    with pytest.raises(BackendError, match=r"qa-win-01.*not running"):
        await network_ops.check_connectivity(guest_backend, vm["qa-win-01"], 3389, destination=vm["sql-prod-01"])


async def test_from_azure_evidence_in_the_diagnosis(guest_backend, tmp_path):
    store = LastKnownStore(tmp_path / "lastknown.json", scope="t")
    _inv, report = await probe_run(guest_backend, store, ["files-shared-01"], from_azure=True)
    d = by_vm(report)["files-shared-01"]
    assert any(line.startswith("Network Watcher from ") and "GuestFirewall" in line for line in d.evidence)
    assert json.loads(json.dumps(report.to_json()))["network_watcher"][0]["vm"] == "files-shared-01"


async def test_private_path_reads_the_vpn_connection(guest_backend):
    inventory = await guest_backend.inventory()
    path = await network_ops.private_path(guest_backend, inventory.vm_by_name("payroll-app-01")[0])
    assert [(c.name, c.status, c.peer) for c in path.vpn_connections] == [("cn-hub-to-onprem-amsterdam", "NotConnected", "lgw-onprem-amsterdam")]
    assert path.bastion_hosts == ()


async def test_a_sweep_reads_each_virtual_network_once(tmp_path):
    """A probe of many VMs without a public path reads the private path (VPN, Bastion) once per
    VNet, not once per VM (ARM's read quota is per subscription), and each VM's diagnosis still
    names its own VNet's."""
    from backend.network import has_public_path

    emu = start_emulator("scale:120")
    try:
        async with AzureBackend(demo_settings(emu), retry_total=2) as backend:
            emulator_control(emu, "GET", "/_emulator/requests")  # the log from here on
            store = LastKnownStore(tmp_path / "lastknown.json", scope="t")
            inventory, report = await probe_run(backend, store)
        private = [vm for vm in inventory.vms if vm.power_state == "running" and not has_public_path(vm, inventory)]
        vnets = {vm.vnet_id.lower() for vm in private if vm.vnet_id}
        assert len(private) >= 2 * len(vnets) > 0, "VNets that hold several such VMs"
        reads = [r["path"].lower() for r in emulator_control(emu, "GET", "/_emulator/requests") if "/virtualnetworks/" in r["path"].lower()]
        assert sorted(set(reads)) == sorted(reads) and set(reads) >= vnets
        diagnoses = by_vm(report)
        told = [vm for vm in private if diagnoses[vm.name].verdict == NO_PUBLIC_PATH]
        assert len(told) > len(vnets)
        for vm in told:
            vnet = vm.vnet_id.rsplit("/", 1)[-1]
            assert any(f"serves {vnet}" in line or f"in {vnet}" in line for line in diagnoses[vm.name].evidence), vm.name
    finally:
        emu.stop()


# --- the rules on their own ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_inventory(guest_emulator):
    import asyncio

    async def load():
        async with AzureBackend(demo_settings(guest_emulator)) as b:
            return await b.inventory()

    return asyncio.run(load())


def result(vm, host, port, status, answered=None, protocol="ssh", banner=None):
    return ProbeResult(
        ProbeTarget(host, port, protocol, vm=vm.name, vm_id=vm.id, kind="public-ip"),
        status,
        latency_ms=1.0 if status == OPEN else None,
        address=host,
        connect_port=port,
        answered=answered,
        banner=banner,
    )


def test_wrong_protocol_on_the_port_means_reset_access(demo_inventory):
    vm = demo_inventory.vm_by_name("web-prod-01")[0]
    d = diagnose(
        Facts(
            vm,
            22,
            (result(vm, "127.10.1.11", 22, OPEN, answered="other", banner="HTTP/1.1 400"),),
            nsg=vm_flow_verdict(vm, demo_inventory, 22, Source.parse(None)),
            agent_status="Ready",
        )
    )
    assert (d.verdict, d.recommended_scenario) == (GUEST_NOT_ANSWERING, "reset-access")
    assert "answers something else, not SSH" in d.summary


def test_silent_guest_without_a_ready_agent_is_restarted_and_a_boot_problem_rescued(demo_inventory):
    vm = demo_inventory.vm_by_name("web-prod-01")[0]
    facts = Facts(vm, 22, (result(vm, "127.10.1.11", 22, TIMEOUT),), nsg=vm_flow_verdict(vm, demo_inventory, 22, Source.parse(None)), agent_status="Not Ready")
    assert diagnose(facts).recommended_scenario == "restart"
    rescued = diagnose(dataclasses.replace(facts, boot_problem="emergency mode: /etc/fstab names a missing disk"))
    assert (rescued.verdict, rescued.recommended_scenario) == (GUEST_NOT_ANSWERING, "rescue")
    assert "boot diagnostics: emergency mode" in " ".join(rescued.evidence)


def test_source_ip_changes_the_nsg_verdict(demo_inventory):
    vm = demo_inventory.vm_by_name("payroll-app-01")[0]
    # Only on-premises (192.168.0.0/16) may RDP into the hub's apps subnet.
    assert not vm_flow_verdict(vm, demo_inventory, 3389, Source.parse("Internet")).allowed
    assert vm_flow_verdict(vm, demo_inventory, 3389, Source.parse("192.168.10.5")).allowed


def test_user_stopped_is_not_a_platform_problem(demo_inventory):
    vm = demo_inventory.vm_by_name("web-prod-01")[0]
    unhealthy = dataclasses.replace(vm, health=HealthStatus("Unavailable", summary="host failure", reason_type="Unplanned"))
    assert diagnose(Facts(unhealthy, 22, (result(vm, "127.10.1.11", 22, TIMEOUT),))).verdict == PLATFORM_UNHEALTHY
    stopped = dataclasses.replace(vm, power_state="stopped", health=HealthStatus("Unavailable", reason_type="UserInitiated"))
    d = diagnose(Facts(stopped, 22, (result(vm, "127.10.1.11", 22, TIMEOUT),)))
    assert (d.verdict, d.recommended_scenario) == (VM_NOT_RUNNING, "start")


def test_last_known_store_survives_a_damaged_file(tmp_path, demo_inventory):
    path = tmp_path / "lastknown.json"
    path.write_text("{not json")
    store = LastKnownStore(path, scope="s")
    vm = demo_inventory.vm_by_name("web-prod-01")[0]
    assert store.record([vm]) == {}
    assert json.loads(path.read_text())["scopes"]["s"][vm.id.lower()]["public_ips"] == ["127.10.1.11"]
    assert [p.name for p in tmp_path.iterdir()] == ["lastknown.json"]


# --- conformance with Azure's REST examples ----------------------------------------------

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples" / "network"


def key_paths(value, prefix=""):
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            out |= key_paths(v, path)
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, prefix + "[]")
    return out


def test_example_bodies_map_to_the_models():
    check = json.loads((EXAMPLES / "NetworkWatcherConnectivityCheck.json").read_text())
    info = network_ops.connectivity_information(check["responses"]["200"]["body"], "vm1", "192.168.100.4", 3389)
    assert info.connected and info.avg_latency_ms == 1 and info.probes_sent == 100 and [h.type for h in info.hops] == ["Source", "VirtualNetwork"]
    vpn = json.loads((EXAMPLES / "VirtualNetworkGatewayConnectionGet.json").read_text())
    conn = network_ops.vpn_connection(vpn["responses"]["200"]["body"])
    assert (conn.name, conn.status, conn.connection_type, conn.peer) == ("connS2S", "Connecting", "IPsec", "localgw")


async def test_emulator_connectivity_check_uses_the_examples_keys(guest_backend):
    example = json.loads((EXAMPLES / "NetworkWatcherConnectivityCheck.json").read_text())
    inventory = await guest_backend.inventory()
    vm = {v.name: v for v in inventory.vms}
    allowed = key_paths(example["responses"]["200"]["body"]) | {
        "hops[].issues[].origin",
        "hops[].issues[].severity",
        "hops[].issues[].type",
        "hops[].issues[].context",
        "hops[].issues[].context[].key",
        "hops[].issues[].context[].value",
    }
    client = guest_backend.client("network", vm["web-prod-01"].subscription_id)
    for source, target in (("web-prod-02", "web-prod-01"), ("sql-prod-01", "jump-prod-01")):
        params = {
            "source": {"resourceId": vm[source].id},
            "destination": {"resourceId": vm[target].id, "port": 3389 if target == "jump-prod-01" else 22},
            "preferredIPVersion": "IPv4",
        }
        poller = await client.network_watchers.begin_check_connectivity("NetworkWatcherRG", f"NetworkWatcher_{vm[source].location}", params)
        # The SDK's hybrid models are mappings over the wire JSON.
        body = json.loads(json.dumps(await poller.result(), default=dict))
        assert body["connectionStatus"] in ("Connected", "Disconnected")
        assert key_paths(body) <= allowed, key_paths(body) - allowed


@pytest.mark.parametrize("inline_chars", [0, None], ids=["a-large-log", "a-small-log"])
async def test_a_large_serial_log_is_analysed_off_the_event_loop(guest_backend, monkeypatch, inline_chars):
    """A guest's log may be megabytes: analysed in a thread. One of a few KiB costs less
    than the hop to a thread (connectivity.INLINE_LOG_CHARS): on the loop. The same verdict."""
    import asyncio

    from backend import bootdiag

    on_loop: list[bool] = []
    analyze = bootdiag.analyze

    def recording(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return analyze(*args, **kwargs)

    monkeypatch.setattr(bootdiag, "analyze", recording)
    if inline_chars is not None:
        monkeypatch.setattr(connectivity, "INLINE_LOG_CHARS", inline_chars)
    inventory = await guest_backend.inventory()
    verdict = await connectivity.boot_verdict(guest_backend, inventory.vm_by_name("api-dev-01")[0])
    assert verdict.problem and "emergency mode" in verdict.problem
    assert on_loop == [inline_chars is None]


def test_network_watcher_runs_from_a_vm_in_the_same_virtual_network_as_its_primary_nic():
    """pick_source_vm reads a VM's VNet as the probe's private path does (Vm.vnet_id: the
    primary NIC's subnet first), ids in any case, and falls back to the same region."""
    from dataclasses import replace

    from backend.connectivity import pick_source_vm
    from backend.models import Inventory
    from tests.support import make_vm

    def in_vnet(vm, *subnets, primary=0):
        nic = vm.nics[0]
        nics = tuple(replace(nic, id=f"{nic.id}{i}", subnet_id=s, primary=i == primary) for i, s in enumerate(subnets))
        return replace(vm, nics=nics)

    vnet = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/{}/subnets/default"
    target = in_vnet(make_vm("target"), vnet.format("spare"), vnet.format("prod"), primary=1)
    same_region = in_vnet(make_vm("region-peer"), vnet.format("elsewhere"))
    spare = in_vnet(make_vm("spare-vm"), vnet.format("spare"))
    prod = in_vnet(make_vm("prod-vm"), vnet.format("PROD").replace("virtualNetworks", "VIRTUALNETWORKS"))
    stopped = replace(in_vnet(make_vm("prod-stopped"), vnet.format("prod")), power_state="deallocated")
    inventory = Inventory(subscriptions=(), vms=(target, same_region, spare, stopped, prod))
    assert pick_source_vm(inventory, target).name == "prod-vm"
    assert pick_source_vm(Inventory(subscriptions=(), vms=(target, same_region, stopped)), target).name == "region-peer"
