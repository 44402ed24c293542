"""The rescue scenario end to end through the real adapter: the demo's VMs
that do not boot (emergency mode from fstab, a manual fsck, a Windows stop
code) come back; killed at any step boundary or in the middle of any
long-running operation, a run resumes to the same end without a duplicate;
a failure injected at any step leaves an honest journal; after every run the
store holds no deleted customer disk and nothing the ledger does not list."""

from __future__ import annotations

import copy
import time

import pytest

from backend.emulator.rescue_ops import repair_disk
from backend.models import ResourceId
from backend.recovery import scenarios, service
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Kind, PlanError
from backend.recovery.release import ReleaseRefused, release, release_plan
from backend.recovery.runner import Runner, RunRefused
from backend.recovery.scenarios._disks import arm_name
from backend.recovery.scenarios.rescue import fix_script, repair_commands
from tests.recovery_support import arm_request, power, vm_doc, writes
from tests.rescue_support import (  # the fixtures emu, before and rig: tests/rescue_fixtures.py
    assert_ledger_matches,
    assert_store_clean,
    fault,
    guest,
    operation_counts,
    states,
)
from tests.support import emulator_control

VM = "api-dev-01"
FIXES = {"run_fixes": True}
# The steps of a rescue with the common fixes, in order.
STEPS = [
    "preflight",
    "snapshot-os",
    "copy-disk",
    "rescue-group",
    "rescue-nic",
    "rescue-vm",
    "attach-copy",
    "common-fixes",
    "repair",
    "detach-copy",
    "deallocate",
    "swap-os-disk",
    "start",
    "check-boot",
    "reach-ssh",
    "cleanup",
    "report",
]


def ids(plan) -> dict[str, str]:
    """The resources the plan names, from its step texts and details."""
    vm = plan.vm
    os_rid = ResourceId.parse(vm.os_disk.id)
    copy_name = plan.details[0][2]
    return {
        "vm": vm.id.lower(),
        "os": vm.os_disk.id.lower(),
        "copy": f"/subscriptions/{vm.subscription_id}/resourcegroups/{os_rid.resource_group}/providers/microsoft.compute/disks/{copy_name}".lower(),
    }


def end_state_ok(rig, plan, result, before) -> None:
    """What a finished rescue of a VM leaves: it boots the repaired copy and answers; the original OS
    disk and the snapshot are kept; the rescue group and its VM are gone; the store is clean."""
    assert result.status == "succeeded", result.summary
    assert set(states(result)) <= {"verified", "skipped"}, states(result)
    names = ids(plan)
    model = vm_doc(rig.emu, plan.vm.name)
    assert model["doc"]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"].lower() == names["copy"]
    assert power(rig.emu, plan.vm.name) == "running"
    facts = guest(rig.emu, plan.vm.id)
    assert facts.get("boot", "ok") == "ok"
    assert set((facts.get("ports") or {}).values()) <= {"ssh", "rdp"}, facts
    changes = assert_store_clean(rig.emu, rig.journal, before)
    kinds = {r.kind: r.state for r in rig.journal.resources(result.run_id)}
    assert kinds["snapshot"] == "keep" and kinds["disk-copy"] == "in-use"
    new = changes["new"]
    assert names["copy"] in new and any("/snapshots/" in i for i in new)
    assert len(new) == 2, new  # the snapshot and the copy: nothing else stays, nothing twice
    assert not changes["new_groups"], changes["new_groups"]
    assert changes["gone"] == set(), changes["gone"]  # nothing of the estate was deleted
    original = emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Compute/disks")["resources"]
    assert any(d["id"].lower() == names["os"] and not d.get("managedBy") for d in original), "the original OS disk must stay, detached"
    assert_ledger_matches(rig.emu, rig.journal, result.run_id)


# --- the plan -------------------------------------------------------------------------------------


