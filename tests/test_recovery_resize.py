"""resize to any size the region offers, end to end through the real adapter: the
region's sizes (Resource SKUs) with the subscription's restrictions, Azure's refusals
(a size the cluster does not offer to a running VM, a restricted size or zone), the
one-PATCH resize in place and the deallocate -> resize -> start plan for a size the
cluster does not offer; killed at any boundary (in process, and kill -9 of the CLI) it
resumes to the same end, each operation sent once; a failure at each write leaves an
honest journal and resumes; the CLI, read-only and the Recovery pane."""

from __future__ import annotations

import signal

import pytest

from backend.adapter import BackendError
from backend.recovery import scenarios
from backend.recovery.plan import Kind, PlanError
from backend.recovery.runner import RunRefused
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import arm_request, json_lines, power, vm_doc, writes
from tests.rescue_support import killed_at_each, operation_counts, states

VM = "web-prod-03"  # D2s_v5 in zone 3 of West Europe: its cluster offers D-family sizes only
BIGGER = "Standard_E4s_v5"  # more memory, another family: deallocate, resize, start
PARAMS = {"size": BIGGER}


def size_of(emu, name: str) -> str:
    return vm_doc(emu, name)["doc"]["properties"]["hardwareProfile"]["vmSize"]


def counts_on(emu, name: str) -> dict[str, int]:
    vm_id = vm_doc(emu, name)["doc"]["id"].lower()
    return {kind: n for (kind, rid), n in operation_counts(emu).items() if rid == vm_id}


def moved_ok(rig, result, name: str = VM, size: str = BIGGER) -> None:
    assert result.status == "succeeded", result.summary
    assert set(states(result)) <= {"verified", "skipped"}, states(result)
    assert size_of(rig.emu, name) == size
    assert power(rig.emu, name) == "running"
    counts = counts_on(rig.emu, name)
    assert counts.get("deallocate") == 1 and counts.get("update") == 1 and counts.get("start") == 1, counts


# --- the emulator and the adapter: Azure's lists and refusals ------------------------------------


async def test_the_region_lists_every_size_with_zones_and_the_subscriptions_restrictions(rig):
    vm = vm_doc(rig.emu, VM)["doc"]
    sub = vm["id"].split("/")[2]
    skus = await rig.backend.list_vm_skus(sub, "West Europe")
    by_name = {s["name"]: s for s in skus}
    assert {"Standard_D2s_v5", "Standard_E4s_v5", "Standard_B2ms", "Standard_F4s_v2"} <= set(by_name)
    e4 = by_name["Standard_E4s_v5"]
    assert e4["resourceType"] == "virtualMachines" and e4["locationInfo"][0]["zones"] == ["1", "2", "3"]
    caps = {c["name"]: c["value"] for c in e4["capabilities"]}
    assert caps["vCPUs"] == "4" and caps["MemoryGB"] == "32" and caps["PremiumIO"] == "True"
    assert [r["restrictionInfo"].get("zones") for r in e4["restrictions"]] == [["2"]]  # zone 2 only: web-prod-03 (zone 3) may take it
    assert by_name["Standard_D4s_v5"]["restrictions"] == []
    assert by_name["Standard_E8s_v5"]["restrictions"] == [
        {
            "type": "Zone",
            "values": ["westeurope"],
            "restrictionInfo": {"locations": ["westeurope"], "zones": ["3"]},
            "reasonCode": "NotAvailableForSubscription",
        }
    ]
    assert by_name["Standard_E16s_v5"]["restrictions"][0]["type"] == "Location"
    status, body = arm_request(rig.emu, "GET", f"/subscriptions/{sub}/providers/Microsoft.Compute/skus?$filter=name%20eq%20'x'")
    assert status == 400 and body["error"]["code"] == "InvalidFilter"


async def test_azure_refuses_a_size_the_cluster_does_not_offer_to_a_running_vm_and_restricted_sizes(rig):
    vm_id = vm_doc(rig.emu, VM)["doc"]["id"]
    with pytest.raises(BackendError) as info:
        await rig.backend.update_vm(vm_id, {"properties": {"hardwareProfile": {"vmSize": BIGGER}}})
    assert info.value.code == "OperationNotAllowed"
    assert "not available in the current hardware cluster" in str(info.value) and "Standard_D4s_v5" in str(info.value)
    for size, zones in (("Standard_E16s_v5", "''"), ("Standard_Q99_v9", "''")):
        status, body = arm_request(rig.emu, "PATCH", vm_id, {"properties": {"hardwareProfile": {"vmSize": size}}})
        assert status == 409 and body["error"]["code"] == "SkuNotAvailable" and f"zones {zones}" in body["error"]["message"], body
    assert size_of(rig.emu, VM) == "Standard_D2s_v5" and counts_on(rig.emu, VM) == {}  # refused before any operation
    # Deallocated, it can take a size of another family; but not one its zone refuses.
    await rig.backend.vm_action(vm_id, "deallocate")
    status, body = arm_request(rig.emu, "PATCH", vm_id, {"properties": {"hardwareProfile": {"vmSize": "Standard_E8s_v5"}}})
    assert status == 409 and "zones '3'" in body["error"]["message"]
    await rig.backend.update_vm(vm_id, {"properties": {"hardwareProfile": {"vmSize": BIGGER}}})
    assert size_of(rig.emu, VM) == BIGGER


