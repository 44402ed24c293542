"""`aztriage recover --scenario upgrade-public-ip|reset-vpn|disable-nla` as an operator runs them: real
processes, --read-only, the typed name for destructive steps, and real kill -9 (SIGKILL) at every
boundary a run of each plan passes (recorded from the plan itself by tests/kill_points.py, so a
new step or operation is covered by itself), then --resume to the same end with nothing done twice."""

from __future__ import annotations

import pytest

from tests.kill_points import case_points, kill_rounds, recorded
from tests.recovery_support import operation_counts, vm_doc, writes
from tests.test_recovery_cli import one_line_error, runs
from tests.test_recovery_rescue_cli import _kill_at_each, aztriage
from tests.test_recovery_reset_vpn import connection, status
from tests.test_recovery_upgrade_ip import nic_and_pip, upgraded_keeping

UPGRADE = ["recover", "--vm", "rdgw-shared-01", "--scenario", "upgrade-public-ip", "--yes", "--confirm", "rdgw-shared-01"]
RESET_VPN = ["recover", "--vm", "payroll-app-01", "--scenario", "reset-vpn", "--gateway", "--yes", "--confirm", "payroll-app-01"]
DISABLE_NLA = ["recover", "--vm", "rdgw-shared-01", "--scenario", "disable-nla", "--yes"]


def nla_listener(emu) -> tuple[dict, int]:
    """rdgw-shared-01's RDP-Tcp values in the emulator, and how many run commands it was sent."""
    vm_id = vm_doc(emu, "rdgw-shared-01")["doc"]["id"]
    values = dict(emu.store.guest_facts(vm_id).get("rdp_security") or {"UserAuthentication": 1, "SecurityLayer": 2})
    return values, operation_counts(emu)[("runCommand", vm_id.lower())]


def test_upgrade_public_ip_from_the_cli_needs_the_name_refuses_read_only_and_keeps_the_address(emu, home):
    address = nic_and_pip(emu, "rdgw-shared-01")[1]["properties"]["ipAddress"]
    before = writes(emu)
    shown = aztriage(emu, home, "recover", "--vm", "rdgw-shared-01", "--scenario", "upgrade-public-ip", "--dry-run")
    assert shown.returncode == 0 and "retired on 30 September 2025" in shown.stdout and "[DESTRUCTIVE] Disassociate" in shown.stdout
    read_only = aztriage(emu, home, *UPGRADE, "--read-only")
    assert read_only.returncode != 0 and "read-only" in one_line_error(read_only)
    unnamed = aztriage(emu, home, "recover", "--vm", "rdgw-shared-01", "--scenario", "upgrade-public-ip", "--yes")
    assert unnamed.returncode == 2 and "this plan has destructive steps: add --confirm rdgw-shared-01" in one_line_error(unnamed)
    assert writes(emu) == before
    done = aztriage(emu, home, *UPGRADE)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert f"RDP answers on {address}:3389" in done.stdout
    upgraded_keeping(emu, "rdgw-shared-01", address)


def test_reset_vpn_from_the_cli_brings_the_connection_back(emu, home):
    done = aztriage(emu, home, "recover", "--vm", "payroll-app-01", "--scenario", "reset-vpn", "--yes")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "cn-hub-to-onprem-amsterdam is Connected" in done.stdout
    assert status(emu) == "Connected"
    wrong = aztriage(emu, home, "recover", "--vm", "payroll-app-01", "--scenario", "resize", "--gateway")
    assert wrong.returncode == 2 and "--connection and --gateway only apply to --scenario reset-vpn" in one_line_error(wrong)


def test_disable_nla_from_the_cli_says_it_weakens_security_and_turns_nla_off(emu, home):
    shown = aztriage(emu, home, "recover", "--vm", "rdgw-shared-01", "--scenario", "disable-nla", "--dry-run")
    assert shown.returncode == 0 and "WEAKENS SECURITY" in shown.stdout and "enablecredsspsupport:i:0" in shown.stdout
    linux = aztriage(emu, home, "recover", "--vm", "build-lnx-01", "--scenario", "disable-nla", "--yes")
    assert linux.returncode == 2 and "NLA is a Windows Remote Desktop setting" in one_line_error(linux)
    done = aztriage(emu, home, *DISABLE_NLA)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "NLA is off" in done.stdout
    assert nla_listener(emu) == ({"UserAuthentication": 0, "SecurityLayer": 1}, 1)


@pytest.fixture(scope="module")
def recorded_steps():
    return {
        "upgrade-public-ip": recorded("rdgw-shared-01", "upgrade-public-ip").steps,
        "reset-vpn": recorded("payroll-app-01", "reset-vpn", (("gateway", True),)).steps,
        "disable-nla": recorded("rdgw-shared-01", "disable-nla").steps,
    }


CASES = {"upgrade-public-ip": 2, "reset-vpn": 1, "disable-nla": 1}


@pytest.mark.parametrize("scenario, case", [(s, n) for s, count in CASES.items() for n in range(count)], ids=lambda v: str(v + 1) if isinstance(v, int) else v)
def test_killed_with_sigkill_at_every_boundary_resumes_to_the_same_end(emu, home, tmp_path, recorded_steps, scenario, case):
    points = case_points(recorded_steps[scenario], case, CASES[scenario])
    for this_home in kill_rounds(emu, points, home, tmp_path):
        if scenario == "upgrade-public-ip":
            nic, pip = nic_and_pip(emu, "rdgw-shared-01")
            _kill_at_each(emu, this_home, UPGRADE, "rdgw-shared-01", points)
            upgraded_keeping(emu, "rdgw-shared-01", pip["properties"]["ipAddress"])
            assert operation_counts(emu)[("put", pip["id"].lower())] == 2  # Static, then Standard: nothing twice
        elif scenario == "disable-nla":
            _kill_at_each(emu, this_home, DISABLE_NLA, "rdgw-shared-01", points)
            assert nla_listener(emu) == ({"UserAuthentication": 0, "SecurityLayer": 1}, 1)  # sent once
        else:
            _kill_at_each(emu, this_home, RESET_VPN, "payroll-app-01", points)
            assert status(emu) == "Connected"
            conn = connection(emu)
            counts = operation_counts(emu)
            assert counts[("resetconnection", conn["id"].lower())] == 1
            assert counts[("reset", conn["properties"]["virtualNetworkGateway1"]["id"].lower())] == 0  # not needed: skipped
        (listed,) = runs(emu, this_home)
        assert listed["status"] == "succeeded"