async def test_the_plan_lists_every_step_with_the_exact_commands_and_changes_nothing(rig):
    before_writes = writes(rig.emu)
    plan, facts = await rig.plan(VM, "rescue", FIXES)
    assert plan.keys == STEPS
    assert plan.destructive and not plan.blockers
    assert writes(rig.emu) == before_writes
    manual = plan.steps[plan.keys.index("repair")]
    assert manual.kind is Kind.MANUAL
    text = manual.instructions
    for expected in (
        "lsblk -f /dev/disk/azure/scsi1/lun0",
        "dmesg | grep SCSI",
        "not mounted: safe to check",
        "fsck -yM /dev/disk/azure/scsi1/lun0-part1",
        "/rescue/etc/fstab",
        "sshd_config",
        "--operator-done",
    ):
        assert expected in text, expected
    # What the serial log says went wrong, with its commands for this LUN.
    assert "emergency mode (fstab)" in text and "Timed out waiting for device" in text
    assert any("Serial log: did not boot: emergency mode (fstab)" in w for w in plan.warnings)
    copy_name = plan.details[0][2]
    assert len(copy_name) <= 80 and "." not in copy_name.rsplit("-", 1)[-1]
    group = plan.steps[plan.keys.index("rescue-group")].title.split()[3]
    assert group.startswith("rescue-api-dev-01-") and len(group) <= 90


async def test_windows_commands_load_the_system_hive_and_fix_rdp_bcd_and_chkdsk(rig):
    plan, _ = await rig.plan("iis-test-01", "rescue", FIXES)
    text = plan.steps[plan.keys.index("repair")].instructions
    for expected in (
        "reg load HKLM\\BROKENSYSTEM F:\\Windows\\System32\\config\\SYSTEM",
        "fDenyTSConnections",
        "RemoteDesktop-UserMode-In-TCP",
        "storvsc",
        "bcdedit /store S:\\EFI\\Microsoft\\Boot\\BCD",
        "chkdsk F: /f",
        "INACCESSIBLE_BOOT_DEVICE",
    ):
        assert expected in text, expected
    assert plan.keys[-4:] == ["check-boot", "reach-rdp", "cleanup", "report"]
    rescue = plan.steps[plan.keys.index("rescue-vm")]
    assert "rescue-iis-test " in rescue.title + " " and "2022-datacenter-g2" in rescue.changes  # 15 characters, Gen2 image


def test_names_are_valid_arm_names_without_fractions():
    long = "vm-" + "x" * 120
    name = arm_name(long, "-osdisk-rescued-20261130091711")
    assert len(name) == 80 and name.endswith("-osdisk-rescued-20261130091711")
    assert arm_name("a.b/c d", "-snap") == "a.b-c-d-snap"
    assert arm_name("weird..", "", 15) == "weird"
    assert fix_script("Linux", 2, "V2")[1][1] == "disk=/dev/disk/azure/scsi1/lun2"
    assert any("LUN 3" in line for line in repair_commands("Windows", 3, "V1", "w", "c", None))


@pytest.mark.parametrize(
    "vm_name, reason",
    [
        ("dev-ephemeral-01", "ephemeral OS disk"),
        ("vmss-build-dev_3f9a1c2e", "member of scale set vmss-build-dev"),
        ("legacy-app-01", "unmanaged (VHD) disks"),
    ],
)
async def test_vms_it_cannot_repair_are_refused_with_the_reason(rig, vm_name, reason):
    plan, facts = await rig.plan(vm_name, "rescue")
    assert plan.blockers and reason in plan.blockers[0]
    assert scenarios.get("rescue").unavailable(plan.vm)
    with pytest.raises(RunRefused, match=reason.split()[0]):
        await Runner(rig.backend, rig.journal, confirm_name=vm_name).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)


async def test_a_premium_os_disk_on_a_size_without_premium_storage_is_refused(rig):
    vm_id = vm_doc(rig.emu, "pg-dev-01")["doc"]["id"]
    status, _ = arm_request(rig.emu, "PATCH", vm_id, {"properties": {"hardwareProfile": {"vmSize": "Standard_D2_v5"}}})
    assert status in (200, 202)
    plan, _ = await rig.plan("pg-dev-01", "rescue")
    assert any("Premium_LRS and Standard_D2_v5 has no premium storage" in b for b in plan.blockers)


