"""upgrade-public-ip end to end on the emulator: the demo's rdgw-shared-01 (a Basic Dynamic IP
whose address changed) is made Static and Standard, keeps its address and answers RDP on it;
a deallocated VM's IP cannot keep an address it no longer has, and the plan says so; a VM
without any NSG gets one that admits only RDP (in the ledger); the plan's typed name,
--read-only and the verdict that recommends it; a run killed at every boundary (in process
here, with SIGKILL in tests/test_recovery_netpath_cli.py) ends the same, nothing done twice."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from backend.recovery import scenarios
from backend.recovery.plan import Kind, PlanError
from backend.recovery.runner import RunRefused
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import arm_request, operation_counts, vm_doc
from tests.rescue_support import killed_at, states
from tests.support import emulator_control

VM = "rdgw-shared-01"


def nic_and_pip(emu, vm_name: str) -> tuple[dict, dict]:
    nic_id = vm_doc(emu, vm_name)["doc"]["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    status, nic = arm_request(emu, "GET", nic_id)
    assert status == 200
    pip_id = vm_doc(emu, vm_name)["doc"]["id"].rsplit("/providers/", 1)[0] + f"/providers/Microsoft.Network/publicIPAddresses/{vm_name}-ip"
    status, pip = arm_request(emu, "GET", pip_id)
    assert status == 200
    return nic, pip


def upgraded_keeping(emu, vm_name: str, address: str | None) -> dict:
    nic, pip = nic_and_pip(emu, vm_name)
    props = pip["properties"]
    assert (pip["sku"]["name"], props["publicIPAllocationMethod"], props["provisioningState"]) == ("Standard", "Static", "Succeeded")
    if address:
        assert props["ipAddress"] == address
    assert props["ipConfiguration"]["id"].lower() == nic["properties"]["ipConfigurations"][0]["id"].lower()
    return pip


def pip_writes(emu, pip_id: str) -> Counter:
    """Accepted writes on the public IP and on NICs, by method and resource."""
    out: Counter = Counter()
    for r in emulator_control(emu, "GET", "/_emulator/requests"):
        if (
            r["method"] in ("PUT", "PATCH")
            and r.get("status", 0) < 300
            and ("/publicipaddresses/" in r["path"].lower() or "/networkinterfaces/" in r["path"].lower())
        ):
            out[r["path"].lower().split("?")[0]] += 1
    return out


async def test_rdgw_is_made_static_and_standard_keeping_its_address_and_rdp_answers_on_it(rig):
    nic, pip = nic_and_pip(rig.emu, VM)
    address = pip["properties"]["ipAddress"]
    plan, _ = await rig.plan(VM, "upgrade-public-ip")
    assert plan.keys == ["preflight", "static", "disassociate", "upgrade", "associate", "reach-rdp"]
    assert any("retired on 30 September 2025" in w for w in plan.warnings)
    assert any(f"The address {address} is kept" in w for w in plan.warnings)
    assert plan.details == ((f"public IP {VM}-ip", f"Basic, Dynamic, {address}", f"Standard, Static, {address}"),)
    assert [s.kind for s in plan.steps if s.key == "disassociate"] == [Kind.DESTRUCTIVE]
    assert all(s.why and s.changes for s in plan.steps) and [s.key for s in plan.steps if s.undo is None and s.writes] == ["upgrade"]
    plan, result = await rig.run(VM, "upgrade-public-ip")
    assert result.status == "succeeded", result.summary
    assert states(result) == ["verified"] * 6
    upgraded_keeping(rig.emu, VM, address)
    reach = result.record.steps[-1]
    assert f"RDP answers on {address}:3389" in reach.message
    # Each public IP write was one long-running operation, each NIC write one PUT.
    counts = operation_counts(rig.emu)
    assert counts[("put", pip["id"].lower())] == 2
    assert pip_writes(rig.emu, pip["id"])[nic["id"].lower()] == 2


async def test_a_second_run_finds_nothing_to_do(rig):
    await rig.run(VM, "upgrade-public-ip")
    with pytest.raises(PlanError, match=f"the public IP of {VM} is already Standard and Static"):
        await rig.plan(VM, "upgrade-public-ip")


async def test_a_deallocated_vm_cannot_keep_an_address_it_no_longer_has_and_the_plan_says_so(rig):
    _, pip = nic_and_pip(rig.emu, "legacy-app-02")
    assert "ipAddress" not in pip["properties"]
    plan, _ = await rig.plan("legacy-app-02", "upgrade-public-ip")
    assert any("has no address now" in w and "cannot be had back" in w for w in plan.warnings)
    assert plan.keys[-1] == "final-address"  # nothing to probe on a deallocated VM
    plan, result = await rig.run("legacy-app-02", "upgrade-public-ip")
    assert result.status == "succeeded", result.summary
    pip = upgraded_keeping(rig.emu, "legacy-app-02", None)
    assert pip["properties"]["ipAddress"]
    assert f"Static at {pip['properties']['ipAddress']}" in result.record.steps[-1].message


BARE = "legacy-app-01"  # running, Basic and Dynamic; its subnet has no NSG


def without_nsg(emu) -> None:
    """BARE's NIC without its NSG, as another operator left it: neither the NIC nor its subnet has
    one, so the plan creates one. Waits for the NIC's write to end."""
    nic, _ = nic_and_pip(emu, BARE)
    bare = json.loads(json.dumps(nic))
    bare["properties"].pop("networkSecurityGroup")
    status, _ = arm_request(emu, "PUT", nic["id"], bare)
    assert status == 200
    for _ in range(200):
        if arm_request(emu, "GET", nic["id"])[1]["properties"]["provisioningState"] == "Succeeded":
            return
        time.sleep(0.01)
    raise AssertionError("the NIC's write did not end")