# --- plans ----------------------------------------------------------------------------------------


async def test_a_size_the_cluster_does_not_offer_is_deallocate_resize_start_with_the_warnings_and_undo(rig):
    plan, facts = await rig.plan(VM, "resize", PARAMS)
    assert plan.keys == ["preflight", "deallocate", "resize", "start", "reach-ssh"]
    assert not plan.blockers and plan.destructive
    assert "(deallocate, resize, start: its cluster does not offer it)" in plan.summary
    rows = {what: (before, after) for what, before, after in plan.details}
    assert rows["memory"] == ("8 GiB", "32 GiB") and rows["host"][1] == "any host of the region that offers it"
    deallocate, resize, start = plan.steps[1:4]
    assert deallocate.kind is Kind.DESTRUCTIVE and resize.kind is Kind.CHANGE and start.kind is Kind.CHANGE
    assert "does not offer Standard_E4s_v5" in deallocate.why
    assert resize.undo == f"resize back to Standard_D2s_v5 (aztriage recover --vm {VM} --scenario resize --size Standard_D2s_v5)"
    # In place: one destructive PATCH (Azure restarts it), no deallocation.
    same, _ = await rig.plan(VM, "resize", {"size": "Standard_D4s_v5"})
    assert same.keys == ["preflight", "resize", "reach-ssh"] and same.steps[1].kind is Kind.DESTRUCTIVE
    # The temporary disk and the dynamic public IP of a VM that is deallocated to move.
    rdgw, _ = await rig.plan("rdgw-shared-01", "resize", {"size": "Standard_D2s_v3"})
    assert rdgw.keys[:4] == ["preflight", "deallocate", "resize", "start"]
    warned = " ".join(rdgw.steps[1].warnings)
    assert "temporary disk (D:)" in warned and "dynamic public IP address" in warned
    # Every size of the region is listed, with how the VM can take it.
    how = {size.name: note for size, note in scenarios.get("resize")._mod().choices(facts)}
    assert how["Standard_D4s_v5"] == "" and how[BIGGER] == "deallocate first"
    assert how["Standard_E8s_v5"].startswith("refused: Standard_E8s_v5 is not offered in zone 3")


async def test_sizes_azure_refuses_block_the_plan_and_nothing_is_sent(rig):
    before = writes(rig.emu)
    zone, facts = await rig.plan(VM, "resize", {"size": "Standard_E8s_v5"})
    assert any("not offered in zone 3 of westeurope for this subscription" in b for b in zone.blockers)
    region, _ = await rig.plan(VM, "resize", {"size": "Standard_E16s_v5"})
    assert any("westeurope does not offer Standard_E16s_v5 to this subscription (NotAvailableForSubscription)" in b for b in region.blockers)
    with pytest.raises(RunRefused):
        await rig.runner(VM).start(zone, lambda f, p: scenarios.build_plan("resize", f, p), facts)
    with pytest.raises(PlanError, match="cannot take size Standard_Q99_v9: westeurope does not offer it"):
        await rig.plan(VM, "resize", {"size": "Standard_Q99_v9"})
    with pytest.raises(PlanError, match=r"needs --size: .*Standard_D4s_v5.* where it runs now; .*more of the region after a deallocation"):
        await rig.plan(VM, "resize", {})
    assert writes(rig.emu) == before


# --- runs -----------------------------------------------------------------------------------------


async def test_a_running_vm_moves_to_a_size_of_another_cluster_and_answers_ssh(rig):
    plan, result = await rig.run(VM, "resize", PARAMS)
    moved_ok(rig, result)
    assert "SSH answers" in result.record.steps[-1].message
    # The undo is the same scenario back to the old size (D-family: deallocated again to get there).
    back, result = await rig.run(VM, "resize", {"size": "Standard_D2s_v5"})
    assert back.keys == ["preflight", "deallocate", "resize", "start", "reach-ssh"]
    assert result.status == "succeeded" and size_of(rig.emu, VM) == "Standard_D2s_v5"


async def test_a_deallocated_vm_is_resized_in_one_step_and_stays_deallocated(rig):
    plan, result = await rig.run("dev-spot-01", "resize", {"size": "Standard_D4s_v5"})
    assert plan.keys == ["preflight", "resize"] and plan.steps[1].kind is Kind.CHANGE
    assert result.status == "succeeded", result.summary
    assert size_of(rig.emu, "dev-spot-01") == "Standard_D4s_v5" and power(rig.emu, "dev-spot-01") == "deallocated"


