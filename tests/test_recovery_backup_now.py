"""backup-now end to end through the real adapter: an on-demand Azure Backup of a protected VM
(Backups_Trigger, a long-running operation, then the job's snapshot phase), refused for a VM no
vault protects or whose protection is stopped, failing honestly when the VM agent does not answer;
offered as the optional first step of resize, recreate, move and rescue; killed at any boundary
it resumes to the same end with one backup sent; a failure of the operation resumes; the CLI,
read-only and the checklist that no longer flags the VM."""

from __future__ import annotations

import signal

import pytest

from backend.recovery.plan import Kind, PlanError
from backend.recovery.runner import RunRefused
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import json_lines, operations, writes
from tests.rescue_support import killed_at_each, states

VM = "erp-prod-eus-01"  # protected in rsv-prod-eus, its last good backup three days old (stale)
PARAMS: dict = {}


def backups(emu, vm: str = VM) -> list[dict]:
    """The backup operations the emulator was sent for this VM's protected item."""
    return [op for op in operations(emu) if op["kind"] == "backup" and op["resource_id"].lower().endswith(f";{vm}")]


async def item_of(rig, vm: str = VM):
    vm_id = (
        f"/subscriptions/{'3f2b8c1e-7a4d-4e2b-9c61-5d8a0f4b2e17' if 'shared' not in vm else '8d14e6a2-2c5f-4b9e-a7d3-61f0c9e8b453'}/resourceGroups/"
        + {VM: "rg-erp-prod", "web-prod-01": "rg-web-prod", "mon-shared-eus-01": "rg-monitoring-shared"}[vm]
        + f"/providers/Microsoft.Compute/virtualMachines/{vm}"
    )
    book = await rig.backend.backup_protection([vm_id.split("/")[2]])
    return book.item(vm_id), book


def backed_up(rig, result) -> None:
    assert result.status == "succeeded", result.summary
    assert set(states(result)) <= {"verified", "skipped"}, states(result)
    assert len(backups(rig.emu)) == 1, backups(rig.emu)


async def test_the_plan_says_what_the_backup_does_and_refuses_unprotected_or_stopped_vms(rig):
    plan, facts = await rig.plan(VM, "backup-now")
    assert plan.keys == ["preflight", "backup-now"] and not plan.blockers and not plan.destructive
    step = plan.steps[1]
    assert step.kind is Kind.CHANGE and step.title == f"Back up {VM} now in vault rsv-prod-eus"
    assert "last good backup 3 days ago" in step.why and "kept 30 days" in step.changes and "the VM keeps running" in step.changes
    assert plan.params == {"retain_days": 30} and not plan.interrupts_service
    jump, _ = await rig.plan("jump-prod-01", "backup-now")
    assert jump.keys == ["preflight"] and "not protected by Azure Backup in any Recovery Services vault" in jump.blockers[0]
    legacy, _ = await rig.plan("legacy-app-01", "backup-now")
    assert "is ProtectionStopped" in legacy.blockers[0]
    with pytest.raises(RunRefused):
        await rig.runner("jump-prod-01").start(jump, lambda f, p: None, _)
    with pytest.raises(PlanError, match="from 1 to 99"):
        await rig.plan(VM, "backup-now", {"retain_days": 365})


async def test_a_stale_vm_is_backed_up_and_the_checklist_no_longer_flags_it(rig):
    before, _ = await item_of(rig)
    plan, result = await rig.run(VM, "backup-now")
    backed_up(rig, result)
    assert "the snapshot of every disk of erp-prod-eus-01 is taken and can be restored now" in result.record.steps[-1].message
    after, book = await item_of(rig)
    assert after.last_recovery_point > before.last_recovery_point and not after.stale(book.read_at)
    from backend import checks

    _, checked = await checks.evaluate(rig.backend, instance_view_limit=0)
    assert VM not in {f.vm for f in checked.findings if f.rule == "backup-health"}
    # The operation's body asks Azure to keep the recovery point as long as the plan said.
    job = result.record.steps[-1].outputs["verify"]["job_id"]
    got = await rig.backend.get_backup_job(job)
    assert got["properties"]["operation"] == "Backup" and got["properties"]["entityFriendlyName"] == VM
    assert got["properties"]["extendedInfo"]["propertyBag"]["Recovery point expiry time in UTC"].endswith("Z")


async def test_a_backup_the_vm_agent_cannot_take_fails_honestly(rig):
    _, result = await rig.run("mon-shared-eus-01", "backup-now")
    assert result.status == "failed" and states(result) == ["verified", "failed"]
    assert "UserErrorGuestAgentStatusUnavailable" in result.record.steps[-1].message


async def test_azure_refuses_a_second_backup_while_one_runs(rig):
    from backend.adapter import BackendError

    item, _ = await item_of(rig, "web-prod-01")
    await rig.backend.trigger_backup(item.item_id, "2030-01-01T00:00:00Z")
    with pytest.raises(BackendError) as info:
        await rig.backend.trigger_backup(item.item_id, "2030-01-01T00:00:00Z")
    assert info.value.code == "UserErrorBackupOperationInProgress"


