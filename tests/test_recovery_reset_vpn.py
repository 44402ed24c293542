"""reset-vpn end to end on the emulator: the demo's payroll-app-01 has no public path and its
hub's site-to-site connection is NotConnected (a stale security association): the verdict
recommends reset-vpn, a connection reset brings it back and the run ends verified on its status.
A gateway that is stuck needs the heavier gateway reset (DESTRUCTIVE, typed name, every connection
on it interrupted, said in the plan); an on-premises device that is down is named when neither
helps. A run killed at every boundary (in process) ends the same, no reset sent twice."""

from __future__ import annotations

import pytest

from backend.recovery import scenarios
from backend.recovery.plan import Kind
from backend.recovery.runner import Runner, RunRefused
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import operation_counts, put_lock, writes
from tests.rescue_support import killed_at, states
from tests.support import emulator_control

VM = "payroll-app-01"
CONNECTION = "cn-hub-to-onprem-amsterdam"


def connection(emu) -> dict:
    for doc in emulator_control(emu, "GET", "/_emulator/resources?type=Microsoft.Network/connections")["resources"]:
        if doc["name"] == CONNECTION:
            return doc
    raise KeyError(CONNECTION)


def status(emu) -> str:
    return connection(emu)["properties"]["connectionStatus"]


def set_tunnel(emu, fact: str) -> None:
    """Why the connection is down (backend/emulator/netpath_ops.py), as another estate would say it."""
    emu.store.own_guest(connection(emu)["id"])["tunnel"] = fact


def resets(emu) -> tuple[int, int]:
    conn = connection(emu)
    counts = operation_counts(emu)
    return counts[("resetconnection", conn["id"].lower())], counts[("reset", conn["properties"]["virtualNetworkGateway1"]["id"].lower())]


async def test_the_verdict_recommends_it_and_a_connection_reset_brings_the_vpn_back(rig):
    from datetime import UTC, datetime

    from backend import connectivity
    from backend.verdict import VerdictBook

    inventory = await rig.backend.inventory(instance_views=0)
    vm = next(v for v in inventory.vms if v.name == VM)
    report = await connectivity.run(rig.backend, inventory, [vm], connectivity.Request(timeout=1.0, attempts=1))
    book = VerdictBook()
    book.record_report(report, [vm], datetime.now(UTC))
    verdict = book.verdict(vm, inventory, datetime.now(UTC))
    assert (verdict.id, verdict.scenario) == ("no-public-path", "reset-vpn")
    assert f"IPsec connection {CONNECTION} to lgw-onprem-amsterdam is NotConnected" in verdict.next_step

    plan, _ = await rig.plan(VM, "reset-vpn")
    assert plan.keys == ["vpn-status", "reset-connection", "vpn-connected"]
    assert not plan.destructive and plan.blockers == ()
    assert any("Azure takes about a minute" in w for w in plan.warnings)
    assert any("--gateway" in w and "interrupts every connection" in w for w in plan.warnings)
    assert plan.details == ((f"VPN connection {CONNECTION}", "NotConnected", "Connected"),)
    plan, result = await rig.run(VM, "reset-vpn")
    assert result.status == "succeeded", result.summary
    assert states(result) == ["verified"] * 3
    assert status(rig.emu) == "Connected"
    assert "payroll-app-01 (10.0.1.4) can be reached over it from 192.168.0.0/16" in result.record.steps[-1].message
    assert resets(rig.emu) == (1, 0)
    # Connected now: nothing left to reset.
    plan, _ = await rig.plan(VM, "reset-vpn")
    assert plan.blockers == ("every VPN connection serving vnet-hub-weu is Connected: a reset would only interrupt it",)


async def test_a_stuck_gateway_fails_the_connection_reset_with_the_next_option_and_the_gateway_reset_fixes_it(rig):
    set_tunnel(rig.emu, "gateway")
    plan, result = await rig.run(VM, "reset-vpn")
    assert result.status == "failed"
    assert "is still NotConnected after the reset: reset its gateway vgw-hub-weu (scenario reset-vpn with the gateway option)" in result.summary
    plan, facts = await rig.plan(VM, "reset-vpn", {"gateway": True})
    assert plan.keys == ["vpn-status", "reset-connection", "reset-gateway", "vpn-connected"]
    gateway = plan.steps[2]
    assert gateway.kind is Kind.DESTRUCTIVE and "up to 30-45 minutes" in gateway.warnings[0] and "point-to-site" in gateway.warnings[0]
    before = writes(rig.emu)
    with pytest.raises(RunRefused, match=r"confirm by typing the VM's name \(payroll-app-01\)"):
        await rig.runner(None).start(plan, lambda f, p: scenarios.build_plan("reset-vpn", f, p), facts)
    assert writes(rig.emu) == before
    plan, result = await rig.run(VM, "reset-vpn", {"gateway": True})
    assert result.status == "succeeded", result.summary
    assert "still NotConnected after the connection reset: the gateway reset follows" in result.record.steps[1].message
    assert status(rig.emu) == "Connected"
    assert resets(rig.emu) == (2, 1)