async def test_an_unknown_rescue_vm_is_bad_input(rig):
    with pytest.raises(PlanError, match="no VM named nope-01"):
        await rig.plan(VM, "rescue", {"rescue_vm": "nope-01"})
    plan, _ = await rig.plan(VM, "rescue", {"rescue_vm": "iis-test-01"})  # Windows, other region
    assert any("eastus" in b for b in plan.blockers) and any("same OS family" in b for b in plan.blockers)


# --- end to end -------------------------------------------------------------------------------------


async def test_linux_emergency_mode_from_fstab_is_repaired_end_to_end(rig, before):
    plan, facts = await rig.plan(VM, "rescue", FIXES)
    first = await rig.runner(VM).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)
    # Headless, the run stops at the manual step: status waiting, exit code 3.
    assert first.status == "waiting" and first.exit_code == 3
    assert rig.journal.get_run(first.run_id).status == "waiting"
    repair = plan.keys.index("repair")
    assert states(first)[repair] == "waiting" and set(states(first)[:repair]) == {"verified"}
    assert f"aztriage recover --resume {first.run_id} --operator-done" in first.summary
    fixes = first.record.steps[plan.keys.index("common-fixes")]
    assert "nofail added" in fixes.outputs["stdout"]
    assert "lsblk -f /dev/disk/azure/scsi1/lun0" in next(e for e in rig.events if e.event == "waiting").message
    # The copy is repaired; the VM itself still does not boot until the swap.
    assert guest(rig.emu, plan.vm.id).get("boot") == "emergency-fstab"
    # Resuming without the operator's word keeps waiting and does nothing.
    writes_before = writes(rig.emu)
    again = await rig.resume(first.run_id, VM, operator_done=False)
    assert again.status == "waiting" and writes(rig.emu) == writes_before
    done = await rig.resume(first.run_id, VM)
    end_state_ok(rig, plan, done, before)
    assert "SSH answers" in done.record.steps[plan.keys.index("reach-ssh")].message
    assert "booted" in done.record.steps[plan.keys.index("check-boot")].message
    report = done.record.steps[-1].message
    assert "kept until you release them" in report and "never deleted by aztriage: the original OS disk" in report


@pytest.mark.parametrize("vm_name, protocol", [("pg-dev-01", "SSH"), ("iis-test-01", "RDP"), ("dev-sandbox-01", "SSH"), ("win11-tl-dev-01", "RDP")])
async def test_the_other_demo_vms_are_repaired_end_to_end(rig, before, vm_name, protocol):
    # pg-dev-01: manual fsck; iis-test-01: Windows stop code; dev-sandbox-01: every deleteOption is Delete;
    # win11-tl-dev-01: Trusted Launch (the copy and the rescue VM keep its security type).
    if vm_name == "win11-tl-dev-01":  # the estate has it starting: let its start finish first
        status, _ = arm_request(rig.emu, "POST", vm_doc(rig.emu, vm_name)["doc"]["id"] + "/start")
        assert status == 202
        time.sleep(0.1)
    plan, result = await rig.run(vm_name, "rescue", FIXES)
    end_state_ok(rig, plan, result, before)
    copy = next(
        d for d in emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Compute/disks")["resources"] if d["id"].lower() == ids(plan)["copy"]
    )
    assert copy["properties"].get("securityProfile") == (plan.vm.security_type and {"securityType": plan.vm.security_type})
    assert copy["properties"]["hyperVGeneration"] == "V2"
    assert f"{protocol} answers" in " ".join(s.message for s in result.record.steps)
    vm_id = plan.vm.id.lower()
    counts = operation_counts(rig.emu)
    starts = 2 if vm_name == "win11-tl-dev-01" else 1  # the test's own start above, then the run's
    assert counts[("deallocate", vm_id)] == 1 and counts[("start", vm_id)] == starts and counts[("update", vm_id)] == 1