def bare_nsg_id(nic: dict) -> str:
    return nic["id"].split("/providers/")[0] + f"/providers/Microsoft.Network/networkSecurityGroups/{BARE}-nsg"


async def test_without_any_nsg_the_plan_creates_one_for_rdp_only_and_rdp_answers_through_it(rig):
    vm_name = BARE
    nic, pip = nic_and_pip(rig.emu, vm_name)
    without_nsg(rig.emu)
    plan, _ = await rig.plan(vm_name, "upgrade-public-ip")
    assert "create-nsg" in plan.keys
    assert any("Neither NIC" in w and f"{vm_name}-nsg" in w and "RDP (TCP 3389)" in w for w in plan.warnings)
    plan, result = await rig.run(vm_name, "upgrade-public-ip")
    assert result.status == "succeeded", result.summary
    upgraded_keeping(rig.emu, vm_name, pip["properties"]["ipAddress"])
    nsg_id = bare_nsg_id(nic)
    status, nsg = arm_request(rig.emu, "GET", nsg_id)
    assert status == 200
    assert [(r["properties"]["destinationPortRange"], r["properties"]["access"]) for r in nsg["properties"]["securityRules"]] == [("3389", "Allow")]
    status, nic = arm_request(rig.emu, "GET", nic["id"])
    assert nic["properties"]["networkSecurityGroup"]["id"].lower() == nsg_id.lower()
    assert [(r.kind, r.state) for r in rig.journal.resources(result.run_id)] == [("nsg", "in-use")]
    # The NSG guards the NIC now: releasing the run keeps it, and says why.
    from backend.recovery.release import KEEP, release_plan

    _run, items = release_plan(rig.journal, result.run_id)
    assert [(i.resource_id.lower(), i.action, i.reason) for i in items] == [(nsg_id.lower(), KEEP, "in use by a VM now: never deleted by aztriage")]


async def test_a_read_only_lock_or_a_standard_ip_stop_it_before_anything_changes(rig):
    from tests.recovery_support import put_lock, writes

    vm_id = vm_doc(rig.emu, VM)["doc"]["id"]
    put_lock(rig.emu, vm_id.rsplit("/providers/", 1)[0], "freeze")
    before = writes(rig.emu)
    plan, facts = await rig.plan(VM, "upgrade-public-ip")
    assert any("ReadOnly lock 'freeze'" in b for b in plan.blockers)
    with pytest.raises(RunRefused, match="cannot run"):
        await rig.runner(VM).start(plan, lambda f, p: scenarios.build_plan("upgrade-public-ip", f, p), facts)
    assert writes(rig.emu) == before
    with pytest.raises(PlanError, match="already Standard and Static"):
        await rig.plan("web-prod-01", "upgrade-public-ip")