async def test_with_the_gateway_option_an_unneeded_gateway_reset_is_skipped(rig):
    plan, result = await rig.run(VM, "reset-vpn", {"gateway": True})
    assert result.status == "succeeded", result.summary
    assert states(result) == ["verified", "verified", "skipped", "verified"]
    assert resets(rig.emu) == (1, 0)


async def test_an_on_premises_device_that_is_down_is_named_when_neither_reset_helps(rig):
    set_tunnel(rig.emu, "peer-down")
    plan, result = await rig.run(VM, "reset-vpn", {"gateway": True})
    assert result.status == "failed"
    assert "check the on-premises VPN device lgw-onprem-amsterdam at 127.10.250.1 (192.168.0.0/16)" in result.summary
    assert status(rig.emu) == "NotConnected"


async def test_a_read_only_lock_on_the_connection_stops_it_before_any_reset(rig):
    put_lock(rig.emu, connection(rig.emu)["id"], "freeze")  # on the connection only: the VM itself is not locked
    plan, result = await rig.run(VM, "reset-vpn")
    assert plan.blockers == ()
    assert result.status == "failed" and "a ReadOnly lock ('freeze') covers the connection" in result.summary
    assert resets(rig.emu) == (0, 0)


async def test_read_only_shows_both_resets_disabled_and_sends_none(rig):
    from dataclasses import replace

    from backend.azure.backend import AzureBackend
    from backend.recovery import service

    backend = AzureBackend(replace(rig.backend.settings, read_only=True), retry_total=0)
    before = writes(rig.emu)
    try:
        plan, facts = await service.make_plan(backend, await service.find_vm(backend, VM), "reset-vpn", {"gateway": True})
        shown = plan.to_json(read_only=True)
        assert [(s["key"], s.get("disabled", False)) for s in shown["steps"]] == [
            ("vpn-status", False),
            ("reset-connection", True),
            ("reset-gateway", True),
            ("vpn-connected", False),
        ]
        with pytest.raises(RunRefused, match="read-only"):
            await Runner(backend, rig.journal, confirm_name=VM).start(plan, lambda f, p: scenarios.build_plan("reset-vpn", f, p), facts)
    finally:
        await backend.close()
    assert writes(rig.emu) == before and resets(rig.emu) == (0, 0)


KILL_TESTS = 3


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_without_duplicates(rigs, hand):
    for boundary in deal(recorded(VM, "reset-vpn", (("gateway", True),)).points, hand, KILL_TESTS):
        async with killed_at(rigs, boundary) as rig:
            plan, result, killed = await rig.run_killed_at(VM, "reset-vpn", {"gateway": True}, boundary)
            assert killed and result.status == "succeeded", result.summary
            assert status(rig.emu) == "Connected"
            assert resets(rig.emu) == (1, 0)


def wedged_gateway(emu) -> None:
    """The hub gateway itself is stuck: only a gateway reset brings the connection back."""
    set_tunnel(emu, "gateway")


@hands(KILL_TESTS)
async def test_the_gateway_reset_killed_at_any_boundary_resumes_to_one_reset_of_each(rigs, hand):
    # The recorded run passes the gateway reset's own boundaries (its operation in flight
    # among them): the connection is NotConnected after the connection reset, so it runs.
    points = recorded(VM, "reset-vpn", (("gateway", True),), wedged_gateway).points
    assert ("operation", 2) in points  # reset-gateway, the third step
    for boundary in deal(points, hand, KILL_TESTS):
        async with killed_at(rigs, boundary) as rig:
            wedged_gateway(rig.emu)
            plan, result, killed = await rig.run_killed_at(VM, "reset-vpn", {"gateway": True}, boundary)
            assert killed and result.status == "succeeded", result.summary
            assert status(rig.emu) == "Connected"
            assert resets(rig.emu) == (1, 1)