async def test_an_existing_rescue_vm_is_used_as_it_is_and_kept(rig, before):
    # dev-sandbox-01 (same group, region and OS) repairs api-dev-01's disk; no group is made.
    sandbox = vm_doc(rig.emu, "dev-sandbox-01")["doc"]
    plan, result = await rig.run(VM, "rescue", {"rescue_vm": "dev-sandbox-01", "run_fixes": True})
    assert "rescue-group" not in plan.keys and "cleanup" not in plan.keys and "rescue-check" in plan.keys
    assert "LUN 2" in plan.steps[plan.keys.index("attach-copy")].title  # its own data disks hold LUN 0 and 1
    end_state_ok(rig, plan, result, before)
    after = vm_doc(rig.emu, "dev-sandbox-01")["doc"]
    assert after["properties"]["storageProfile"]["dataDisks"] == sandbox["properties"]["storageProfile"]["dataDisks"]
    assert power(rig.emu, "dev-sandbox-01") == "running"
    assert "dev-sandbox-01 is yours and stays as it was" in result.record.steps[-1].message


async def test_a_repair_that_was_not_done_fails_honestly_at_the_boot_check(rig, before):
    # No common fixes and nothing done by hand: the copy still does not boot.
    plan, result = await rig.run(VM, "rescue", {"run_fixes": False})
    assert result.status == "failed"
    failed = plan.keys.index("check-boot")
    assert states(result)[failed] == "failed" and set(states(result)[:failed]) <= {"verified", "skipped"}
    assert "still does not boot: emergency mode (fstab)" in result.summary
    assert "created so far" in result.summary and "rescue-vm" in result.summary  # the rescue VM is kept for another try
    assert_store_clean(rig.emu, rig.journal, before)
    assert_ledger_matches(rig.emu, rig.journal, result.run_id)
    # Releasing never deletes the rescue group or the copy that is the VM's OS disk now: only the snapshot.
    _, items = release_plan(rig.journal, result.run_id)
    assert {i.kind for i in items if i.action == "delete"} == {"snapshot"}
    assert {i.kind for i in items if i.action == "keep"} >= {"disk-copy", "resource-group", "rescue-vm", "original-os-disk"}


async def test_a_resource_group_that_already_exists_is_never_used_or_deleted(rig, before):
    plan, facts = await rig.plan(VM, "rescue", FIXES)
    group = plan.steps[plan.keys.index("rescue-group")].title.split()[3]
    sub = plan.vm.subscription_id
    status, _ = arm_request(rig.emu, "PUT", f"/subscriptions/{sub}/resourceGroups/{group}", {"location": "westeurope", "tags": {"owner": "someone"}})
    assert status in (200, 201)
    result = await rig.runner(VM).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)
    target = plan.keys.index("rescue-group")
    assert result.status == "failed" and states(result)[target] == "failed"
    assert "already exists and was not made by this run" in result.summary
    status, doc = arm_request(rig.emu, "GET", f"/subscriptions/{sub}/resourceGroups/{group}")
    assert status == 200 and doc["tags"] == {"owner": "someone"}
    assert not any(r.resource_id.lower().endswith(group.lower()) for r in rig.journal.resources(result.run_id))


async def test_a_copy_that_no_longer_matches_is_never_swapped_in(rig, before):
    plan, facts = await rig.plan(VM, "rescue", FIXES)
    first = await rig.runner(VM).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)
    assert first.status == "waiting"
    names = ids(plan)
    # While the run waits, the copy's generation changes under it.
    status, _ = arm_request(rig.emu, "PATCH", names["copy"], {"properties": {"hyperVGeneration": "V1"}})
    assert status in (200, 202)
    result = await rig.resume(first.run_id, VM)
    swap = plan.keys.index("swap-os-disk")
    assert result.status == "failed" and states(result)[swap] == "failed"
    assert "Hyper-V generation V1, the VM is V2" in result.summary and "nothing was swapped" in result.summary
    model = vm_doc(rig.emu, VM)["doc"]
    assert model["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"].lower() == names["os"]
    assert_store_clean(rig.emu, rig.journal, before)