KILL_TESTS = 4


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_without_duplicates(rigs, hand):
    for boundary in deal(recorded(VM, "upgrade-public-ip").points, hand, KILL_TESTS):
        async with killed_at(rigs, boundary) as rig:
            nic, pip = nic_and_pip(rig.emu, VM)
            plan, result, killed = await rig.run_killed_at(VM, "upgrade-public-ip", {}, boundary)
            assert killed and result.status == "succeeded", result.summary
            upgraded_keeping(rig.emu, VM, pip["properties"]["ipAddress"])
            assert operation_counts(rig.emu)[("put", pip["id"].lower())] == 2
            assert pip_writes(rig.emu, pip["id"])[nic["id"].lower()] == 2


@hands(2)
async def test_the_plan_that_creates_an_nsg_killed_at_any_boundary_resumes_to_one_nsg_in_the_ledger(rigs, hand):
    for boundary in deal(recorded(BARE, "upgrade-public-ip", (), without_nsg).points, hand, 2):
        async with killed_at(rigs, boundary) as rig:
            without_nsg(rig.emu)
            nic, pip = nic_and_pip(rig.emu, BARE)
            nic_writes = pip_writes(rig.emu, pip["id"])[nic["id"].lower()]
            plan, result, killed = await rig.run_killed_at(BARE, "upgrade-public-ip", {}, boundary)
            assert "create-nsg" in plan.keys
            assert killed and result.status == "succeeded", result.summary
            upgraded_keeping(rig.emu, BARE, pip["properties"]["ipAddress"])
            counts = operation_counts(rig.emu)
            assert counts[("put", pip["id"].lower())] == 2 and counts[("put", bare_nsg_id(nic).lower())] == 1
            assert pip_writes(rig.emu, pip["id"])[nic["id"].lower()] == nic_writes + 2
            status, nic = arm_request(rig.emu, "GET", nic["id"])
            assert nic["properties"]["networkSecurityGroup"]["id"].lower() == bare_nsg_id(nic).lower()
            assert [(r.kind, r.state) for r in rig.journal.resources(result.run_id)] == [("nsg", "in-use")]


@pytest.fixture(scope="module")
def slow_emu():
    """An emulator whose NIC writes last a second (10 s of Azure at 10x): long enough for a run
    killed just after ARM accepted one to resume while it still runs."""
    from tests.recovery_support import own_emulator

    emu = own_emulator(acceleration=10)
    yield emu
    emu.stop()


@pytest.mark.parametrize("step", ["disassociate", "associate"])
async def test_a_run_killed_while_its_nic_write_runs_waits_for_it_and_sends_it_once(slow_emu, tmp_path, monkeypatch, step):
    # The IP's association moves only when the NIC's write ends: a resume that read the IP alone
    # took the running write for one never sent and sent it again (a duplicate, or a 409).
    from tests.rescue_support import fresh_rig

    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "3")
    async with fresh_rig(slow_emu, tmp_path / "journal.sqlite3") as rig:
        nic, pip = nic_and_pip(rig.emu, VM)
        plan, _ = await rig.plan(VM, "upgrade-public-ip")
        boundary = ("operation", plan.keys.index(step))
        plan, result, killed = await rig.run_killed_at(VM, "upgrade-public-ip", {}, boundary)
        assert killed and result.status == "succeeded", result.summary
        upgraded_keeping(rig.emu, VM, pip["properties"]["ipAddress"])
        assert pip_writes(rig.emu, pip["id"])[nic["id"].lower()] == 2
        refused = [r for r in emulator_control(rig.emu, "GET", "/_emulator/requests") if r["method"] == "PUT" and r.get("status", 0) >= 400]
        assert refused == []
        waited = [e for e in rig.journal.events(result.run_id) if e["step"] == boundary[1] and e["event"] == "log"]
        assert any(f"{nic['name']} is Updating: waiting for the operation on it to end" in e["message"] for e in waited), waited