async def test_a_protected_vms_risky_plans_offer_a_backup_first(rig):
    plain, _ = await rig.plan("web-prod-03", "resize", {"size": "Standard_E4s_v5"})
    assert "backup-now" not in plain.keys
    assert any("--backup-first" in w and "protected by Azure Backup" in w for w in plain.warnings)
    first, _ = await rig.plan("web-prod-03", "resize", {"size": "Standard_E4s_v5", "backup_first": True})
    assert first.keys[:3] == ["preflight", "backup-now", "deallocate"] and first.params["backup_first"] is True
    assert first.steps[1].title.endswith("(optional first step)")
    for scenario, vm, params in (("recreate", "web-prod-01", {}), ("move-to-zone", "app-prod-ne-01", {"zone": "1"}), ("rescue", "web-prod-01", {})):
        made, _ = await rig.plan(vm, scenario, dict(params, backup_first=True))
        assert "backup-now" in made.keys, (scenario, made.keys, made.blockers)
        first_write = min(i for i, step in enumerate(made.steps) if step.writes and step.key != "backup-now")
        assert made.keys.index("backup-now") < first_write, (scenario, made.keys)
    # Not offered where nothing protects the VM.
    jump, _ = await rig.plan("jump-prod-01", "recreate", {"backup_first": True})
    assert "backup-now" not in jump.keys and not any("--backup-first" in w for w in jump.warnings)
    _, result = await rig.run("web-prod-03", "resize", {"size": "Standard_E4s_v5", "backup_first": True})
    assert result.status == "succeeded", result.summary
    assert len(backups(rig.emu, "web-prod-03")) == 1


BACKUP_FAULTS = [
    ("refused", {"match": "/backup", "method": "POST", "status": 409, "code": "UserErrorBackupOperationInProgress"}),
    ("failed", {"match": "/backup", "method": "POST", "lro_result": "Failed"}),
]


@pytest.mark.parametrize("key, spec", BACKUP_FAULTS, ids=[k for k, _ in BACKUP_FAULTS])
async def test_a_failure_of_the_backup_leaves_an_honest_journal_and_resumes(rig, key, spec):
    from tests.rescue_support import fault

    fault(rig.emu, dict(spec, count=1))
    _, failed = await rig.run(VM, "backup-now", PARAMS)
    assert failed.status == "failed" and states(failed) == ["verified", "failed"], failed.summary
    assert failed.summary.startswith(f"stopped at step 2 (Back up {VM} now in vault rsv-prod-eus)")
    done = await rig.resume(failed.run_id, VM)
    assert done.status == "succeeded", done.summary
    ok = [op for op in backups(rig.emu) if op["status"] == "Succeeded"]
    assert len(ok) == 1


KILL_TESTS = 2


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_with_one_backup(rigs, hand):
    boundaries = recorded(VM, "backup-now", ()).points
    assert ("operation", 1) in boundaries
    await killed_at_each(rigs, deal(boundaries, hand, KILL_TESTS), VM, "backup-now", PARAMS, backed_up)


async def test_a_send_whose_acceptance_was_never_journaled_finds_its_job(rig):
    """Killed after the backup was sent and before Azure's answer was journaled: the resumed
    step finds the job that send started instead of sending a second backup."""
    from backend.recovery import scenarios
    from tests.rescue_support import Killed

    plan, facts = await rig.plan(VM, "backup-now")
    item, _ = await item_of(rig)
    state = {"sent": False}

    def die_after_send(where: str, index: int) -> None:
        if (where, index) == ("running", 1) and not state["sent"]:
            state["sent"] = True
            raise Killed()

    with pytest.raises(Killed):
        await rig.runner(VM, die_after_send).start(plan, lambda f, p: scenarios.build_plan("backup-now", f, p), facts)
    run_id = rig.journal.list_runs(limit=1)[0].run_id
    # What the killed process had done: journaled its intent, and sent the backup.
    from datetime import UTC, datetime

    rig.journal.save_outputs(run_id, 1, {"sending": {"backup": datetime.now(UTC).isoformat()}})
    await rig.backend.trigger_backup(item.item_id, "2030-01-01T00:00:00Z")
    result = await rig.resume(run_id, VM)
    assert result.status == "succeeded", result.summary
    assert "the backup sent before the interruption started job" in result.record.steps[1].message
    assert len(backups(rig.emu)) == 1


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, emu):
    from tests.recovery_support import reset

    reset(emu)
    return tmp_path / "home"


def test_kill_9_in_the_backup_resumes_and_sends_it_once(emu, home):
    from tests.test_recovery_cli import aztriage, runs

    first = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "backup-now", "--yes", kill_at="operation:1")
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stderr)
    (listed,) = runs(emu, home)
    assert listed["status"] == "interrupted"
    second = aztriage(emu, home, "recover", "--resume", listed["run_id"])
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(backups(emu)) == 1


def test_the_cli_plans_runs_and_read_only_sends_nothing(emu, home):
    from tests.test_recovery_cli import aztriage, one_line_error

    proc = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "backup-now", "--retain-days", "7", "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    assert [s["key"] for s in line["plan"]["steps"]] == ["preflight", "backup-now"] and line["plan"]["params"] == {"retain_days": 7}
    proc = aztriage(
        emu, home, "recover", "--vm", "web-prod-03", "--scenario", "resize", "--size", "Standard_E4s_v5", "--backup-first", "--dry-run", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    assert [s["key"] for s in line["plan"]["steps"]][:2] == ["preflight", "backup-now"]
    before = writes(emu)
    proc = aztriage(emu, home, "--read-only", "recover", "--vm", VM, "--scenario", "backup-now", "--yes")
    assert proc.returncode == 1 and "read-only" in one_line_error(proc)
    assert f"[change] Back up {VM} now in vault rsv-prod-eus (disabled: read-only)" in proc.stdout
    assert writes(emu) == before and backups(emu) == []
    refused = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "backup-now", "--retain-days", "0", "--yes")
    assert refused.returncode != 0 and "from 1 to 99" in one_line_error(refused)
    proc = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "backup-now", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(backups(emu)) == 1