async def test_azure_refuses_swaps_of_another_os_or_security_type(rig):
    # The emulator refuses what Azure refuses, so a check skipped by mistake would not go unnoticed.
    vm = vm_doc(rig.emu, "qa-win-01")["doc"]
    linux_disk = vm_doc(rig.emu, "dev-spot-01")["doc"]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
    arm_request(rig.emu, "POST", vm["id"] + "/deallocate")
    status, body = arm_request(rig.emu, "PATCH", vm["id"], {"properties": {"storageProfile": {"osDisk": {"managedDisk": {"id": linux_disk}}}}})
    assert status == 409 and "cannot change the OS type" in body["error"]["message"]
    tl = vm_doc(rig.emu, "win11-tl-dev-01")["doc"]
    win_disk = vm["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
    status, body = arm_request(rig.emu, "PATCH", tl["id"], {"properties": {"storageProfile": {"osDisk": {"managedDisk": {"id": win_disk}}}}})
    assert status == 409 and "Security type" in body["error"]["message"]


def test_the_emulators_repair_changes_only_what_its_script_fixes():
    facts = {"boot": "fsck", "ports": {"22": "silent"}}
    repair_disk(facts, "fstab nofail", "Linux", "/dev/x")
    assert facts["boot"] == "fsck"  # editing fstab does not fix a file system that needs fsck
    repair_disk(facts, "fsck -ym /dev/x-part1", "Linux", "/dev/x")
    assert facts == {"boot": "ok", "ports": {"22": "ssh"}, "repairs": ["file system check"]}
    win = {"boot": "stop-code:INACCESSIBLE_BOOT_DEVICE", "ports": {"3389": "silent"}}
    repair_disk(win, "reg add ... storvsc /v start", "Windows", "disk")
    assert win["boot"] == "ok" and win["ports"] == {"3389": "rdp"}


async def test_the_admin_password_of_the_rescue_vm_is_never_returned_or_kept(rig, monkeypatch):
    from backend.recovery.scenarios import rescue

    sentinel = "Sentinel-Rescue-Pa55-4471!"
    monkeypatch.setattr(rescue, "_password", lambda: sentinel)
    plan, facts = await rig.plan(VM, "rescue")
    first = await rig.runner(VM).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)
    assert first.status == "waiting"
    rescue = next(r for r in rig.journal.resources(first.run_id) if r.kind == "rescue-vm")
    status, doc = arm_request(rig.emu, "GET", rescue.resource_id)
    assert status == 200 and "adminPassword" not in str(doc) and doc["properties"]["osProfile"]["adminUsername"] == "rescueadmin"
    dump = str(emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Compute/virtualMachines"))
    assert "adminPassword" not in dump and sentinel not in dump
    assert b"adminPassword" not in rig.journal.path.read_bytes() and sentinel.encode() not in rig.journal.path.read_bytes()
    assert sentinel not in str(emulator_control(rig.emu, "GET", "/_emulator/operations"))


# --- release ------------------------------------------------------------------------------------------------


async def test_release_deletes_the_snapshot_only_and_never_a_customer_disk(rig, before):
    plan, result = await rig.run(VM, "rescue", FIXES)
    assert result.status == "succeeded"
    run, items = release_plan(rig.journal, result.run_id)
    actions = {(i.kind, i.action) for i in items}
    assert actions == {("snapshot", "delete"), ("disk-copy", "keep"), ("original-os-disk", "keep")}
    done = await release(rig.backend, rig.journal, result.run_id)
    assert all(ok for _, _, ok in done)
    changes = assert_store_clean(rig.emu, rig.journal, before)
    assert not any("/snapshots/" in i for i in changes["new"])
    assert changes["deleted_customer_disks"] == set()
    disks = {d["id"].lower() for d in emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Compute/disks")["resources"]}
    assert ids(plan)["os"] in disks and ids(plan)["copy"] in disks
    assert {r.kind: r.state for r in rig.journal.resources(result.run_id)}["snapshot"] == "released"
    # A second release has nothing left to delete.
    assert all(i.action == "keep" for i in release_plan(rig.journal, result.run_id)[1])


async def test_release_refuses_an_unfinished_run(rig):
    plan, facts = await rig.plan(VM, "rescue")
    first = await rig.runner(VM).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)
    with pytest.raises(ReleaseRefused, match="is waiting: resume it"):
        release_plan(rig.journal, first.run_id)


# --- failures injected at each step ----------------------------------------------------------------------------

RESCUE_FAULTS = [
    ("snapshot-os", {"match": "/snapshots/", "method": "PUT", "status": 409}),
    # Azure keeps a snapshot whose create ended Failed/Canceled: the resume deletes it (it is in the ledger) and takes it again.
    ("snapshot-os", {"match": "/snapshots/", "method": "PUT", "lro_result": "Failed"}),
    ("snapshot-os", {"match": "/snapshots/", "method": "PUT", "lro_result": "Canceled"}),
    ("copy-disk", {"match": "-osdisk-rescued-", "method": "PUT", "lro_result": "Failed"}),
    ("rescue-group", {"match": "/resourcegroups/rescue-", "method": "PUT", "status": 403}),
    ("rescue-nic", {"match": "/networkInterfaces/rescue-", "method": "PUT", "status": 409}),
    ("rescue-vm", {"match": "/virtualMachines/rescue-", "method": "PUT", "lro_result": "Failed"}),
    ("attach-copy", {"match": "/virtualMachines/rescue-", "method": "PATCH", "status": 409}),
    ("common-fixes", {"match": "/runCommand", "method": "POST", "lro_result": "Failed"}),
    ("detach-copy", {"match": "/virtualMachines/rescue-", "method": "PATCH", "status": 409}),
    ("deallocate", {"match": "/deallocate", "method": "POST", "lro_result": "Failed"}),
    ("swap-os-disk", {"match": "/virtualMachines/api-dev-01", "method": "PATCH", "status": 409}),
    ("start", {"match": "/start", "method": "POST", "lro_result": "Failed"}),
    ("cleanup", {"match": "/resourcegroups/rescue-", "method": "DELETE", "status": 409}),
]


@pytest.mark.parametrize(
    "key, spec", RESCUE_FAULTS, ids=[k + (f"-lro-{s['lro_result'].lower()}" if k == "snapshot-os" and "lro_result" in s else "") for k, s in RESCUE_FAULTS]
)
async def test_a_failure_at_each_step_leaves_an_honest_journal_and_resumes(rig, before, key, spec):
    plan, facts = await rig.plan(VM, "rescue", FIXES)
    target = plan.keys.index(key)

    def arm_fault(where: str, index: int) -> None:
        if (where, index) == ("before", target):
            fault(rig.emu, dict(spec, count=1))

    result = await rig.runner(VM, arm_fault).start(plan, lambda f, p: scenarios.build_plan("rescue", f, p), facts)
    if result.status == "waiting":
        result = await rig.resume(result.run_id, VM, hook=arm_fault)
    assert result.status == "failed" and result.exit_code == 1, result.summary
    got = states(result)
    assert got[target] == "failed", (key, got)
    assert set(got[:target]) <= {"verified", "skipped"} and set(got[target + 1 :]) == {"pending"}
    assert result.summary.startswith(f"stopped at step {target + 1} ({plan.steps[target].title})")
    held = [r for r in rig.journal.resources(result.run_id) if r.state not in ("deleted", "released", "not-created")]
    for res in held:
        assert res.resource_id.rsplit("/", 1)[-1] in result.summary  # the summary names what exists
    assert_ledger_matches(rig.emu, rig.journal, result.run_id)
    assert_store_clean(rig.emu, rig.journal, before)
    # The fault was one request: resuming finishes the job.
    done = await rig.resume(result.run_id, VM)
    end_state_ok(rig, plan, done, before)


# --- killed anywhere, resumed ------------------------------------------------------------------------------------


def _rescue_boundaries() -> list[tuple[str, int]]:
    writes_ = set(STEPS) - {"preflight", "repair", "check-boot", "reach-ssh", "report"}
    out = []
    for i, key in enumerate(STEPS):
        out.append(("before", i))
        if key in writes_:
            out += [("running", i), ("done", i)]
            if key != "rescue-group":  # the only write that is not a long-running operation
                out.append(("operation", i))
    out.append(("verified", len(STEPS) - 1))
    return out


@pytest.mark.parametrize("boundary", _rescue_boundaries(), ids=lambda b: f"{b[0]}:{b[1]}")
async def test_killed_at_any_boundary_resumes_to_the_same_end_without_duplicates(rig, before, boundary):
    plan, result, killed = await rig.run_killed_at(VM, "rescue", FIXES, boundary)
    assert killed
    end_state_ok(rig, plan, result, before)
    counts = operation_counts(rig.emu)
    vm_id, names = plan.vm.id.lower(), ids(plan)
    rescue_id = next(r.resource_id.lower() for r in rig.journal.resources(result.run_id) if r.kind == "rescue-vm")
    snapshot = next(r.resource_id.lower() for r in rig.journal.resources(result.run_id) if r.kind == "snapshot")
    group = next(r.resource_id.lower() for r in rig.journal.resources(result.run_id) if r.kind == "resource-group")
    assert counts[("create", snapshot)] == 1
    assert counts[("create", names["copy"])] == 1
    assert counts[("create", rescue_id)] == 1
    assert counts[("update", rescue_id)] == 2  # attach, detach
    assert counts[("runCommand", rescue_id)] == 1
    assert counts[("deallocate", vm_id)] == 1 and counts[("update", vm_id)] == 1 and counts[("start", vm_id)] == 1
    assert counts[("delete", group)] == 1


async def test_a_rescue_vm_must_be_available_and_boot_itself(rig):
    # pg-dev-01 is running and Available, but its own serial log shows it stuck in initramfs.
    plan, _ = await rig.plan(VM, "rescue", {"rescue_vm": "pg-dev-01"})
    assert any("pg-dev-01 does not boot itself" in b and "pick a VM that boots" in b for b in plan.blockers), plan.blockers
    # dev-sandbox-01 boots and is Available: nothing stands in the way, nothing to warn about.
    plan, facts = await rig.plan(VM, "rescue", {"rescue_vm": "dev-sandbox-01"})
    assert not plan.blockers, plan.blockers
    assert not any("generation" in w or "controller" in w or "attaches disks by" in w for w in plan.warnings)
    # The same VM, had Resource Health called it Degraded, is refused with the state.
    docs = dict(facts.documents, rescue_vm_health=copy.deepcopy(facts.documents["rescue_vm_health"]))
    docs["rescue_vm_health"]["properties"]["availabilityState"] = "Degraded"
    plan = service.rebuild("rescue", VmFacts.from_documents(docs), {"rescue_vm": "dev-sandbox-01"})
    assert any("dev-sandbox-01 is Degraded in Resource Health" in b for b in plan.blockers), plan.blockers


async def test_a_rescue_vm_of_another_generation_or_disk_controller_is_warned_about(rig):
    _, facts = await rig.plan(VM, "rescue", {"rescue_vm": "dev-sandbox-01"})
    docs = dict(facts.documents, rescue_vm=copy.deepcopy(facts.documents["rescue_vm"]))
    rescue = docs["rescue_vm"]["properties"]
    ours = str(facts.instance_view.get("hyperVGeneration") or "V1").upper()
    rescue["instanceView"]["hyperVGeneration"] = "V1" if ours == "V2" else "V2"
    rescue["storageProfile"]["diskControllerType"] = "NVMe"
    plan = service.rebuild("rescue", VmFacts.from_documents(docs), {"rescue_vm": "dev-sandbox-01"})
    assert not plan.blockers, plan.blockers
    assert any("dev-sandbox-01 is Hyper-V generation" in w and f"disk is {ours}" in w for w in plan.warnings), plan.warnings
    assert any("dev-sandbox-01 attaches disks by NVMe and api-dev-01 by SCSI" in w for w in plan.warnings), plan.warnings
