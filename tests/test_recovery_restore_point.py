"""restore-point end to end through the real adapter: a restore point collection for the VM and
an application- or crash-consistent restore point of all its disks at one instant (RestorePoints_Create,
long-running), with Azure's refusals; killed at any boundary it resumes to the same end with one
restore point taken; a failed create is deleted and taken again; the CLI and read-only."""

from __future__ import annotations

import asyncio
import signal

import pytest

from backend.recovery.plan import Kind, PlanError
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import arm_request, json_lines, operation_counts, resources, vm_doc, writes
from tests.rescue_support import killed_at_each, states

VM = "sql-prod-01"  # running, agent ready, an OS disk and two data disks


def restore_points(emu, rtype: str = "restorePoints") -> list[dict]:
    """The VM's restore points (or their diskRestorePoints): the demo keeps another VM's too."""
    return [d for d in resources(emu, f"Microsoft.Compute/restorePointCollections/{rtype}") if f"/rpc-{VM}/" in d["id"].lower()]


def collections(emu) -> list[dict]:
    return [d for d in resources(emu, "Microsoft.Compute/restorePointCollections") if d["name"] == f"rpc-{VM}"]


def taken(rig, result, *, mode: str = "ApplicationConsistent") -> dict:
    assert result.status == "succeeded", result.summary
    assert set(states(result)) <= {"verified", "skipped"}, states(result)
    (rp,) = restore_points(rig.emu)
    assert rp["properties"]["provisioningState"] == "Succeeded" and rp["properties"]["consistencyMode"] == mode
    creates = [k for (kind, rid), k in operation_counts(rig.emu).items() if kind == "create" and "/restorepoints/" in rid]
    assert creates == [1], creates
    return rp


async def test_the_plan_and_what_it_refuses(rig):
    plan, _ = await rig.plan(VM, "restore-point")
    assert plan.keys == ["preflight", "collection", "restore-point"] and not plan.blockers and not plan.interrupts_service
    assert plan.params == {"consistency": "application"} and plan.steps[2].kind is Kind.CHANGE
    assert "of 3 disks" in plan.steps[2].changes and "the VM agent freezes the applications" in plan.steps[2].why
    stopped, _ = await rig.plan("qa-win-01", "restore-point")
    assert stopped.params == {"consistency": "crash"} and not stopped.blockers
    app, _ = await rig.plan("qa-win-01", "restore-point", {"consistency": "application"})
    assert "needs qa-win-01 running with a working VM agent (it is stopped)" in app.blockers[0]
    ephemeral, _ = await rig.plan("dev-ephemeral-01", "restore-point")
    assert "ephemeral OS disk" in ephemeral.blockers[0]
    legacy, _ = await rig.plan("legacy-app-01", "restore-point")
    assert "unmanaged disks" in legacy.blockers[0]
    with pytest.raises(PlanError, match="application or crash"):
        await rig.plan(VM, "restore-point", {"consistency": "fuzzy"})


async def test_every_disk_is_captured_at_one_instant(rig):
    _, result = await rig.run(VM, "restore-point")
    rp = taken(rig, result)
    meta = rp["properties"]["sourceMetadata"]
    disks = [meta["storageProfile"]["osDisk"], *meta["storageProfile"]["dataDisks"]]
    assert len(disks) == 3 and all(d["diskRestorePoint"]["id"].startswith(rp["id"] + "/diskRestorePoints/") for d in disks)
    assert meta["hardwareProfile"]["vmSize"] == "Standard_E4s_v5"
    drps = restore_points(rig.emu, "restorePoints/diskRestorePoints")
    assert {d["properties"]["sourceResourceId"].lower() for d in drps} == {d["managedDisk"]["id"].lower() for d in disks}
    assert "holds all 3 disks of sql-prod-01, ApplicationConsistent" in result.record.steps[-1].message
    ledger = {r.kind: r.state for r in rig.journal.resources(result.run_id)}
    assert ledger == {"restore-point-collection": "keep", "restore-point": "keep"}
    # A second run reuses the collection and takes a second restore point.
    _, again = await rig.run(VM, "restore-point", {"consistency": "crash"})
    assert again.status == "succeeded" and again.record.steps[1].state == "skipped"


async def test_azure_refuses_what_it_cannot_take(rig):
    vm_id = vm_doc(rig.emu, "qa-win-01")["doc"]["id"]
    rpc = vm_id.split("/providers/")[0] + "/providers/Microsoft.Compute/restorePointCollections/rpc-qa"
    status, body = arm_request(rig.emu, "PUT", rpc, {"location": "eastus", "properties": {"source": {"id": vm_id}}})
    assert status == 201 and body["properties"]["source"]["location"] == "eastus"
    status, body = arm_request(rig.emu, "PUT", rpc + "/restorePoints/rp1", {"properties": {"consistencyMode": "ApplicationConsistent"}})
    assert status == 400 and body["error"]["code"] == "OperationNotAllowed" and "it is stopped" in body["error"]["message"]
    status, body = arm_request(rig.emu, "PUT", rpc + "/restorePoints/rp1", {"properties": {"consistencyMode": "CrashConsistent"}})
    assert status == 201 and body["properties"]["provisioningState"] == "Creating"
    status, body = arm_request(rig.emu, "PUT", rpc + "/restorePoints/rp1", {"properties": {"consistencyMode": "CrashConsistent"}})
    assert status == 409 and body["error"]["code"] == "PropertyChangeNotAllowed"


