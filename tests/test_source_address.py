"""The operator's source address for fix-nsg, found without traffic: the kernel's address on
the route to the VM is used when it is public, and the plan says where it came from; behind a
NAT (private, carrier-grade NAT, loopback) the plan says in one sentence that the address Azure
sees cannot be known without asking an outside service, and asks for --source-ip. The routing
query is the real one on 127.x targets; public and private answers are given by a route
function of the test's own. The demo keeps its own address."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from backend import source_address
from backend.azure.backend import AzureBackend
from backend.recovery import service
from backend.recovery.plan import PlanError
from backend.settings import ConnectionSettings
from tests.recovery_support import cli_env, reset
from tests.test_recovery_cli import AZTRIAGE, REPO

# emu (this module's own emulator): tests/rescue_fixtures.py

VM = "jump-prod-01"  # the demo's RDP VM that an NSG rule blocks from the internet


@pytest.mark.parametrize(
    "local, kind",
    [
        ("192.168.1.23", "a private address"),
        ("10.20.30.40", "a private address"),
        ("100.72.3.4", "a carrier-grade NAT address"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.10.2", "a link-local address"),
        ("fd12:3456::7", "a private address"),
    ],
)
def test_an_address_behind_nat_is_not_used_and_the_sentence_says_why(local, kind):
    guess = source_address.classify(local, "20.61.7.9")
    assert guess.address is None
    assert guess.origin == (
        f"This machine's address on the route to 20.61.7.9 is {local}, {kind}: Azure sees the address of a NAT in front of it, "
        "which cannot be known without asking an outside service"
    )


@pytest.mark.parametrize("local", ["20.50.1.7", "203.0.114.9", "2a01:111:f100::5"])
def test_a_public_address_on_the_route_is_the_one_azure_sees(local):
    guess = source_address.classify(local, "20.61.7.9")
    assert (guess.address, guess.origin) == (local, "detected: this machine's address on the route to 20.61.7.9")


def test_no_route_says_so():
    guess = source_address.detect("20.61.7.9", route=lambda target: None)
    assert guess.address is None and guess.origin.startswith("This machine has no route to 20.61.7.9")


def test_the_kernel_is_asked_for_the_route_to_a_loopback_vm_and_that_is_not_public():
    # The real query: a UDP socket's connect() and getsockname(), no packet sent.
    local = source_address.route_source("127.0.0.9")
    assert local is not None and local.startswith("127.")
    guess = source_address.detect("127.0.0.9")
    assert guess.address is None and f"is {local}, a loopback address" in guess.origin


def _azure_settings(emu) -> ConnectionSettings:
    """The emulator as any ARM endpoint, not the demo: no guest map, no demo address."""
    return ConnectionSettings(arm_endpoint=emu.endpoint, ca_file=emu.ca_file, auth="none", polling_interval=0.02)


async def _plan(emu, params: dict | None = None):
    backend = AzureBackend(_azure_settings(emu), retry_total=1)
    try:
        vm_id = await service.find_vm(backend, VM)
        plan, facts = await service.make_plan(backend, vm_id, "fix-nsg", params or {})
        return plan, facts
    finally:
        await backend.close()


async def test_outside_the_demo_a_public_address_on_the_route_is_allowed_and_the_plan_says_where_it_came_from(emu, monkeypatch):
    reset(emu)
    monkeypatch.delenv("AZTRIAGE_SOURCE_IP", raising=False)
    asked: list[str] = []

    def route(target: str) -> str:
        asked.append(target)
        return "20.50.1.7"

    monkeypatch.setattr(source_address, "route_source", route)
    plan, facts = await _plan(emu)
    vm_address = next(p.ip_address for n in facts.vm.nics for p in n.public_ips)
    assert asked == [vm_address]  # the route to the VM's own public address
    assert plan.params["source"] == "20.50.1.7"
    assert f"from 20.50.1.7 (detected: this machine's address on the route to {vm_address}) through to {VM}" in plan.summary
    assert any("20.50.1.7" in s.changes for s in plan.steps if s.writes)
    # Given with --source-ip, the address is the operator's: no "detected".
    plan, _ = await _plan(emu, {"source": "198.51.100.4"})
    assert "from 198.51.100.4 through to" in plan.summary and "detected" not in plan.summary


async def test_outside_the_demo_behind_nat_the_plan_asks_for_the_address_in_one_sentence(emu, monkeypatch):
    reset(emu)
    monkeypatch.delenv("AZTRIAGE_SOURCE_IP", raising=False)
    monkeypatch.setattr(source_address, "route_source", lambda target: "192.168.1.23")
    with pytest.raises(PlanError) as refused:
        await _plan(emu)
    message = str(refused.value)
    assert "is 192.168.1.23, a private address" in message and "cannot be known without asking an outside service" in message
    assert message.endswith("give it with --source-ip ADDRESS (or a CIDR range), or set AZTRIAGE_SOURCE_IP")


def test_the_cli_on_a_loopback_route_refuses_in_one_sentence_and_writes_nothing(emu, tmp_path):
    """The real routing query: the VM's address is on 127.x, so this machine's address on the route is loopback."""
    from tests.recovery_support import writes

    reset(emu)
    before = writes(emu)
    env = cli_env(tmp_path / "home", emu)
    env.pop("AZTRIAGE_SOURCE_IP", None)
    connection = ["--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--auth", "none"]
    proc = subprocess.run(
        [*AZTRIAGE, "recover", "--vm", VM, "--scenario", "fix-nsg", "--dry-run", *connection],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "a loopback address: Azure sees the address of a NAT in front of it, which cannot be known without asking an outside service" in line
    assert "--source-ip" in line
    assert writes(emu) == before


async def test_the_demo_keeps_its_own_address_and_says_so(emu, monkeypatch):
    from tests.support import demo_settings

    reset(emu)
    monkeypatch.delenv("AZTRIAGE_SOURCE_IP", raising=False)
    monkeypatch.setattr(source_address, "route_source", lambda target: pytest.fail("the demo asked the kernel for a route"))
    backend = AzureBackend(dataclasses.replace(demo_settings(emu), polling_interval=0.02), retry_total=1)
    try:
        plan, facts = await service.make_plan(backend, await service.find_vm(backend, VM), "fix-nsg", {})
    finally:
        await backend.close()
    demo_address = facts.documents["network"]["detected_source"]
    assert plan.params["source"] == demo_address
    assert f"from {demo_address} (the demo's address for you) through to" in plan.summary
