"""restore-disk end to end through the real adapter: a disk made from a snapshot of the VM's OS
disk (or a data disk), or from the VM's restore point (its disk restore point of that disk,
createOption Restore), swapped in, the old disk kept; refusals (no such snapshot, a snapshot of
another disk, no such LUN, a restore point of another VM, one still being created or failed, a
name that fits two sources) and the emulator's, as Azure's; killed at any boundary it resumes to
the same end; the CLI."""

from __future__ import annotations

import pytest

from backend.recovery.plan import Kind, PlanError
from tests.kill_points import deal
from tests.recovery_support import arm_request, power, resources, vm_doc
from tests.rescue_support import guest

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


async def restore_point_of(rig, vm: str = VM) -> dict:
    """restore-point first (crash-consistent): its restore point document."""
    _, result = await rig.run(vm, "restore-point", {"consistency": "crash"})
    assert result.status == "succeeded", result.summary
    (point,) = [p for p in resources(rig.emu, "Microsoft.Compute/restorePointCollections/restorePoints") if f"/rpc-{vm}/" in p["id"].lower()]
    return point


def break_guest(emu, vm: str = VM) -> str:
    """The guest on the VM's OS disk stops booting (a bad fstab): what a restore brings back from before."""
    vm_id = vm_doc(emu, vm)["doc"]["id"]
    emu.store.own_guest(vm_id).update({"boot": "emergency-fstab", "ports": {"22": "silent"}})
    emu.store.touch(vm_id.lower())
    return vm_id


async def test_the_os_disk_is_restored_from_a_restore_point_named_by_its_name(rig):
    point = await restore_point_of(rig)
    os_entry = point["properties"]["sourceMetadata"]["storageProfile"]["osDisk"]
    vm_id = break_guest(rig.emu)
    old = os_disk_name(rig.emu)
    plan, result = await rig.run(VM, "restore-disk", {"source": point["name"]})
    assert plan.keys == ["preflight", "restore-copy", "deallocate", "swap-os-disk", "start", "reach-ssh"] and not plan.blockers
    drp = os_entry["diskRestorePoint"]["id"].rsplit("/", 1)[-1]
    assert plan.steps[1].title.endswith(f"from restore point {point['name']} (its disk restore point of {old}, {drp})")
    assert "createOption Restore" in plan.steps[1].changes and plan.title == "Restore a disk from a restore point"
    assert plan.params == {"disk": "os", "source": point["id"]}
    assert result.status == "succeeded", result.summary
    new = os_disk_name(rig.emu)
    assert new != old and "-restored-" in new
    (disk,) = [d for d in resources(rig.emu, "Microsoft.Compute/disks") if d["name"] == new]
    assert disk["properties"]["creationData"] == {"createOption": "Restore", "sourceResourceId": os_entry["diskRestorePoint"]["id"]}
    assert guest(rig.emu, vm_id).get("boot") in (None, "ok") and power(rig.emu, VM) == "running"  # the guest as it was
    assert result.record.steps[-1].state == "verified"
    kept = await rig.backend.get_disk_document(os_entry["managedDisk"]["id"])
    assert kept is not None and not kept.get("managedBy")


async def test_a_data_disk_is_restored_from_a_restore_point_given_by_id(rig):
    point = await restore_point_of(rig)
    (entry,) = [e for e in point["properties"]["sourceMetadata"]["storageProfile"]["dataDisks"] if e["lun"] == 0]
    old = lun_name(rig.emu, 0)
    plan, result = await rig.run(VM, "restore-disk", {"source": point["id"], "disk": "0"})
    assert plan.keys == ["preflight", "restore-copy", "swap-lun0"] and not plan.blockers
    assert f"(its disk restore point of {old}, " in plan.steps[1].title
    assert result.status == "succeeded", result.summary
    (disk,) = [d for d in resources(rig.emu, "Microsoft.Compute/disks") if d["name"] == lun_name(rig.emu, 0)]
    assert disk["properties"]["creationData"]["sourceResourceId"] == entry["diskRestorePoint"]["id"] and disk["properties"]["diskSizeGB"] == 128