async def test_a_failed_restore_point_is_deleted_and_taken_again(rig):
    from tests.rescue_support import fault

    fault(rig.emu, {"match": "/restorePoints/", "method": "PUT", "lro_result": "Failed", "count": 1})
    _, failed = await rig.run(VM, "restore-point")
    assert failed.status == "failed" and states(failed) == ["verified", "verified", "failed"], failed.summary
    (left,) = restore_points(rig.emu)
    assert left["properties"]["provisioningState"] == "Failed"  # as Azure leaves it
    done = await rig.resume(failed.run_id, VM)
    assert done.status == "succeeded", done.summary
    assert any("the failed one left by the earlier attempt was deleted first" in str(event) for event in rig.events)
    (rp,) = restore_points(rig.emu)
    assert rp["properties"]["provisioningState"] == "Succeeded"


KILL_TESTS = 2


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_with_one_restore_point(rigs, hand):
    boundaries = recorded(VM, "restore-point", ()).points
    assert ("operation", 2) in boundaries
    await killed_at_each(rigs, deal(boundaries, hand, KILL_TESTS), VM, "restore-point", {}, taken)


@pytest.fixture
def home(tmp_path, emu):
    from tests.recovery_support import reset

    reset(emu)
    return tmp_path / "home"


def test_kill_9_in_the_restore_point_resumes_and_takes_one(emu, home):
    from tests.test_recovery_cli import aztriage, runs

    first = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "restore-point", "--consistency", "crash", "--yes", kill_at="operation:2")
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stderr)
    (listed,) = runs(emu, home)
    second = aztriage(emu, home, "recover", "--resume", listed["run_id"])
    assert second.returncode == 0, second.stdout + second.stderr
    (rp,) = restore_points(emu)
    assert rp["properties"]["consistencyMode"] == "CrashConsistent"


def test_the_cli_plan_and_read_only(emu, home):
    from tests.test_recovery_cli import aztriage, one_line_error

    proc = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "restore-point", "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    assert [s["key"] for s in line["plan"]["steps"]] == ["preflight", "collection", "restore-point"]
    before = writes(emu)
    proc = aztriage(emu, home, "--read-only", "recover", "--vm", VM, "--scenario", "restore-point", "--yes")
    assert proc.returncode == 1 and "read-only" in one_line_error(proc)
    assert f"[change] Take an application-consistent restore point of {VM} (disabled: read-only)" in proc.stdout
    assert writes(emu) == before and restore_points(emu) == []


async def test_release_deletes_the_restore_points_the_run_took_and_its_collection_once_empty(rig):
    from backend.recovery.release import release, release_plan

    _, first = await rig.run(VM, "restore-point")
    taken(rig, first)
    await asyncio.sleep(1.1)  # the next restore point's name (rp-<UTC second>) differs
    _, second = await rig.run(VM, "restore-point", {"consistency": "crash"})
    assert second.status == "succeeded", second.summary
    assert {r.kind: r.state for r in rig.journal.resources(second.run_id)} == {"restore-point": "keep"}  # the collection was the first run's
    one, two = sorted(restore_points(rig.emu), key=lambda p: p["properties"]["timeCreated"])
    _, items = release_plan(rig.journal, first.run_id)
    assert [(i.kind, i.action) for i in items] == [("restore-point", "delete"), ("restore-point-collection", "delete")]
    done = {item.kind: (text, ok) for item, text, ok in await release(rig.backend, rig.journal, first.run_id)}
    assert done["restore-point"] == ("deleted", True)
    assert done["restore-point-collection"] == (f"kept: it holds 1 restore point this run did not take ({two['name']})", True)
    assert [p["id"] for p in restore_points(rig.emu)] == [two["id"]] and collections(rig.emu)
    done = {item.kind: (text, ok) for item, text, ok in await release(rig.backend, rig.journal, second.run_id)}
    assert done == {"restore-point": ("deleted", True)} and not restore_points(rig.emu)
    assert collections(rig.emu)  # not the second run's to delete
    done = {item.kind: (text, ok) for item, text, ok in await release(rig.backend, rig.journal, first.run_id)}
    assert done == {"restore-point-collection": ("deleted (it held no other restore point)", True)}
    assert not collections(rig.emu)
    assert {r.state for r in rig.journal.resources(first.run_id)} == {"released"}
    assert one["id"] != two["id"]
