"""restore-disk end to end through the real adapter: a disk made from a snapshot of the VM's OS
disk (or a data disk) swapped in, the old disk kept; refusals (no such snapshot, a snapshot of
another disk, no such LUN); killed at any boundary it resumes to the same end; the CLI."""

from __future__ import annotations

import pytest

from backend.recovery.plan import Kind, PlanError
from tests.kill_points import deal
from tests.recovery_support import power, vm_doc

VM = "web-prod-03"


def os_disk_name(emu, vm: str = VM) -> str:
    return vm_doc(emu, vm)["doc"]["properties"]["storageProfile"]["osDisk"]["name"]


def lun_name(emu, lun: int, vm: str = VM) -> str:
    return next(d["name"] for d in vm_doc(emu, vm)["doc"]["properties"]["storageProfile"]["dataDisks"] if d["lun"] == lun)


async def snapshot_of(rig, vm: str = VM) -> dict[str, str]:
    """snapshot-disks first: {"os": name, 0: name, ...} of the snapshots it took."""
    plan, result = await rig.run(vm, "snapshot-disks")
    assert result.status == "succeeded", result.summary
    out = {}
    for step in plan.steps[1:]:
        name = step.changes.split("creates snapshot ", 1)[1].split(" ", 1)[0]
        out["os" if step.key == "snapshot-os" else int(step.key.removeprefix("snapshot-lun"))] = name
    return out


async def test_the_os_disk_is_swapped_for_one_made_from_its_snapshot_and_the_old_one_kept(rig):
    snaps = await snapshot_of(rig)
    old = os_disk_name(rig.emu)
    plan, result = await rig.run(VM, "restore-disk", {"source": snaps["os"]})
    assert plan.keys == ["preflight", "restore-copy", "deallocate", "swap-os-disk", "start", "reach-ssh"]
    assert plan.destructive and plan.interrupts_service and plan.steps[2].kind is Kind.DESTRUCTIVE
    assert result.status == "succeeded", result.summary
    new = os_disk_name(rig.emu)
    assert new != old and new.startswith(old[:20]) and "-restored-" in new
    assert power(rig.emu, VM) == "running"
    disk_id = vm_doc(rig.emu, VM)["doc"]["id"].split("/providers/")[0] + f"/providers/Microsoft.Compute/disks/{old}"
    doc = await rig.backend.get_disk_document(disk_id)
    assert doc is not None and not doc.get("managedBy")
    assert "the old disk" in result.record.steps[3].message and "is kept, detached" in result.record.steps[3].message


async def test_a_data_disk_is_swapped_at_its_lun_while_the_vm_runs(rig):
    snaps = await snapshot_of(rig)
    old = lun_name(rig.emu, 0)
    plan, result = await rig.run(VM, "restore-disk", {"source": snaps[0], "disk": "0"})
    assert plan.keys == ["preflight", "restore-copy", "swap-lun0"] and plan.steps[2].kind is Kind.DESTRUCTIVE
    assert result.status == "succeeded", result.summary
    assert lun_name(rig.emu, 0) != old and power(rig.emu, VM) == "running"


async def test_what_it_refuses(rig):
    snaps = await snapshot_of(rig)
    missing, _ = await rig.plan(VM, "restore-disk", {"source": "no-such-snap"})
    assert "snapshot no-such-snap does not exist" in missing.blockers
    other, _ = await rig.plan(VM, "restore-disk", {"source": snaps[0]})  # a data disk's snapshot for the OS disk
    assert any("not of" in b for b in other.blockers)
    with pytest.raises(PlanError, match="no data disk at LUN 7"):
        await rig.plan(VM, "restore-disk", {"source": snaps["os"], "disk": "7"})
    with pytest.raises(PlanError, match="needs --source"):
        await rig.plan(VM, "restore-disk", {})


KILL_TESTS = 3
# Every boundary a run passes, per step (a snapshot has to exist before the plan, so the plan is not
# recorded on a fresh emulator as tests.kill_points does): before, running, the operation, done.
STEPS = ["restore-copy", "deallocate", "swap-os-disk", "start"]
BOUNDARIES = [(where, i) for i in range(1, len(STEPS) + 1) for where in ("before", "running", "operation", "done")]


@pytest.mark.parametrize("hand", range(KILL_TESTS), ids=lambda n: f"hand-{n + 1}-of-{KILL_TESTS}")
async def test_killed_at_any_boundary_resumes_to_the_same_end(rigs, hand):
    from tests.rescue_support import operation_counts

    for boundary in deal(BOUNDARIES, hand, KILL_TESTS):
        async with rigs() as rig:
            try:
                snaps = await snapshot_of(rig)
                old = os_disk_name(rig.emu)
                _, result, killed = await rig.run_killed_at(VM, "restore-disk", {"source": snaps["os"]}, boundary)
                assert killed
                assert result.status == "succeeded", result.summary
                assert os_disk_name(rig.emu) != old and power(rig.emu, VM) == "running"
                vm_id = vm_doc(rig.emu, VM)["doc"]["id"].lower()
                counts = {kind: n for (kind, rid), n in operation_counts(rig.emu).items() if rid == vm_id}
                assert counts.get("deallocate") == 1 and counts.get("update") == 1 and counts.get("start") == 1, counts
            except AssertionError as exc:
                raise AssertionError(f"killed at {boundary[0]}:{boundary[1]}: {exc}") from exc


@pytest.fixture
def home(tmp_path, emu):
    from tests.recovery_support import reset

    reset(emu)
    return tmp_path / "home"


def test_the_cli_asks_for_the_name_and_read_only_sends_nothing(emu, home):
    from tests.recovery_support import writes
    from tests.test_recovery_cli import aztriage, one_line_error

    snap = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "snapshot-disks", "--yes")
    assert snap.returncode == 0, snap.stdout + snap.stderr
    from tests.recovery_support import resources

    os_id = vm_doc(emu, VM)["doc"]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"].lower()
    name = next(s["name"] for s in resources(emu, "Microsoft.Compute/snapshots") if s["properties"]["creationData"]["sourceResourceId"].lower() == os_id)
    before = writes(emu)
    proc = aztriage(emu, home, "--read-only", "recover", "--vm", VM, "--scenario", "restore-disk", "--source", name, "--yes", "--confirm", VM)
    assert proc.returncode == 1 and "read-only" in one_line_error(proc)
    assert writes(emu) == before
    refused = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "restore-disk", "--source", name, "--disk", "x", "--yes")
    assert refused.returncode != 0 and "--disk must be os or a data disk's LUN" in one_line_error(refused)
    proc = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "restore-disk", "--source", name, "--yes", "--confirm", VM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert power(emu, VM) == "running" and "-restored-" in os_disk_name(emu)
