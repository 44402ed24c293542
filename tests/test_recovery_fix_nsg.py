"""fix-nsg end to end on the emulator, through the real adapter (no mocks): the demo's
two blocked VMs become reachable after the run and unreachable again after
`runs --release` (or the run's undo); the destructive option deletes the blocking rule
and its undo puts it back as captured; the plan refuses what would be shadowed anyway,
a wide-open source without the typed phrase, and read-only; a run killed at every
boundary its plan passes (recorded from the plan, tests/kill_points.py) or stopped by a
fault (429, 500, a failed long-running operation) on each of its writes resumes to the
same end, with each rule written once and every rule it made in its ledger."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from backend import connectivity
from backend.lastknown import LastKnownStore
from backend.recovery import journal as J
from backend.recovery import scenarios
from backend.recovery.plan import Kind
from backend.recovery.release import release, release_plan
from backend.recovery.runner import Runner, RunRefused
from backend.recovery.scenarios.fix_nsg import wide_confirmation
from backend.recovery.undo import UndoRefused, undo
from tests.kill_points import recorded
from tests.recovery_support import arm_request, resources
from tests.rescue_support import states
from tests.support import emulator_control

# emu (this module's own emulator), before, rigs and rig: tests/rescue_fixtures.py

# The demo's two NSG stories: (VM, the NSG that denies, the rule that denies, its priority, the port).
STORIES = {
    "jump-prod-01": ("nsg-jump-prod", "Deny-RDP-Incident-4711", 200, 3389),
    "tools-lnx-shared-01": ("nsg-snet-tools-shared", "Deny-SSH-Inbound", 110, 22),
}


def nsg_doc(emu, name: str) -> dict[str, Any]:
    (doc,) = [d for d in resources(emu, "Microsoft.Network/networkSecurityGroups") if d["name"] == name]
    return doc


def rules(emu, nsg: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r["properties"] for r in nsg_doc(emu, nsg)["properties"].get("securityRules") or ()}


def rule_writes(emu, method: str) -> Counter:
    return Counter(
        r["path"].lower()
        for r in emulator_control(emu, "GET", "/_emulator/requests")
        if r["method"] == method and "/securityrules/" in r["path"].lower() and r.get("status", 0) < 300
    )


async def verdict(rig, vm_name: str) -> Any:
    """What the Connectivity pane says about the VM now (a probe and the diagnosis)."""
    inventory = await rig.backend.inventory(instance_views=0)
    env = await connectivity.environment(rig.backend.settings, inventory)
    vms = connectivity.choose_vms(inventory, [vm_name])
    report = await connectivity.run(
        rig.backend,
        inventory,
        vms,
        connectivity.Request(timeout=0.5, attempts=1),
        env=env,
        store=LastKnownStore(rig.journal.path.parent / "lastknown.json", scope="t"),
    )
    (diagnosis,) = report.diagnoses
    return diagnosis


def put_rule(emu, nsg: str, name: str, **props: Any) -> None:
    """A rule written by someone else (another operator, a tool): inbound TCP, deny unless said."""
    body = {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationPortRange": "22",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*",
        "access": "Deny",
        "direction": "Inbound",
    } | props
    status, _ = arm_request(emu, "PUT", f"{nsg_doc(emu, nsg)['id']}/securityRules/{name}", {"properties": body})
    assert status in (200, 201), status
    # The write is long-running, as in Azure: the rule is there once it reads Succeeded (a test
    # that reads the rules at once could see it Updating, and later Succeeded, as a change).
    deadline = time.monotonic() + 10
    while rules(emu, nsg)[name].get("provisioningState") != "Succeeded":
        assert time.monotonic() < deadline, f"rule {name} did not finish"
        time.sleep(0.05)


def fault(emu, **spec: Any) -> None:
    emulator_control(emu, "POST", "/_emulator/faults", spec)


# --- the demo story ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vm_name", list(STORIES))
async def test_the_blocked_vm_answers_after_fix_nsg_and_is_blocked_again_after_release(rig, vm_name):
    nsg, blocking, priority, port = STORIES[vm_name]
    assert (await verdict(rig, vm_name)).verdict == "blocked-by-nsg"
    before = rules(rig.emu, nsg)
    plan, result = await rig.run(vm_name, "fix-nsg")
    assert result.status == J.RUN_SUCCEEDED, result.summary
    assert [s.kind for s in plan.steps] == [Kind.CHECK, Kind.CHANGE, Kind.CHECK] and not plan.destructive
    # The effect on the NSG's other traffic: one source, one port, one destination; the deny still decides for the rest.
    why = plan.steps[1].why
    assert f"Only TCP {port} from 192.88.99.10 to " in why and f"{blocking} (priority {priority}) still decides for every other source" in why
    assert "no other VM is opened" in why or "is not opened" in why
    run_id = result.run_id
    after = rules(rig.emu, nsg)
    (added,) = set(after) - set(before)
    made = after[added]
    # Above the blocking rule, for exactly the operator's address and the port, named and described
    # so a person sees which run made it and until when.
    assert added == f"aztriage-{run_id}-allow-{port}" and made["priority"] == priority - 1
    assert (made["access"], made["sourceAddressPrefix"], made["destinationPortRange"]) == ("Allow", "192.88.99.10", str(port))
    assert f"aztriage run {run_id}" in made["description"] and " until 20" in made["description"] and len(made["description"]) <= 140
    assert {k: v for k, v in after.items() if k != added} == before  # nothing else in the NSG changed
    (ledger,) = rig.journal.resources(run_id)
    assert (ledger.kind, ledger.state, ledger.resource_id.rsplit("/", 1)[-1]) == ("security-rule", "keep", added)
    assert (await verdict(rig, vm_name)).verdict == "reachable"

    _, items = release_plan(rig.journal, run_id)
    assert [(i.kind, i.action) for i in items] == [("security-rule", "delete")]
    done = await release(rig.backend, rig.journal, run_id)
    assert [(text, ok) for _, text, ok in done] == [("deleted", True)]
    assert rules(rig.emu, nsg) == before
    assert rig.journal.resources(run_id)[0].state == "released"
    blocked_again = await verdict(rig, vm_name)
    assert blocked_again.verdict == "blocked-by-nsg" and blocking in blocked_again.summary


async def test_a_deny_in_both_the_subnet_and_the_nic_nsg_gets_a_rule_in_each_and_release_deletes_both(rig):
    from tests.recovery_support import vm_doc

    vm_name = "tools-lnx-shared-01"
    subnet_nsg, _, _, port = STORIES[vm_name]
    nic_id = vm_doc(rig.emu, vm_name)["doc"]["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    status, nic = arm_request(rig.emu, "GET", nic_id)
    assert status == 200
    nic_nsg = nic["properties"]["networkSecurityGroup"]["id"].rsplit("/", 1)[-1]
    put_rule(rig.emu, nic_nsg, "Deny-SSH-Nic", priority=150)
    before = {name: rules(rig.emu, name) for name in (subnet_nsg, nic_nsg)}
    plan, result = await rig.run(vm_name, "fix-nsg")
    assert [k for k in plan.keys if k.startswith("allow-")] == ["allow-subnet", "allow-nic"]
    assert result.status == J.RUN_SUCCEEDED, result.summary  # SSH answers through both
    made = {name: set(rules(rig.emu, name)) - set(before[name]) for name in before}
    assert made == {subnet_nsg: {f"aztriage-{result.run_id}-allow-{port}"}, nic_nsg: {f"aztriage-{result.run_id}-allow-{port}"}}
    assert rules(rig.emu, nic_nsg)[f"aztriage-{result.run_id}-allow-{port}"]["priority"] == 149
    assert sorted(r.state for r in rig.journal.resources(result.run_id)) == ["keep", "keep"]
    done = await release(rig.backend, rig.journal, result.run_id)
    assert [(text, ok) for _, text, ok in done] == [("deleted", True), ("deleted", True)]
    assert {name: rules(rig.emu, name) for name in before} == before


async def test_release_deletes_only_the_rules_the_run_made(rig):
    nsg, _, _, _ = STORIES["jump-prod-01"]
    _, result = await rig.run("jump-prod-01", "fix-nsg")
    (made,) = [n for n in rules(rig.emu, nsg) if n.startswith("aztriage-")]
    # Someone edits the rule's description: it no longer says it is this run's, so it is kept.
    body = {"properties": dict(rules(rig.emu, nsg)[made], description="kept by the network team")}
    body["properties"].pop("provisioningState")
    nsg_id = nsg_doc(rig.emu, nsg)["id"]
    status, _ = arm_request(rig.emu, "PUT", f"{nsg_id}/securityRules/{made}", body)
    assert status in (200, 201)
    deletes = sum(rule_writes(rig.emu, "DELETE").values())
    done = await release(rig.backend, rig.journal, result.run_id)
    assert [ok for _, _, ok in done] == [False] and "no longer says it was made by run" in done[0][1]
    assert made in rules(rig.emu, nsg) and sum(rule_writes(rig.emu, "DELETE").values()) == deletes


async def test_the_runs_undo_deletes_the_rule_it_made(rig):
    nsg, _, _, _ = STORIES["tools-lnx-shared-01"]
    before = rules(rig.emu, nsg)
    _, result = await rig.run("tools-lnx-shared-01", "fix-nsg")
    assert len(rules(rig.emu, nsg)) == len(before) + 1
    done = await undo(rig.backend, rig.journal, result.run_id)
    assert [ok for _, _, ok in done] == [True] and "deleted" in done[0][1]
    assert rules(rig.emu, nsg) == before
    assert rig.journal.resources(result.run_id)[0].state == "deleted"
    assert any(e["event"] == "undone" for e in rig.journal.events(result.run_id))


# --- the destructive option ------------------------------------------------------------------------------


async def test_disabling_the_blocking_rule_needs_the_typed_name_and_undo_restores_it(rig):
    nsg, blocking, _, _ = STORIES["jump-prod-01"]
    before = rules(rig.emu, nsg)
    plan, facts = await rig.plan("jump-prod-01", "fix-nsg", {"disable_rule": True})
    assert plan.destructive and not plan.blockers
    (step,) = [s for s in plan.steps if s.kind is Kind.DESTRUCTIVE]
    # The effect on the NSG's other traffic: every source, and what decides after it.
    assert "for every source, not only yours" in step.why and "Allow-RDP (priority 300) decides port 3389 from the internet: allowed" in step.why
    assert "INC-4711" in step.warnings[0]
    with pytest.raises(RunRefused, match="typing the VM's name"):
        await Runner(rig.backend, rig.journal).start(plan, lambda f, p: scenarios.build_plan("fix-nsg", f, p), facts)
    assert rules(rig.emu, nsg) == before

    _, result = await rig.run("jump-prod-01", "fix-nsg", {"disable_rule": True})
    assert result.status == J.RUN_SUCCEEDED, result.summary
    assert blocking not in rules(rig.emu, nsg)
    assert (await verdict(rig, "jump-prod-01")).verdict == "reachable"
    assert rig.journal.resources(result.run_id) == []  # nothing was created: nothing to release

    done = await undo(rig.backend, rig.journal, result.run_id)
    assert [ok for _, _, ok in done] == [True] and "restored" in done[0][1]
    restored = rules(rig.emu, nsg)
    assert restored == before  # as captured: priority, source, ports, description
    assert (await verdict(rig, "jump-prod-01")).verdict == "blocked-by-nsg"


async def test_disabling_a_rule_that_another_rule_backs_up_is_refused_as_shadowed(rig):
    # tools-lnx-shared-01: with Deny-SSH-Inbound gone, its subnet NSG still denies SSH by default.
    writes = sum(rule_writes(rig.emu, "DELETE").values())
    plan, _ = await rig.plan("tools-lnx-shared-01", "fix-nsg", {"disable_rule": True})
    assert plan.blockers and "would be shadowed" in plan.blockers[0] and "DenyAllInBound (priority 65500)" in plan.blockers[0]
    with pytest.raises(RunRefused, match="shadowed"):
        await rig.run("tools-lnx-shared-01", "fix-nsg", {"disable_rule": True})
    assert sum(rule_writes(rig.emu, "DELETE").values()) == writes


async def test_an_allow_rule_that_cannot_go_above_the_deny_is_refused(rig):
    put_rule(rig.emu, STORIES["tools-lnx-shared-01"][0], "Deny-SSH-First", priority=100)
    plan, _ = await rig.plan("tools-lnx-shared-01", "fix-nsg")
    assert plan.blockers and "no priority is free above rule Deny-SSH-First (priority 100)" in plan.blockers[0]


async def test_a_range_partly_denied_by_a_rule_above_is_allowed_above_every_deny_it_meets(rig):
    # A CIDR: the evaluator is asked about every part of the range a rule names, so a deny that
    # covers only part of it is seen, and the allow rule goes above it too (or the plan is refused).
    nsg = STORIES["tools-lnx-shared-01"][0]
    put_rule(rig.emu, nsg, "Deny-Partner", priority=105, sourceAddressPrefix="192.88.99.64/26")
    plan, _ = await rig.plan("tools-lnx-shared-01", "fix-nsg", {"source": "192.88.99.0/24"})
    (allow,) = [s for s in plan.steps if s.key == "allow-subnet"]
    assert "priority 104," in allow.title and "Deny-Partner (priority 105)" in allow.why
    # With no room above that deny, the same range is refused.
    for priority in range(100, 105):
        put_rule(rig.emu, nsg, f"Other-{priority}", priority=priority, sourceAddressPrefix="198.51.100.1")
    plan, _ = await rig.plan("tools-lnx-shared-01", "fix-nsg", {"source": "192.88.99.0/24"})
    assert plan.blockers and "no priority is free above rule Deny-Partner (priority 105)" in plan.blockers[0]


# --- the source ---------------------------------------------------------------------------------------------


async def test_a_wide_open_source_needs_the_typed_phrase(rig):
    nsg, _, _, port = STORIES["jump-prod-01"]
    phrase = wide_confirmation(port)
    for source in ("*", "Internet", "0.0.0.0/0"):
        plan, _ = await rig.plan("jump-prod-01", "fix-nsg", {"source": source})
        assert plan.blockers and f"'{phrase}'" in plan.blockers[0] and "every address on the internet" in plan.blockers[0]
    plan, _ = await rig.plan("jump-prod-01", "fix-nsg", {"source": "*", "wide_confirmed": "yes"})
    assert plan.blockers
    plan, result = await rig.run("jump-prod-01", "fix-nsg", {"source": "*", "wide_confirmed": phrase})
    assert not plan.blockers and any("every address on the internet" in w for s in plan.steps for w in s.warnings)
    assert result.status == J.RUN_SUCCEEDED, result.summary
    (made,) = [r for n, r in rules(rig.emu, nsg).items() if n.startswith("aztriage-")]
    assert made["sourceAddressPrefix"] == "*"


async def test_bad_sources_are_one_sentence(rig):
    from backend.recovery.plan import PlanError

    with pytest.raises(PlanError, match="neither an IP address, a CIDR range"):
        await rig.plan("jump-prod-01", "fix-nsg", {"source": "my-laptop"})
    with pytest.raises(PlanError, match="1 to 72 hours"):
        await rig.plan("jump-prod-01", "fix-nsg", {"hours": 0})


async def test_a_source_the_nsg_already_admits_is_not_planned(rig):
    plan, _ = await rig.plan("web-prod-01", "fix-nsg")
    assert plan.blockers and "no NSG denies" in plan.blockers[0] and "cause is elsewhere" in plan.blockers[0]


async def test_read_only_shows_the_plan_disabled_and_writes_nothing(rig, emu):
    from dataclasses import replace

    from backend.azure.backend import AzureBackend

    backend = AzureBackend(replace(rig.backend.settings, read_only=True), retry_total=0)
    try:
        from backend.recovery import service

        vm_id = await service.find_vm(backend, "jump-prod-01")
        plan, facts = await service.make_plan(backend, vm_id, "fix-nsg", {})
        shown = plan.to_json(read_only=True)
        assert [s.get("disabled", False) for s in shown["steps"]] == [False, True, False]
        with pytest.raises(RunRefused, match="read-only"):
            await Runner(backend, rig.journal).start(plan, lambda f, p: scenarios.build_plan("fix-nsg", f, p), facts)
    finally:
        await backend.close()
    assert sum(rule_writes(emu, "PUT").values()) == 0


# --- faults and kills on every write -------------------------------------------------------------------------

FAULTS = {
    "429": dict(status=429, retry_after_s=0, count=1),
    "500": dict(status=500, count=-1),
    "lro-failed": dict(lro_result="Failed", lro_error={"code": "InternalServerError", "message": "The rule could not be written."}),
}
WRITES = {"allow": ("jump-prod-01", {}, "PUT"), "disable": ("jump-prod-01", {"disable_rule": True}, "DELETE")}


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_fault_on_each_write_stops_honestly_and_resumes_to_one_rule(rig, write, name):
    vm_name, params, method = WRITES[write]
    nsg, blocking, _, _ = STORIES[vm_name]
    fault(rig.emu, match="/securityRules/", method=method, **FAULTS[name])
    plan, result = await rig.run(vm_name, "fix-nsg", params)
    emulator_control(rig.emu, "DELETE", "/_emulator/faults")
    if name == "429":  # ridden out by the adapter's retry
        assert result.status == J.RUN_SUCCEEDED, result.summary
    else:
        assert result.status == J.RUN_FAILED and states(result) == ["verified", "failed", "pending"], states(result)
        assert "step 2" in result.summary
        if write == "allow":
            (ledger,) = rig.journal.resources(result.run_id)
            assert ledger.state == "not-created"  # Azure refused or rolled it back: nothing there
            assert not [n for n in rules(rig.emu, nsg) if n.startswith("aztriage-")]
        else:
            assert blocking in rules(rig.emu, nsg)
        result = await rig.resume(result.run_id, vm_name)
        assert result.status == J.RUN_SUCCEEDED, result.summary
    accepted = rule_writes(rig.emu, method)
    assert sum(accepted.values()) == (1 if name in ("429", "500") else 2), accepted  # a failed operation is sent again once
    if write == "allow":
        (made,) = [n for n in rules(rig.emu, nsg) if n.startswith("aztriage-")]
        assert [(r.resource_id.rsplit("/", 1)[-1], r.state) for r in rig.journal.resources(result.run_id)] == [(made, "keep")]
    else:
        assert blocking not in rules(rig.emu, nsg)


@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_fault_on_the_releases_delete_keeps_the_rule_in_the_ledger_and_a_second_release_deletes_it(rig, name):
    nsg, _, _, _ = STORIES["jump-prod-01"]
    before = rules(rig.emu, nsg)
    _, result = await rig.run("jump-prod-01", "fix-nsg")
    fault(rig.emu, match="/securityRules/", method="DELETE", **FAULTS[name])
    try:
        done = await release(rig.backend, rig.journal, result.run_id)
    finally:
        emulator_control(rig.emu, "DELETE", "/_emulator/faults")
    if name == "429":  # ridden out by the adapter's retry
        assert [(text, ok) for _, text, ok in done] == [("deleted", True)] and rules(rig.emu, nsg) == before
        return
    assert [ok for _, _, ok in done] == [False] and done[0][1].startswith("failed: ")
    assert rig.journal.resources(result.run_id)[0].state == "keep"  # still this run's, still to release
    assert len(rules(rig.emu, nsg)) == len(before) + 1  # a failed delete leaves the rule as it was
    done = await release(rig.backend, rig.journal, result.run_id)
    assert [(text, ok) for _, text, ok in done] == [("deleted", True)]
    assert rules(rig.emu, nsg) == before and rig.journal.resources(result.run_id)[0].state == "released"


@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_fault_on_the_undos_restore_says_so_and_a_second_undo_puts_the_rule_back(rig, name):
    nsg, blocking, _, _ = STORIES["jump-prod-01"]
    before = rules(rig.emu, nsg)
    _, result = await rig.run("jump-prod-01", "fix-nsg", {"disable_rule": True})
    assert result.status == J.RUN_SUCCEEDED and blocking not in rules(rig.emu, nsg)
    fault(rig.emu, match="/securityRules/", method="PUT", **FAULTS[name])
    try:
        done = await undo(rig.backend, rig.journal, result.run_id)
    finally:
        emulator_control(rig.emu, "DELETE", "/_emulator/faults")
    if name != "429":  # a 429 is ridden out by the adapter's retry
        assert [ok for _, _, ok in done] == [False], done
        assert blocking not in rules(rig.emu, nsg)
        done = await undo(rig.backend, rig.journal, result.run_id)
    assert [ok for _, _, ok in done] == [True], done
    assert rules(rig.emu, nsg) == before  # as captured


def _boundaries(params: tuple = ()) -> list[tuple[str, int]]:
    return recorded("jump-prod-01", "fix-nsg", params).points


@pytest.mark.parametrize("params", [(), (("disable_rule", True),)], ids=["allow", "disable"])
async def test_killed_at_every_boundary_resumes_to_the_same_end(rigs, params):
    nsg, blocking, _, _ = STORIES["jump-prod-01"]
    points = _boundaries(params)
    assert any(where == "operation" for where, _ in points)  # the middle of the rule's write is a kill point
    for boundary in points:
        async with rigs() as rig:
            before = rules(rig.emu, nsg)
            _, result, killed = await rig.run_killed_at("jump-prod-01", "fix-nsg", dict(params), boundary)
            assert killed and result.status == J.RUN_SUCCEEDED, (boundary, result.summary)
            after = rules(rig.emu, nsg)
            method = "DELETE" if params else "PUT"
            assert sum(rule_writes(rig.emu, method).values()) == 1, (boundary, rule_writes(rig.emu, method))
            if params:
                assert set(before) - set(after) == {blocking}
            else:
                (added,) = set(after) - set(before)
                assert [(r.resource_id.rsplit("/", 1)[-1], r.state) for r in rig.journal.resources(result.run_id)] == [(added, "keep")], boundary
                await release(rig.backend, rig.journal, result.run_id)
                assert rules(rig.emu, nsg) == before


async def test_undo_and_release_refuse_an_unfinished_run(rig):
    from tests.rescue_support import Killed

    def die(where: str, index: int) -> None:
        if (where, index) == ("done", 1):
            raise Killed()

    plan, facts = await rig.plan("jump-prod-01", "fix-nsg")
    with pytest.raises(Killed):
        await rig.runner("jump-prod-01", die).start(plan, lambda f, p: scenarios.build_plan("fix-nsg", f, p), facts)
    (run,) = rig.journal.list_runs()
    with pytest.raises(UndoRefused, match="resume it"):
        await undo(rig.backend, rig.journal, run.run_id)
    from backend.recovery.release import ReleaseRefused

    with pytest.raises(ReleaseRefused, match="resume it"):
        release_plan(rig.journal, run.run_id)


# --- a run's final check names the rule (issue 16, item 1) -------------------------------------------------


@pytest.mark.parametrize("vm_name", list(STORIES))
async def test_a_restart_that_cannot_help_ends_naming_the_rule_and_fix_nsg(rig, vm_name, monkeypatch):
    # Resumed after a kill before the final check, as an operator on a dropped SSH session would.
    from tests.rescue_support import Killed

    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "1")
    nsg, blocking, priority, _ = STORIES[vm_name]
    plan, facts = await rig.plan(vm_name, "restart")
    last = len(plan.steps) - 1

    def die(where: str, index: int) -> None:
        if (where, index) == ("before", last):
            raise Killed()

    with pytest.raises(Killed):
        await rig.runner(vm_name, die).start(plan, lambda f, p: scenarios.build_plan("restart", f, p), facts)
    (run,) = rig.journal.list_runs()
    result = await rig.resume(run.run_id, vm_name)
    assert result.status == J.RUN_FAILED
    level = "subnet" if vm_name.startswith("tools") else "NIC"
    assert f"verdict: blocked by NSG rule {blocking} at priority {priority} ({level} NSG {nsg})" in result.summary
    assert "fix-nsg" in result.summary and "inside the guest" not in result.summary and "run-fix or reset-access" not in result.summary
    assert result.record.steps[last].outputs["verify"]["verdict"]["recommended_scenario"] == "fix-nsg"
