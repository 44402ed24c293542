"""disable-nla end to end on the emulator: a Windows VM's RDP listener requires NLA (a client
that does not offer CredSSP is refused with HYBRID_REQUIRED_BY_SERVER, as the probe sees it);
the run turns NLA off by run command, says that it weakens security, and ends with the same
client taken; undo puts back the values the script found, and NLA is required again. A Linux
VM is refused with the reason; a second run finds nothing to do; a run killed at every
boundary ends the same, the command sent once."""

from __future__ import annotations

import pytest

from backend.probe import PROTOCOL_HYBRID, PROTOCOL_SSL, ProbeTarget, probe_one
from backend.recovery import scenarios
from backend.recovery.plan import PlanError
from backend.recovery.scenarios.disable_nla import restore_script, values_before
from backend.recovery.steps import probe_options
from backend.recovery.undo import undo
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import operation_counts, vm_doc
from tests.rescue_support import killed_at_each, states

VM = "rdgw-shared-01"


def listener(emu) -> dict:
    """The guest's RDP-Tcp values as the emulator keeps them (Windows' defaults when never set)."""
    facts = emu.store.guest_facts(vm_doc(emu, VM)["doc"]["id"])
    return dict(facts.get("rdp_security") or {"UserAuthentication": 1, "SecurityLayer": 2})


async def rdp_answer(rig, offered: int) -> str:
    """What the VM's RDP listener answers a client that offers `offered`, through the real probe."""
    facts = await rig.backend.vm_documents(vm_doc(rig.emu, VM)["doc"]["id"])
    from backend.recovery.facts import VmFacts

    vm = VmFacts.from_documents(facts).vm
    address = next(p.ip_address for n in vm.nics for p in n.public_ips if p.ip_address)
    options = await probe_options(rig.backend.settings)
    import dataclasses

    result = await probe_one(ProbeTarget(address, 3389, "rdp", vm=VM), dataclasses.replace(options, rdp_protocols=offered))
    assert result.answered == "rdp", result
    return result.banner or ""


def run_commands(emu) -> int:
    vm_id = vm_doc(emu, VM)["doc"]["id"].lower()
    return operation_counts(emu)[("runCommand", vm_id)]


async def test_nla_is_turned_off_with_a_warning_and_undo_turns_it_back_on(rig):
    assert "HYBRID_REQUIRED_BY_SERVER" in await rdp_answer(rig, PROTOCOL_SSL)
    assert "CredSSP (NLA)" in await rdp_answer(rig, PROTOCOL_SSL | PROTOCOL_HYBRID)  # what the Connectivity probe sees
    plan, _ = await rig.plan(VM, "disable-nla")
    assert plan.keys == ["preflight", "disable-nla", "reach-rdp"]
    assert any(w.startswith("WEAKENS SECURITY") for w in plan.warnings)
    assert "weakens security" in plan.steps[1].title and plan.steps[1].undo_run is not None
    assert any("enablecredsspsupport:i:0" in w for w in plan.warnings)
    plan, result = await rig.run(VM, "disable-nla")
    assert result.status == "succeeded", result.summary
    assert states(result) == ["verified", "verified", "verified"]
    assert "NLA is off" in result.record.steps[1].message
    assert listener(rig.emu) == {"UserAuthentication": 0, "SecurityLayer": 1}
    assert "security TLS" in await rdp_answer(rig, PROTOCOL_SSL)  # a client without CredSSP reaches the sign-in screen
    assert rig.journal.step(result.run_id, 1).outputs["before"] == [1, 2]

    done = await undo(rig.backend, rig.journal, result.run_id)
    assert [ok for _, _, ok in done] == [True], done
    assert "NLA is required again" in done[0][1]
    assert listener(rig.emu) == {"UserAuthentication": 1, "SecurityLayer": 2}
    assert "HYBRID_REQUIRED_BY_SERVER" in await rdp_answer(rig, PROTOCOL_SSL)


async def test_a_second_run_finds_nla_off_and_sends_nothing(rig):
    await rig.run(VM, "disable-nla")
    sent = run_commands(rig.emu)
    _, again = await rig.run(VM, "disable-nla")
    assert again.status == "succeeded" and states(again)[1] == "skipped"
    assert "NLA is off" in again.record.steps[1].message
    assert run_commands(rig.emu) == sent


async def test_linux_is_refused_with_the_reason(rig):
    with pytest.raises(PlanError, match="NLA is a Windows Remote Desktop setting; tools-lnx-shared-01 runs Linux"):
        await rig.plan("tools-lnx-shared-01", "disable-nla")
    vm = vm_doc(rig.emu, "tools-lnx-shared-01")
    assert vm is not None
    from backend.recovery.facts import VmFacts

    facts = VmFacts.from_documents(await rig.backend.vm_documents(vm["doc"]["id"]))
    reasons = {s.id: reason for s, reason, _ in scenarios.choices(facts.vm)}
    assert reasons["disable-nla"].startswith("NLA is a Windows Remote Desktop setting")


def test_undo_puts_back_only_values_read_from_the_guest_and_checked():
    assert values_before("before: UserAuthentication=1 SecurityLayer=2\nafter: UserAuthentication=0 SecurityLayer=1") == (1, 2)
    assert values_before("before: UserAuthentication=1; rm -rf / SecurityLayer=2") is None
    assert "-Value 2" in restore_script(1, 2)[2]
    with pytest.raises(ValueError):
        restore_script(1, 7)


KILL_TESTS = 2


def nla_off_by_one_command(rig, result) -> None:
    assert result.status == "succeeded", result.summary
    assert listener(rig.emu) == {"UserAuthentication": 0, "SecurityLayer": 1}
    assert run_commands(rig.emu) == 1


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_without_duplicates(rigs, hand):
    boundaries = recorded(VM, "disable-nla", ()).points
    await killed_at_each(rigs, deal(boundaries, hand, KILL_TESTS), VM, "disable-nla", {}, nla_off_by_one_command)
