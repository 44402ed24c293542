"""The fault matrix over every write of upgrade-public-ip and reset-vpn: a 429 (ridden out by the
adapter's retry), a 500 on every attempt, and a long-running operation that ends Failed (the NIC
PUTs that disassociate and associate the IP are long-running, as in Azure). Each
fault is armed the moment the runner marks its step running, so it hits that step's write and
nothing before it. A run that fails stops at that step with an honest journal; --resume ends
verified, and no operation is started more often than the fault made necessary."""

from __future__ import annotations

from collections import Counter

import pytest

from backend.recovery import journal as J
from tests.recovery_support import operation_counts
from tests.rescue_support import states
from tests.support import emulator_control
from tests.test_recovery_reset_vpn import connection, set_tunnel, status
from tests.test_recovery_upgrade_ip import nic_and_pip, upgraded_keeping

# (scenario, VM, params, step key, request path it writes (a substring), method, long-running)
WRITES = {
    "static": ("upgrade-public-ip", "rdgw-shared-01", {}, "static", "/publicIPAddresses/rdgw-shared-01-ip", "PUT", True),
    "disassociate": ("upgrade-public-ip", "rdgw-shared-01", {}, "disassociate", "/networkInterfaces/rdgw-shared-01-nic", "PUT", True),
    "upgrade": ("upgrade-public-ip", "rdgw-shared-01", {}, "upgrade", "/publicIPAddresses/rdgw-shared-01-ip", "PUT", True),
    "associate": ("upgrade-public-ip", "rdgw-shared-01", {}, "associate", "/networkInterfaces/rdgw-shared-01-nic", "PUT", True),
    "reset-connection": ("reset-vpn", "payroll-app-01", {}, "reset-connection", "/resetconnection", "POST", True),
    "reset-gateway": ("reset-vpn", "payroll-app-01", {"gateway": True}, "reset-gateway", "/virtualNetworkGateways/vgw-hub-weu/reset", "POST", True),
}
FAULTS = {
    "429": {"status": 429, "retry_after_s": 0, "count": 1},
    "500": {"status": 500, "count": -1},
    "lro-failed": {"lro_result": "Failed", "lro_error": {"code": "InternalServerError", "message": "An error occurred."}, "count": 1},
}
CASES = [(w, f) for w, spec in WRITES.items() for f in FAULTS if f != "lro-failed" or spec[6]]


def clear(emu) -> None:
    emulator_control(emu, "DELETE", "/_emulator/faults")


def ops(emu) -> Counter:
    """Operations started on the public IP, its NIC ("nic-put") and on the VPN connection and gateway, by kind."""
    nic, pip = nic_and_pip(emu, "rdgw-shared-01")
    conn = connection(emu)
    ids = {pip["id"].lower(), conn["id"].lower(), conn["properties"]["virtualNetworkGateway1"]["id"].lower()}
    counts = operation_counts(emu)
    out = Counter(kind for (kind, rid), n in counts.items() for _ in range(n) if rid in ids)
    out["nic-put"] = sum(n for (kind, rid), n in counts.items() if rid == nic["id"].lower() and kind == "put")
    return +out


def ended_well(emu, scenario: str, address: str | None) -> None:
    if scenario == "upgrade-public-ip":
        upgraded_keeping(emu, "rdgw-shared-01", address)
    else:
        assert status(emu) == "Connected"