RESIZE_FAULTS = [
    ("deallocate", {"match": f"/virtualMachines/{VM}/deallocate", "method": "POST", "status": 409}),
    ("resize", {"match": f"/virtualMachines/{VM}", "method": "PATCH", "lro_result": "Failed"}),
    ("start", {"match": f"/virtualMachines/{VM}/start", "method": "POST", "lro_result": "Failed"}),
]


@pytest.mark.parametrize("key, spec", RESIZE_FAULTS, ids=[k for k, _ in RESIZE_FAULTS])
async def test_a_failure_at_each_write_leaves_an_honest_journal_and_resumes(rig, key, spec):
    _, failed, _ = await rig.run_with_fault_at(VM, "resize", PARAMS, key, spec)
    done = await rig.resume(failed.run_id, VM)
    assert done.status == "succeeded", done.summary
    assert size_of(rig.emu, VM) == BIGGER and power(rig.emu, VM) == "running"


KILL_TESTS = 6  # the recorded boundaries are dealt out over this many tests


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_sending_each_operation_once(rigs, hand):
    await killed_at_each(rigs, deal(recorded(VM, "resize", tuple(PARAMS.items())).points, hand, KILL_TESTS), VM, "resize", PARAMS, moved_ok)


# --- the CLI and the console ----------------------------------------------------------------------


@pytest.mark.parametrize("kill_at", ["operation:1", "operation:2", "operation:3"])
def test_kill_9_in_each_operation_resumes_and_sends_each_once(emu, home, kill_at):
    from tests.test_recovery_cli import aztriage, runs

    args = ["recover", "--vm", VM, "--scenario", "resize", "--size", BIGGER, "--yes", "--confirm", VM]
    first = aztriage(emu, home, *args, kill_at=kill_at)
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stderr)
    (listed,) = runs(emu, home)
    assert listed["status"] == "interrupted"
    # Killed in the deallocation, the rest is still destructive: the name is typed again.
    second = aztriage(emu, home, "recover", "--resume", listed["run_id"], "--confirm", VM)
    assert second.returncode == 0, second.stdout + second.stderr
    assert size_of(emu, VM) == BIGGER and power(emu, VM) == "running"
    counts = counts_on(emu, VM)
    assert counts.get("deallocate") == 1 and counts.get("update") == 1 and counts.get("start") == 1, counts


def test_the_cli_shows_the_plan_and_read_only_disables_every_write(emu, home):
    from tests.test_recovery_cli import aztriage, one_line_error

    proc = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "resize", "--size", BIGGER, "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    assert [s["key"] for s in line["plan"]["steps"]] == ["preflight", "deallocate", "resize", "start", "reach-ssh"]
    before = writes(emu)
    proc = aztriage(emu, home, "--read-only", "recover", "--vm", VM, "--scenario", "resize", "--size", BIGGER, "--yes", "--confirm", VM)
    assert proc.returncode == 1 and "read-only" in one_line_error(proc)
    assert "[DESTRUCTIVE] Deallocate web-prod-03 to release its host (disabled: read-only)" in proc.stdout
    assert "[change] Resize web-prod-03 from Standard_D2s_v5 to Standard_E4s_v5 (disabled: read-only)" in proc.stdout
    refused = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "resize", "--size", "Standard_E16s_v5", "--yes", "--confirm", VM)
    assert refused.returncode == 1 and "does not offer Standard_E16s_v5 to this subscription" in one_line_error(refused)
    assert writes(emu) == before


async def test_the_recovery_pane_lists_the_regions_sizes_and_moves_the_vm_after_the_name_is_typed(emu, recovery_journal):
    from tests.tui_support import detail, make_app, open_options, run_confirmed_by_name, steps_text, wait_for

    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_options(pilot, VM, "resize")
        options = screen.query_one("#options")
        prompts = {options.get_option_at_index(i).id: str(options.get_option_at_index(i).prompt) for i in range(options.option_count)}
        assert prompts["Standard_D4s_v5"].endswith("16 GiB") and "(deallocate first)" in prompts[BIGGER]
        assert "(refused: Standard_E8s_v5 is not offered in zone 3" in prompts["Standard_E8s_v5"]
        options.highlighted = list(prompts).index(BIGGER)
        await pilot.pause()
        assert "the plan deallocates, resizes and starts it again" in detail(screen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        text = steps_text(screen)
        assert "Deallocate web-prod-03 to release its host" in text and "Start web-prod-03 as Standard_E4s_v5" in text
        await run_confirmed_by_name(pilot, screen, VM, timeout=90)
        assert set(screen.states.values()) == {"verified"}, screen.states
    assert size_of(emu, VM) == BIGGER and power(emu, VM) == "running"
