"""Every recovery scenario end to end against the emulator, through the real
adapter: the plan, the run, its verification, and the emulator's state after."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from backend import mapping
from backend.adapter import BackendError
from backend.azure.backend import AzureBackend
from backend.recovery import journal as J
from backend.recovery import scenarios, service
from backend.recovery.journal import Journal
from backend.recovery.plan import Kind, PlanError
from backend.recovery.runner import Runner, RunRefused
from tests.recovery_support import guest_ports, operation_counts, power, put_lock, reset, resources, vm_doc, writes
from tests.rescue_support import Rig
from tests.support import FIXED_NOW, arm_call, demo_settings, emulator_control, record_run


@pytest.fixture
async def rig(emu, tmp_path):
    reset(emu)
    backend = AzureBackend(demo_settings(emu), retry_total=2)
    journal = Journal(tmp_path / "journal.sqlite3")
    yield Rig(emu, backend, journal)
    await backend.close()
    journal.close()


# When the demo's app-prod-ne-02 self-service maintenance window closes: 8 days after the estate's "now".
NE02_WINDOW_CLOSES = f"{FIXED_NOW + timedelta(days=8):%Y-%m-%d %H:%M} UTC"


def states(result) -> list[str]:
    return [s.state for s in result.record.steps]


def ops_on(emu, kind: str, vm_name: str) -> int:
    vm_id = vm_doc(emu, vm_name)["doc"]["id"].lower()
    return operation_counts(emu)[(kind, vm_id)]


# --- power scenarios ----------------------------------------------------------------


async def test_restart_runs_verifies_and_the_vm_answers_ssh(rig):
    plan, result = await rig.run("web-prod-01", "restart")
    assert plan.keys == ["preflight", "restart", "reach-ssh"]
    assert result.status == "succeeded" and result.exit_code == 0
    assert states(result) == ["verified"] * 3
    assert "SSH answers" in result.record.steps[2].message
    assert ops_on(rig.emu, "restart", "web-prod-01") == 1
    assert power(rig.emu, "web-prod-01") == "running"


async def test_start_brings_a_stopped_vm_up_and_rdp_answers(rig):
    assert power(rig.emu, "qa-win-01") == "stopped"
    plan, result = await rig.run("qa-win-01", "start")
    assert result.status == "succeeded", result.summary
    assert power(rig.emu, "qa-win-01") == "running"
    assert "RDP answers" in result.record.steps[-1].message
    assert ops_on(rig.emu, "start", "qa-win-01") == 1


async def test_deallocate_is_destructive_needs_the_name_and_warns_about_the_temporary_disk(rig):
    plan, facts = await rig.plan("dev-sandbox-01", "deallocate")
    assert plan.destructive
    step = plan.steps[1]
    assert step.kind is Kind.DESTRUCTIVE
    assert any("temporary disk" in w for w in step.warnings)
    before = writes(rig.emu)
    with pytest.raises(RunRefused, match="typing the VM's name"):
        await Runner(rig.backend, rig.journal).start(plan, lambda f, p: scenarios.build_plan("deallocate", f, p), facts)
    with pytest.raises(RunRefused, match="is not the VM's name"):
        await Runner(rig.backend, rig.journal, confirm_name="dev-sandbox-02").start(plan, lambda f, p: scenarios.build_plan("deallocate", f, p), facts)
    assert writes(rig.emu) == before
    _, result = await rig.run("dev-sandbox-01", "deallocate")
    assert result.status == "succeeded", result.summary
    assert power(rig.emu, "dev-sandbox-01") == "deallocated"


async def test_redeploy_moves_the_vm_and_it_comes_back(rig):
    plan, result = await rig.run("web-prod-02", "redeploy")
    assert result.status == "succeeded", result.summary
    assert ops_on(rig.emu, "redeploy", "web-prod-02") == 1
    assert power(rig.emu, "web-prod-02") == "running"
    assert any("temporary disk" not in w for w in plan.steps[1].warnings)


async def test_resize_shows_the_difference_and_changes_the_size(rig):
    plan, _ = await rig.plan("web-prod-03", "resize", {"size": "Standard_D4s_v5"})
    rows = {what: (before, after) for what, before, after in plan.details}
    assert rows["size"] == ("Standard_D2s_v5", "Standard_D4s_v5")
    assert rows["vCPUs"] == ("2", "4")
    assert rows["memory"] == ("8 GiB", "16 GiB")
    _, result = await rig.run("web-prod-03", "resize", {"size": "Standard_D4s_v5"})
    assert result.status == "succeeded", result.summary
    assert vm_doc(rig.emu, "web-prod-03")["doc"]["properties"]["hardwareProfile"]["vmSize"] == "Standard_D4s_v5"
    assert "resize back to Standard_D2s_v5" in plan.steps[1].undo


async def test_resize_refuses_sizes_the_vm_cannot_take(rig):
    with pytest.raises(PlanError, match="cannot take size Standard_E64s_v5"):
        await rig.plan("web-prod-03", "resize", {"size": "Standard_E64s_v5"})
    with pytest.raises(PlanError, match=r"needs --size: .*Standard_D4s_v5"):
        await rig.plan("web-prod-03", "resize", {})
    # Premium disks cannot move to a size without premium storage.
    plan, _ = await rig.plan("web-prod-03", "resize", {"size": "Standard_D2_v5"})
    assert any("Premium" in b for b in plan.blockers)
    # Temporary disk or not: Azure cannot resize across.
    plan, _ = await rig.plan("web-prod-03", "resize", {"size": "Standard_D2ds_v5"})
    assert any("temporary disk" in b for b in plan.blockers)


async def test_reapply_runs_without_reboot(rig):
    plan, result = await rig.run("web-prod-01", "reapply")
    assert result.status == "succeeded", result.summary
    assert ops_on(rig.emu, "reapply", "web-prod-01") == 1
    assert ops_on(rig.emu, "restart", "web-prod-01") == 0
    assert power(rig.emu, "web-prod-01") == "running"


async def test_a_restart_that_does_not_bring_ssh_back_fails_with_the_reason(rig, monkeypatch):
    # tools-lnx-shared-01: its subnet's NSG drops SSH, so no restart can make it answer.
    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "1")
    plan, result = await rig.run("tools-lnx-shared-01", "restart")
    assert result.status == "failed" and result.exit_code == 1
    assert [s.state for s in result.record.steps] == ["verified", "verified", "failed"]
    assert "SSH on" in result.summary and "run-fix or reset-access" not in result.summary
    # The same diagnosis as the Connectivity pane: the rule, its priority and its NSG, and fix-nsg next.
    assert "verdict: blocked by NSG rule Deny-SSH-Inbound at priority 110 (subnet NSG nsg-snet-tools-shared)" in result.summary
    assert "fix-nsg" in result.summary
    assert result.record.steps[2].outputs["verify"]["verdict"]["id"] == "blocked-by-nsg"


async def test_redeploy_during_an_azure_incident_opens_with_a_warning_step_naming_it(rig):
    plan, facts = await rig.plan("erp-prod-eus-01", "redeploy")
    first = plan.steps[0]
    assert first.key == "incident" and "7T2K-LQ8" in first.title and "Active" in first.title
    assert "impact since" in first.why and "ETA" in first.why and "lists this VM as impacted" in first.why
    assert "Power has been restored" in first.why  # the latest update
    assert any("7T2K-LQ8" in w for w in plan.warnings)
    # The same VM's restart does not act on the host or disks: no incident step.
    plan, _ = await rig.plan("erp-prod-eus-01", "restart")
    assert plan.steps[0].key != "incident"
    # And nothing is recommended while Azure mitigates.
    from backend.verdict import decide

    vm = facts.vm
    events = [mapping.service_event(d, vm.subscription_id) for d in facts.documents["events"]]
    verdict = decide(vm, events=events, impacted=facts.documents["impacted"])
    assert verdict.id == "platform-incident"
    choices = scenarios.choices(vm, verdict=verdict)
    assert not any(recommended for _, _, recommended in choices)


async def test_perform_maintenance_waits_for_its_window_then_clears_the_pending_maintenance(rig):
    assert vm_doc(rig.emu, "app-prod-ne-02")["view"].get("maintenanceRedeployStatus")
    # The self-service window opens a day after the estate's "now": Azure refuses it before
    # (isCustomerInitiatedMaintenanceAllowed false). The plan says why from the window's times,
    # which the estate wrote at a fixed date: whether it says "opens at" or "closed at" depends on
    # today's date, and either names when the window closes.
    plan, _ = await rig.plan("app-prod-ne-02", "perform-maintenance")
    assert plan.blockers and plan.blockers[0].startswith("Azure refuses it now: the self-service window ")
    assert NE02_WINDOW_CLOSES in plan.blockers[0]
    vm_id = vm_doc(rig.emu, "app-prod-ne-02")["doc"]["id"]
    refused = arm_call(rig.emu, "POST", vm_id + "/performMaintenance?api-version=2026-04-01")
    assert refused[0] == 409 and refused[1]["error"]["code"] == "OperationNotAllowed"
    assert "performMaintenance" in refused[1]["error"]["message"] and "not eligible" in refused[1]["error"]["message"]
    assert ops_on(rig.emu, "performMaintenance", "app-prod-ne-02") == 0
    # A day later the window is open: Azure says so in the instance view, and the plan runs.
    emulator_control(rig.emu, "POST", "/_emulator/advance", {"seconds": 25 * 3600})
    _, view = arm_call(rig.emu, "GET", vm_id + "/instanceView?api-version=2026-04-01")
    assert view["maintenanceRedeployStatus"]["isCustomerInitiatedMaintenanceAllowed"] is True
    plan, result = await rig.run("app-prod-ne-02", "perform-maintenance")
    assert result.status == "succeeded", result.summary
    assert ops_on(rig.emu, "performMaintenance", "app-prod-ne-02") == 1
    assert not vm_doc(rig.emu, "app-prod-ne-02")["view"].get("maintenanceRedeployStatus")
    assert "no maintenance is pending any more" in result.record.steps[1].message
    # Done once, it is not offered again.
    plan, _ = await rig.plan("app-prod-ne-02", "perform-maintenance")
    assert plan.blockers and "no planned maintenance is pending" in plan.blockers[0]


# --- guest access --------------------------------------------------------------------------


async def test_reset_access_linux_resets_ssh_and_sshd_answers_again(rig):
    vm_id = vm_doc(rig.emu, "legacy-ftp-01")["doc"]["id"]
    assert guest_ports(rig.emu, vm_id)["22"] == "refused"
    plan, result = await rig.run("legacy-ftp-01", "reset-access")
    assert result.status == "succeeded", result.summary
    assert guest_ports(rig.emu, vm_id)["22"] == "ssh"
    ext = [d for d in resources(rig.emu, "Microsoft.Compute/virtualMachines/extensions") if d["id"].lower().startswith(vm_id.lower() + "/")]
    assert [d["name"] for d in ext] == ["enablevmaccess"]
    assert ext[0]["properties"]["type"] == "VMAccessForLinux"
    assert "protectedSettings" not in ext[0]["properties"]


async def test_reset_access_windows_password_goes_only_in_protected_settings(rig):
    secret = "Sentinel-Pa55word-Windows-7781"
    vm_id = vm_doc(rig.emu, "files-shared-01")["doc"]["id"]
    plan, result = await rig.run("files-shared-01", "reset-access", {"credential": "password"}, secrets={"password": secret})
    assert plan.needs_secrets == ("password",)
    assert result.status == "succeeded", result.summary
    ext = await rig.backend.get_extension(vm_id, "enablevmaccess")
    assert ext["properties"]["type"] == "VMAccessAgent"
    assert ext["properties"]["settings"] == {"UserName": plan.vm.admin_username}
    assert secret not in repr(ext)
    assert guest_ports(rig.emu, vm_id)["3389"] == "rdp"
    assert secret not in rig.journal.path.read_bytes().decode("latin-1")


async def test_reset_access_is_blocked_when_the_vm_agent_is_not_ready(rig):
    plan, _ = await rig.plan("mon-shared-eus-01", "reset-access")
    assert any("VM agent" in b for b in plan.blockers)
    assert scenarios.get("reset-access").unavailable(plan.vm)
    # What instead is the verdict's next step (sign in and restart the agent), not a disk repair.
    assert any("restart the agent" in b and "rescue" not in b for b in plan.blockers), plan.blockers


async def test_run_fix_windows_enables_rdp_and_skips_fixes_no_longer_needed(rig):
    vm_id = vm_doc(rig.emu, "files-shared-01")["doc"]["id"]
    assert guest_ports(rig.emu, vm_id)["3389"] == "silent"
    plan, result = await rig.run("files-shared-01", "run-fix")
    assert plan.keys == ["preflight", "enable-rdp", "reset-rdp-cert", "rdp-port", "reach-rdp"]
    assert result.status == "succeeded", result.summary
    assert states(result) == ["verified", "verified", "skipped", "skipped", "verified"]
    assert guest_ports(rig.emu, vm_id)["3389"] == "rdp"
    assert ops_on(rig.emu, "runCommand", "files-shared-01") == 1
    assert "Remote Desktop enabled" in result.record.steps[1].outputs["stdout"]


async def test_run_fix_linux_restarts_sshd(rig):
    vm_id = vm_doc(rig.emu, "legacy-ftp-01")["doc"]["id"]
    plan, result = await rig.run("legacy-ftp-01", "run-fix")
    assert result.status == "succeeded", result.summary
    assert [s.state for s in result.record.steps] == ["verified", "verified", "skipped", "verified"]
    assert guest_ports(rig.emu, vm_id)["22"] == "ssh"


async def test_run_fix_on_a_guest_that_did_not_boot_fails_and_says_why(rig):
    _, result = await rig.run("pg-dev-01", "run-fix")
    assert result.status == "failed"
    assert result.exit_code == 1
    assert "VM agent" in result.summary or "agent" in result.summary.lower()


async def test_snapshot_disks_creates_one_snapshot_per_disk_and_keeps_them_in_the_ledger(rig):
    plan, result = await rig.run("web-prod-03", "snapshot-disks")
    assert plan.keys == ["preflight", "snapshot-os", "snapshot-lun0"]
    assert result.status == "succeeded", result.summary
    vm = plan.vm
    snaps = {d["properties"]["creationData"]["sourceResourceId"].lower(): d for d in resources(rig.emu, "Microsoft.Compute/snapshots")}
    for disk in vm.disks:
        assert disk.id.lower() in snaps
        assert snaps[disk.id.lower()]["properties"]["provisioningState"] == "Succeeded"
    ledger = rig.journal.resources(result.run_id)
    assert sorted(r.state for r in ledger) == ["created", "created"]
    assert all(len(r.resource_id.rsplit("/", 1)[-1]) <= 80 for r in ledger)
    assert "2 resources created and kept" in result.summary


async def test_snapshot_disks_is_unavailable_for_unmanaged_disks(rig):
    plan, _ = await rig.plan("legacy-app-01", "snapshot-disks")
    assert plan.blockers and "unmanaged" in plan.blockers[0]


# --- safety rails ------------------------------------------------------------------------------


async def test_plans_send_no_writes(rig):
    before = writes(rig.emu)
    for vm_name, scenario, params in [
        ("web-prod-01", "restart", {}),
        ("qa-win-01", "start", {}),
        ("dev-sandbox-01", "deallocate", {}),
        ("web-prod-02", "redeploy", {}),
        ("web-prod-03", "resize", {"size": "Standard_D4s_v5"}),
        ("web-prod-01", "reapply", {}),
        ("legacy-ftp-01", "reset-access", {}),
        ("files-shared-01", "run-fix", {}),
        ("app-prod-ne-01", "perform-maintenance", {}),
        ("web-prod-03", "snapshot-disks", {}),
    ]:
        plan, _ = await rig.plan(vm_name, scenario, params)
        assert plan.steps and plan.to_json()["steps"]
    assert writes(rig.emu) == before


async def test_read_only_adapter_refuses_every_write_itself(emu, tmp_path):
    reset(emu)
    backend = AzureBackend(demo_settings(emu, read_only=True), retry_total=1)
    try:
        vm = (await service.read_vm(backend, await service.find_vm(backend, "web-prod-01"))).vm
        before = writes(emu)
        attempts = [
            backend.vm_action(vm.id, "restart"),
            backend.vm_action(vm.id, "deallocate"),
            backend.update_vm(vm.id, {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}),
            backend.put_extension(vm.id, "enablevmaccess", {"location": vm.location, "properties": {}}),
            backend.run_command(vm.id, "RunShellScript", script=["true"]),
            backend.create_snapshot(vm.os_disk.id + "-snap", {"location": vm.location}),
        ]
        for attempt in attempts:
            with pytest.raises(BackendError) as info:
                await attempt
            assert info.value.code == "ReadOnly"
        plan, facts = await service.make_plan(backend, vm.id, "restart")
        with pytest.raises(RunRefused, match="read-only"):
            await Runner(backend, Journal(tmp_path / "j.sqlite3")).start(plan, lambda f, p: scenarios.build_plan("restart", f, p), facts)
        assert writes(emu) == before
    finally:
        await backend.close()


async def test_a_read_only_lock_blocks_the_plan_and_azure_refuses_writes(rig):
    plan, _ = await rig.plan("web-prod-01", "restart")
    put_lock(rig.emu, plan.vm.id.rsplit("/providers/", 1)[0], "freeze-rg")
    plan, _ = await rig.plan("web-prod-01", "restart")
    assert plan.blockers and "ReadOnly lock 'freeze-rg' on resource group rg-web-prod" in plan.blockers[0]
    with pytest.raises(BackendError) as info:
        await rig.backend.vm_action(plan.vm.id, "restart")
    assert info.value.code == "ScopeLocked"


async def test_a_lock_added_after_planning_stops_the_run_at_preflight(rig):
    plan, facts = await rig.plan("web-prod-01", "restart")
    put_lock(rig.emu, plan.vm.id, "freeze-vm")
    before = writes(rig.emu)
    result = await Runner(rig.backend, rig.journal, confirm_name="web-prod-01").start(plan, lambda f, p: scenarios.build_plan("restart", f, p), facts)
    assert result.status == "failed"
    assert result.record.steps[0].state == "failed"
    assert "ReadOnly lock" in result.summary
    assert result.record.steps[1].state == "pending"
    assert writes(rig.emu) == before


async def test_dev_ephemeral_cannot_be_deallocated_or_redeployed(rig):
    for scenario in ("deallocate", "redeploy"):
        plan, _ = await rig.plan("dev-ephemeral-01", scenario)
        assert any("ephemeral OS disk" in b for b in plan.blockers)


def record_plan(rig, plan, facts, **more) -> str:
    """A run of PLAN recorded in the journal and nothing done yet (its process gone before its first step)."""
    steps = [(s.key, s.title, str(s.kind)) for s in plan.steps]
    return record_run(rig.journal, plan.vm.id, plan.vm.name, plan.scenario, steps, target="demo", facts=facts.documents, **more)


async def test_a_second_run_on_the_same_vm_waits_for_the_unfinished_one(rig):
    plan, facts = await rig.plan("web-prod-01", "restart")
    # An interrupted run: recorded as running, nobody holds its lock.
    record_plan(rig, plan, facts, run_id="deadbeef00")
    assert rig.journal.get_run("deadbeef00").status == "interrupted"
    with pytest.raises(RunRefused, match=r"deadbeef00.*interrupted.*--resume deadbeef00"):
        await Runner(rig.backend, rig.journal).start(plan, lambda f, p: scenarios.build_plan("restart", f, p), facts)
    Runner(rig.backend, rig.journal).abandon("deadbeef00")
    assert rig.journal.get_run("deadbeef00").status == "failed"


async def test_scenario_choices_put_the_recommended_first_and_say_why_others_are_unavailable(rig):
    vm = (await service.read_vm(rig.backend, await service.find_vm(rig.backend, "sql-prod-02"))).vm
    choices = scenarios.choices(vm)
    assert choices[0][0].id == "redeploy" and choices[0][2]
    # Maintenance Azure does not allow yet (its flag false): not recommended, and unavailable with the reason.
    facts = await service.read_vm(rig.backend, await service.find_vm(rig.backend, "app-prod-ne-02"))
    by_id = {s.id: (reason, rec) for s, reason, rec in scenarios.choices(facts.vm, now=facts.fetched_at)}
    reason = by_id["perform-maintenance"][0]
    assert by_id["perform-maintenance"][1] is False and reason.startswith("Azure refuses it now: the self-service window ") and NE02_WINDOW_CLOSES in reason
    stopped = (await service.read_vm(rig.backend, await service.find_vm(rig.backend, "qa-win-01"))).vm
    by_id = {s.id: reason for s, reason, _ in scenarios.choices(stopped)}
    assert scenarios.choices(stopped)[0][0].id == "start"
    assert "restart needs it running" in by_id["restart"]
    assert "agent" in by_id["run-fix"]


# --- the operator-wait mechanism the rescue scenarios build on --------------------------------------


async def test_a_manual_step_parks_the_run_waiting_and_resumes_when_the_operator_is_done(rig):
    from backend.recovery.plan import Step, verified, wait_for_operator

    base_plan, facts = await rig.plan("web-prod-01", "snapshot-disks")

    def build(f, params):
        plan = scenarios.build_plan("snapshot-disks", f, params)

        async def wait(ctx):
            return wait_for_operator("waiting for the operator to repair the disk")

        async def check(ctx):
            return verified("the operator repaired the disk")

        plan.steps.insert(
            2,
            Step(
                key="operator",
                title="Repair the disk on the rescue VM",
                why="only a person can",
                changes="whatever the operator does",
                kind=Kind.MANUAL,
                instructions="fix fstab, then resume with --operator-done",
                precondition=wait,
                verify=check,
            ),
        )
        plan.scenario = "snapshot-disks"
        return plan

    plan = build(facts, {})
    result = await Runner(rig.backend, rig.journal, confirm_name="web-prod-01").start(plan, build, facts)
    assert result.status == "waiting" and result.exit_code == 3
    assert rig.journal.get_run(result.run_id).status == "waiting"
    assert [s.state for s in result.record.steps] == ["verified", "verified", "waiting", "pending"]
    # Resuming without --operator-done keeps waiting; nothing is redone.
    again = await Runner(rig.backend, rig.journal).resume(result.run_id, lambda sid, f, p: build(f, p))
    assert again.status == "waiting"
    done = await Runner(rig.backend, rig.journal, operator_done=True).resume(result.run_id, lambda sid, f, p: build(f, p))
    assert done.status == "succeeded", done.summary
    assert [s.state for s in done.record.steps] == ["verified", "verified", "verified", "verified"]
    snapshots = [op for op in operation_counts(rig.emu) if op[0] == "create"]
    assert len(snapshots) == 2 and all(operation_counts(rig.emu)[k] == 1 for k in snapshots)


# --- the window between sending an operation and journaling that ARM accepted it -------------


async def _run_died_while_sending(rig, *, reached_azure: bool) -> str:
    """A restart run whose process died after journaling the intent to send the
    restart and before journaling ARM's answer (the narrowest crash window)."""
    from datetime import datetime

    plan, facts = await rig.plan("web-prod-01", "restart")
    run_id = record_plan(rig, plan, facts)
    rig.journal.set_step(run_id, 0, J.VERIFIED, message="ok")
    rig.journal.set_step(run_id, 1, J.RUNNING, started=True, outputs={"sending": {"restart": datetime.now(UTC).isoformat()}})
    if reached_azure:
        await rig.backend.vm_action(plan.vm.id, "restart")
    return run_id


async def test_a_restart_that_reached_azure_before_the_crash_is_recognised_not_repeated(rig):
    run_id = await _run_died_while_sending(rig, reached_azure=True)
    result = await Runner(rig.backend, rig.journal).resume(run_id, scenarios.build_plan)
    assert result.status == "succeeded", result.summary
    assert result.record.steps[1].state == "skipped"
    assert "reached Azure" in result.record.steps[1].message
    assert ops_on(rig.emu, "restart", "web-prod-01") == 1


async def test_a_restart_that_never_left_before_the_crash_is_sent_on_resume(rig):
    run_id = await _run_died_while_sending(rig, reached_azure=False)
    result = await Runner(rig.backend, rig.journal).resume(run_id, scenarios.build_plan)
    assert result.status == "succeeded", result.summary
    assert result.record.steps[1].state == "verified"
    assert ops_on(rig.emu, "restart", "web-prod-01") == 1