@pytest.mark.parametrize(("write", "fault_name"), CASES)
async def test_each_new_write_under_each_fault_stops_honestly_and_resumes_to_the_same_end(rig, write, fault_name):
    scenario, vm_name, params, key, path, method, _lro = WRITES[write]
    address = nic_and_pip(rig.emu, "rdgw-shared-01")[1]["properties"].get("ipAddress")
    if key == "reset-gateway":
        set_tunnel(rig.emu, "gateway")  # only a gateway reset brings it back: the gateway step runs
    plan, facts = await rig.plan(vm_name, scenario, params)
    target = plan.keys.index(key)

    def arm(where: str, index: int) -> None:
        if where == "running" and index == target:
            emulator_control(rig.emu, "POST", "/_emulator/faults", dict(FAULTS[fault_name], match=path, method=method))

    from backend.recovery import scenarios

    try:
        result = await rig.runner(vm_name, arm).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
    finally:
        clear(rig.emu)
    baseline = Counter({"put": 2, "nic-put": 2}) if scenario == "upgrade-public-ip" else Counter({"resetconnection": 1, "reset": int(key == "reset-gateway")})
    if fault_name == "429":
        # Retried by the adapter: the run never noticed.
        assert result.status == J.RUN_SUCCEEDED, result.summary
        ended_well(rig.emu, scenario, address)
        assert ops(rig.emu) == +baseline
        return
    assert result.status == J.RUN_FAILED, result.summary
    got = states(result)
    assert got[target] == "failed" and set(got[:target]) <= {"verified", "skipped"} and set(got[target + 1 :]) == {"pending"}, got
    assert f"step {target + 1}" in result.summary
    resumed = await rig.resume(result.run_id, vm_name)
    assert resumed.status == J.RUN_SUCCEEDED, resumed.summary
    ended_well(rig.emu, scenario, address)
    # A 500 started nothing; an operation that ended Failed is started once more, never more.
    extra: Counter = Counter()
    if fault_name == "lro-failed":
        extra[
            {
                "static": "put",
                "upgrade": "put",
                "disassociate": "nic-put",
                "associate": "nic-put",
                "reset-connection": "resetconnection",
                "reset-gateway": "reset",
            }[key]
        ] = 1
    assert ops(rig.emu) == +(baseline + extra), ops(rig.emu)


@pytest.mark.parametrize("fault_name", list(FAULTS))
async def test_the_nsg_create_under_each_fault_stops_honestly_and_resumes_to_one_nsg_in_the_ledger(rig, fault_name):
    """upgrade-public-ip's NSG create (neither the NIC nor its subnet has one) under each fault:
    the ledger never claims an NSG that is not there, and the resumed run creates it once."""
    from backend.recovery import scenarios
    from tests.test_recovery_upgrade_ip import BARE, bare_nsg_id, without_nsg

    without_nsg(rig.emu)
    nic, pip = nic_and_pip(rig.emu, BARE)
    nsg_id = bare_nsg_id(nic)
    plan, facts = await rig.plan(BARE, "upgrade-public-ip")
    target = plan.keys.index("create-nsg")

    def arm(where: str, index: int) -> None:
        if where == "running" and index == target:
            emulator_control(rig.emu, "POST", "/_emulator/faults", dict(FAULTS[fault_name], match=f"/networkSecurityGroups/{BARE}-nsg", method="PUT"))

    try:
        result = await rig.runner(BARE, arm).start(plan, lambda f, p: scenarios.build_plan("upgrade-public-ip", f, p), facts)
    finally:
        clear(rig.emu)
    if fault_name != "429":  # a 429 is ridden out by the adapter's retry
        assert result.status == J.RUN_FAILED, result.summary
        got = states(result)
        assert got[target] == "failed" and set(got[target + 1 :]) == {"pending"}, got
        assert [(r.kind, r.state) for r in rig.journal.resources(result.run_id)] == [("nsg", "creating")]
        assert all(
            d["id"].lower() != nsg_id.lower()
            for d in emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Network/networkSecurityGroups")["resources"]
        )
        result = await rig.resume(result.run_id, BARE)
    assert result.status == J.RUN_SUCCEEDED, result.summary
    upgraded_keeping(rig.emu, BARE, pip["properties"]["ipAddress"])
    assert [(r.kind, r.state) for r in rig.journal.resources(result.run_id)] == [("nsg", "in-use")]
    assert operation_counts(rig.emu)[("put", nsg_id.lower())] == (2 if fault_name == "lro-failed" else 1)  # a failed create is sent again once