async def test_what_it_refuses_of_restore_points(rig):
    other = await restore_point_of(rig, "sql-prod-01")
    plan, _ = await rig.plan(VM, "restore-disk", {"source": other["id"]})
    assert any("holds no restore point of" in b and "restore a disk from a restore point of itself" in b for b in plan.blockers), plan.blockers
    point = await restore_point_of(rig)
    rig.emu.store.own(point["id"])["properties"]["provisioningState"] = "Creating"
    plan, _ = await rig.plan(VM, "restore-disk", {"source": point["name"]})
    assert any("is still being created" in b for b in plan.blockers), plan.blockers
    drp = point["properties"]["sourceMetadata"]["storageProfile"]["osDisk"]["diskRestorePoint"]["id"]
    disk = vm_doc(rig.emu, VM)["doc"]["id"].split("/providers/")[0] + "/providers/Microsoft.Compute/disks/restored"
    body = {"location": "westeurope", "properties": {"creationData": {"createOption": "Restore", "sourceResourceId": drp}}}
    status, answer = arm_request(rig.emu, "PUT", disk, body)
    assert status == 409 and answer["error"]["code"] == "OperationNotAllowed" and "is Creating" in answer["error"]["message"]
    rig.emu.store.own(point["id"])["properties"]["provisioningState"] = "Failed"
    plan, _ = await rig.plan(VM, "restore-disk", {"source": point["name"]})
    assert any("is failed: a disk is restored only from a restore point that succeeded" in b for b in plan.blockers), plan.blockers
    status, answer = arm_request(rig.emu, "PUT", disk, dict(body, properties={"creationData": {"createOption": "Copy", "sourceResourceId": drp}}))
    assert status == 400 and answer["error"]["code"] == "InvalidParameter"
    status, answer = arm_request(rig.emu, "PUT", disk, dict(body, properties={"creationData": {"createOption": "Restore", "sourceResourceId": drp + "x"}}))
    assert status == 404
    missing, _ = await rig.plan(VM, "restore-disk", {"source": point["id"] + "x"})
    assert f"restore point {point['name']}x does not exist" in missing.blockers
    # A snapshot named as the restore point: the name fits two sources, the plan asks for an id.
    snap = disk.replace("/disks/restored", f"/snapshots/{point['name']}")
    os_id = vm_doc(rig.emu, VM)["doc"]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
    assert arm_request(rig.emu, "PUT", snap, {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": os_id}}})[
        0
    ] in (200, 201, 202)
    twice, _ = await rig.plan(VM, "restore-disk", {"source": point["name"]})
    assert any(f"2 snapshots or restore points are named {point['name']}" in b and "give --source as an id" in b for b in twice.blockers), twice.blockers


async def test_what_it_refuses(rig):
    snaps = await snapshot_of(rig)
    missing, _ = await rig.plan(VM, "restore-disk", {"source": "no-such-snap"})
    assert "no snapshot in rg-web-prod and no restore point of web-prod-03 is named no-such-snap" in missing.blockers
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


# The step a restore point changes (the disk restored from its disk restore point, createOption
# Restore): killed at each of its boundaries, the run resumes to one restored disk, sent once.
RESTORE_COPY = [(where, 1) for where in ("before", "running", "operation", "done")]


@pytest.mark.parametrize("boundary", RESTORE_COPY, ids=lambda b: f"{b[0]}:{b[1]}")
async def test_killed_while_restoring_from_a_restore_point_resumes_to_one_disk(rigs, boundary):
    from tests.rescue_support import killed_at, operation_counts

    async with killed_at(rigs, boundary) as rig:
        point = await restore_point_of(rig)
        old = os_disk_name(rig.emu)
        _, result, killed = await rig.run_killed_at(VM, "restore-disk", {"source": point["name"]}, boundary)
        assert killed and result.status == "succeeded", result.summary
        assert os_disk_name(rig.emu) != old and power(rig.emu, VM) == "running"
        (disk,) = [d for d in resources(rig.emu, "Microsoft.Compute/disks") if "-restored-" in d["name"]]
        assert disk["properties"]["creationData"]["createOption"] == "Restore"
        assert operation_counts(rig.emu)[("create", disk["id"].lower())] == 1


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


def test_the_cli_restores_from_a_restore_point_named_by_its_name(emu, home):
    from tests.test_recovery_cli import aztriage

    taken = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "restore-point", "--consistency", "crash", "--yes")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    (point,) = [p for p in resources(emu, "Microsoft.Compute/restorePointCollections/restorePoints") if f"/rpc-{VM}/" in p["id"].lower()]
    dry = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "restore-disk", "--source", point["name"], "--disk", "0", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"from restore point {point['name']} (its disk restore point of {lun_name(emu, 0)}, " in dry.stdout
    helped = aztriage(emu, home, "recover", "--help")
    assert "a restore point of the VM (its name" in " ".join(helped.stdout.split())
