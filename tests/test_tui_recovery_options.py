"""The #19 recoveries' options in the Recovery pane, each one the CLI offers: restore-point's
consistency (a mode the VM cannot take now greyed out with the reason), backup-now's days kept,
backup-first on a protected VM's plan (y, the plan made again), restore-disk's disk and what it is
restored from (only the snapshots of the VM's own disks). All by keys, through the real app; the
run records its options as the CLI records them, so the CLI resumes a run the pane started."""

from __future__ import annotations

import pytest

from tests.recovery_support import arm_request, journal_path, json_lines, vm_doc
from tests.rescue_support import fault
from tests.test_recovery_cli import aztriage, one_line_error, runs
from tests.test_tui_network_options import answer, move_to, option_ids, option_text
from tests.tui_support import choose_scenario, choose_vm, detail, make_app, open_options, open_plan, open_recovery_pane, steps_text, wait_for
from tui.screens.recovery import RecoveryScreen
from widgets.confirm_dialog import ConfirmDialog
from widgets.secret_field import SecretDialog
from widgets.text_prompt import TextPrompt

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtest ops@contoso"

pytestmark = pytest.mark.xdist_group("tui-recovery")


@pytest.fixture(autouse=True)
def private_journal(recovery_journal):
    return recovery_journal


def cli(emu, home, *args: str):
    return aztriage(emu, home, *args)


def dry_run_params(emu, home, *args: str) -> dict:
    """The options the CLI's plan records for these arguments (`recover --dry-run --format json`)."""
    proc = cli(emu, home, "recover", *args, "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = json_lines(proc.stdout)
    return line["plan"]["params"]


async def test_restore_point_offers_the_modes_the_vm_can_take_and_plans_the_chosen_one(emu, tmp_path):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "web-prod-01", "restore-point")
        assert option_ids(screen) == ["application", "crash"]
        assert "(the default)" in option_text(screen, "application") and screen.query_one("#options").highlighted == 0
        assert "Ready VM agent" in " ".join(detail(screen).split())
        await pilot.press("j", "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"consistency": "crash"}
        assert "Take a crash-consistent restore point of web-prod-01" in steps_text(screen)
        assert "crash-consistent restore point is like pulling the plug" in detail(screen)
        await pilot.press("escape")  # back to the modes, the one chosen highlighted
        await wait_for(pilot, lambda: screen.stage == "options", what="the modes again")
        assert screen.query_one("#options").highlighted == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")

    # A VM whose agent is not Ready: application-consistent is greyed out and says why; crash is the default.
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "mon-shared-eus-01", "restore-point")
        options = screen.query_one("#options")
        assert options.get_option_at_index(0).disabled and "not now: an application-consistent restore point needs" in option_text(screen, "application")
        assert options.highlighted == 1 and "(the default)" in option_text(screen, "crash")
        await pilot.press("k", "enter")  # the greyed-out mode cannot be chosen
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"consistency": "crash"} and not screen.plan.blockers
    assert dry_run_params(emu, tmp_path, "--vm", "web-prod-01", "--scenario", "restore-point", "--consistency", "crash") == {"consistency": "crash"}


async def test_backup_now_takes_the_days_typed_and_refuses_more_than_99(emu, tmp_path):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "erp-prod-eus-01", "backup-now")
        assert option_ids(screen) == ["backup", "days"]
        assert "Back up now in vault rsv-prod-eus, the recovery point kept 30 days" in option_text(screen, "backup")
        await move_to(pilot, screen, "days")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the days prompt")
        assert app.screen.query_one("#prompt-input").value == "30"
        prompt = await answer(pilot, app, "100")
        assert app.screen is prompt and "from 1 to 99" in str(prompt.query_one("#prompt-error").content)
        await answer(pilot, app, "7")
        await wait_for(pilot, lambda: app.screen is screen and "kept 7 days" in option_text(screen, "backup"), what="the days")
        assert screen.query_one("#options").highlighted == 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"retain_days": 7} and "(kept 7 days)" in screen.plan.summary
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "options", what="the backup options again")
        assert "kept 7 days" in option_text(screen, "backup") and screen.query_one("#options").highlighted == 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")

    # No vault protects jump-prod-01: no options, the plan says why.
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, "jump-prod-01", "backup-now")
        assert screen.plan.blockers and "not protected by Azure Backup" in detail(screen)
    assert dry_run_params(emu, tmp_path, "--vm", "erp-prod-eus-01", "--scenario", "backup-now", "--retain-days", "7") == {"retain_days": 7}


async def test_y_on_a_protected_vms_plan_takes_a_backup_first_and_y_again_leaves_it_out(emu, tmp_path):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "web-prod-03", "resize")
        await move_to(pilot, screen, "Standard_E4s_v5")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert "Back up" not in steps_text(screen) and "y on the Recovery pane's plan" in detail(screen)
        assert app.active_bindings["y"].enabled and "y: back up first" in str(screen.query_one("#status-line").content)
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.plan.params.get("backup_first"), what="the plan with the backup")
        assert screen.stage == "plan" and screen.plan.params == {"size": "Standard_E4s_v5", "backup_first": True}
        assert "Back up web-prod-03 now in vault" in steps_text(screen) and screen.plan.summary.startswith("Back up web-prod-03 first, then:")
        await pilot.press("y")
        await wait_for(pilot, lambda: not screen.plan.params.get("backup_first"), what="the plan without it")
        assert screen.plan.params == {"size": "Standard_E4s_v5"} and "Back up" not in steps_text(screen)
    want = dry_run_params(emu, tmp_path, "--vm", "web-prod-03", "--scenario", "resize", "--size", "Standard_E4s_v5", "--backup-first")
    assert want == {"size": "Standard_E4s_v5", "backup_first": True}

    # Nothing protects jump-prod-01: its recreate plan has no b.
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, "jump-prod-01", "recreate")
        assert "y" not in app.active_bindings or not screen.check_action("backup_first", ())
        await pilot.press("y")
        await pilot.pause()
        assert "backup_first" not in screen.plan.params and "Back up" not in steps_text(screen)


def snapshot_of(emu, vm: str, disk_name: str, snapshot: str) -> str:
    """A snapshot of one of the VM's disks, in its resource group, as an operator takes it in the portal."""
    doc = vm_doc(emu, vm)["doc"]
    storage = doc["properties"]["storageProfile"]
    disk = next(d for d in [storage["osDisk"], *storage["dataDisks"]] if d["name"] == disk_name)
    snapshot_id = doc["id"].split("/providers/")[0] + f"/providers/Microsoft.Compute/snapshots/{snapshot}"
    body = {"location": doc["location"], "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk["managedDisk"]["id"]}}}
    code, _ = arm_request(emu, "PUT", snapshot_id, body)
    assert code in (200, 201, 202), code
    return snapshot_id


def disk_names(emu, vm: str) -> tuple[str, str]:
    storage = vm_doc(emu, vm)["doc"]["properties"]["storageProfile"]
    return storage["osDisk"]["name"], storage["dataDisks"][0]["name"]


async def test_restore_disk_lists_the_snapshots_of_each_disk_and_the_cli_resumes_the_run(emu, tmp_path, monkeypatch):
    os_disk, data_disk = disk_names(emu, "web-prod-03")
    os_snap = snapshot_of(emu, "web-prod-03", os_disk, "snap-os-before-patch")
    data_snap = snapshot_of(emu, "web-prod-03", data_disk, "snap-data-before-patch")
    snapshot_of(emu, "web-prod-01", disk_names(emu, "web-prod-01")[0], "snap-of-web-prod-01")  # same group, another VM
    monkeypatch.setattr(RecoveryScreen, "journal_path", journal_path(tmp_path))  # the CLI's journal, to resume from it
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "web-prod-03", "restore-disk")
        options = screen.query_one("#options")
        lines = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert lines[0] == f"OS disk {os_disk}" and lines[1].startswith("  snapshot snap-os-before-patch · 20")
        assert lines[2] == f"Data disk {data_disk} (LUN 0)" and "  snapshot snap-data-before-patch · " in lines[3]
        assert not any("snap-of-web-prod-01" in line for line in lines)
        assert options.highlighted == 1 and "Interrupts service" in detail(screen)
        await pilot.press("j")  # over the data disk's heading to its snapshot
        await pilot.pause()
        assert options.highlighted == 3 and "swapped while the VM runs" in detail(screen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"disk": "0", "source": data_snap}
        assert f"Swap data disk {data_disk} (LUN 0)" in steps_text(screen)
        await pilot.press("escape")  # the sources again, the snapshot chosen highlighted
        await wait_for(pilot, lambda: screen.stage == "options", what="the sources again")
        assert options.highlighted == 3
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")
        await choose_scenario(pilot, screen, "restore-disk")
        await wait_for(pilot, lambda: screen.stage == "options", what="the options")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"disk": "os", "source": os_snap}
        # The run stops at its deallocation (refused once by Azure); the CLI resumes it as the pane started it.
        fault(emu, {"match": "/deallocate", "method": "POST", "lro_result": "Failed", "count": 1})
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        await pilot.press(*"web-prod-03", "enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        run_id = screen.run_id
        assert "failed" in screen.states.values(), screen.states
    want = dry_run_params(emu, tmp_path, "--vm", "web-prod-03", "--scenario", "restore-disk", "--source", "snap-os-before-patch")
    assert want == {"disk": "os", "source": os_snap}
    (record,) = runs(emu, tmp_path)
    assert record["params"] == want
    done = cli(emu, tmp_path, "recover", "--resume", run_id, "--confirm", "web-prod-03")
    assert done.returncode == 0, done.stdout + done.stderr
    assert disk_names(emu, "web-prod-03")[0] != os_disk


async def test_a_run_the_cli_started_resumes_in_the_pane(emu, tmp_path, monkeypatch):
    fault(emu, {"match": "/restorePoints/", "method": "PUT", "lro_result": "Failed", "count": 1})
    failed = cli(emu, tmp_path, "recover", "--vm", "web-prod-01", "--scenario", "restore-point", "--consistency", "crash", "--yes")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (record,) = runs(emu, tmp_path)
    assert record["params"] == {"consistency": "crash"}
    monkeypatch.setattr(RecoveryScreen, "journal_path", journal_path(tmp_path))
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_recovery_pane(pilot)
        await pilot.press("H")
        await wait_for(pilot, lambda: screen.stage == "runs", what="the runs")
        await pilot.press("R")
        await wait_for(pilot, lambda: screen.run_id == record["run_id"] and not screen.running and screen.summary_text, timeout=60, what="the run")
        assert set(screen.states.values()) <= {"verified", "skipped"}, screen.messages
        assert "Take a crash-consistent restore point of web-prod-01" in steps_text(screen)
        restore_point = runs(emu, tmp_path)[0]["resources"][-1]["resource_id"]

        # The restore point is now offered under each disk it holds, for restore-disk.
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "vms", what="the VMs")
        await choose_vm(pilot, screen, "web-prod-01")
        await choose_scenario(pilot, screen, "restore-disk")
        await wait_for(pilot, lambda: screen.stage == "options", what="the options")
        name = restore_point.rsplit("/", 1)[-1]
        offered = [line for line in (option_text(screen, i) for i in option_ids(screen)) if name in line]
        assert len(offered) == 1 + len(vm_doc(emu, "web-prod-01")["doc"]["properties"]["storageProfile"]["dataDisks"])
        assert offered[0].startswith(f"  restore point {name} · ") and offered[0].endswith(" · crash-consistent")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"disk": "os", "source": restore_point} and not screen.plan.blockers
    assert dry_run_params(emu, tmp_path, "--vm", "web-prod-01", "--scenario", "restore-disk", "--source", name) == {"disk": "os", "source": restore_point}


async def test_a_hostile_snapshot_name_is_shown_as_text(emu):
    """A snapshot named with a terminal escape and markup (the tenant writes names): the picker shows it
    made visible and literal, never obeyed or parsed."""
    doc = vm_doc(emu, "web-prod-03")["doc"]
    disk_id = doc["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
    name = "snap-\x1b[2J[bold]x[/bold]\u202e"
    emu.store.put(
        {
            "id": doc["id"].split("/providers/")[0] + "/providers/Microsoft.Compute/snapshots/snap-hostile",
            "name": name,
            "type": "Microsoft.Compute/snapshots",
            "location": doc["location"],
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": disk_id},
                "timeCreated": "2026-03-14T02:10:00Z",
                "provisioningState": "Succeeded",
            },
        }
    )
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "web-prod-03", "restore-disk")
        line = option_text(screen, option_ids(screen)[1])
        assert "[bold]x[/bold]" in line and "\x1b" not in line and "\u202e" not in line
        shown = detail(screen)
        assert "[bold]x[/bold]" in shown and "\x1b" not in shown


async def options_of_another_vm(pilot, screen, vm_name: str, scenario_id: str, what: str) -> None:
    """From the scenarios of one VM, esc back to the VMs (esc again clears the filter), then
    `scenario_id`'s options for `vm_name` (`what`)."""
    await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")
    await pilot.press("escape")
    await wait_for(pilot, lambda: screen.stage == "vms", what="the VMs")
    await pilot.press("escape")
    await choose_vm(pilot, screen, vm_name)
    await choose_scenario(pilot, screen, scenario_id)
    await wait_for(pilot, lambda: screen.stage == "options", what=what)


async def test_every_other_option_the_cli_takes_is_in_the_pane(emu, tmp_path):
    """reset-access's --reset-config with --ssh-key, rescue's --rescue-vm without --run-fixes and
    move-to-set's --availability-set of any name: each chosen by keys, recorded as the CLI records it."""
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        # reset-access on Linux: the SSH configuration reset and a key installed, in one run.
        screen = await open_options(pilot, "build-lnx-01", "reset-access")
        await move_to(pilot, screen, "config+ssh_key")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen._option_kind == "account", what="the accounts")
        await pilot.press("enter")  # azureuser, the VM's administrator
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), what="the key dialog")
        await pilot.press(*KEY, "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert {k: screen.plan.params[k] for k in ("credential", "reset_config", "username")} == {
            "credential": "ssh_key",
            "reset_config": True,
            "username": "azureuser",
        }
        changes = screen.plan.steps[1].changes
        assert "restores the default sshd configuration" in changes and "adds the SSH public key to azureuser" in changes
        await pilot.press("escape")  # the account chosen, then what was reset: each esc one choice back
        await wait_for(pilot, lambda: screen.stage == "options" and screen._option_kind == "account", what="the accounts again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen._option_kind == "access", what="the access choices again")
        assert option_ids(screen)[screen.query_one("#options").highlighted] == "config+ssh_key"
        await pilot.press("escape")

        # rescue on an existing VM, the disk repaired by hand (no common fixes run).
        await options_of_another_vm(pilot, screen, "api-dev-01", "rescue", "the rescue options")
        sandbox = vm_doc(emu, "dev-sandbox-01")["doc"]["id"]
        assert option_text(screen, f"existing-manual:{sandbox}") == "  Use dev-sandbox-01; you repair the disk yourself"
        await move_to(pilot, screen, f"existing-manual:{sandbox}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"rescue_vm": sandbox, "run_fixes": False, "credential": None}
        assert not any("common fixes" in step.title.lower() for step in screen.plan.steps)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "options", what="the rescue options again")
        await pilot.press("escape")

        # move-to-set into a set named by the operator (refused: a name Azure would not take).
        await options_of_another_vm(pilot, screen, "sql-prod-02", "move-to-set", "the sets")
        assert option_ids(screen)[-1] == "+set"
        await pilot.press("G", "enter")
        prompt = await answer(pilot, app, "avset sql/c")
        assert app.screen is prompt and "is not an availability set's name" in str(prompt.query_one("#prompt-error").content)
        await answer(pilot, app, "avset-sql-prod-c")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        set_id = screen.plan.params["availability_set"]
        assert set_id.endswith("/availabilitySets/avset-sql-prod-c") and not screen.plan.blockers
    assert dry_run_params(emu, tmp_path, "--vm", "sql-prod-02", "--scenario", "move-to-set", "--availability-set", "avset-sql-prod-c") == {
        "availability_set": set_id
    }
    refused = cli(emu, tmp_path, "recover", "--vm", "sql-prod-02", "--scenario", "move-to-set", "--availability-set", "sql/c", "--dry-run")
    assert refused.returncode == 2 and "is not an availability set's name" in one_line_error(refused)


def status_line(screen) -> str:
    return str(screen.query_one("#status-line").content)


async def test_esc_on_a_rescue_plan_goes_back_to_its_options_with_the_choice_highlighted(emu):
    """esc on a plan made from options goes back to them, the choice made highlighted; each esc one choice
    back from there (how to sign in to a new rescue VM, then which rescue VM), then the scenarios. The
    status line says where esc goes, at 80x24."""
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "api-dev-01", "rescue")
        sandbox = vm_doc(emu, "dev-sandbox-01")["doc"]["id"]
        assert "esc: the scenarios" in status_line(screen)
        await move_to(pilot, screen, f"existing-manual:{sandbox}")
        chosen = screen.query_one("#options").highlighted
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert "esc: the options" in status_line(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "options", what="the rescue options again")
        assert screen.query_one("#options").highlighted == chosen and option_ids(screen)[chosen] == f"existing-manual:{sandbox}"
        assert "esc: the scenarios" in status_line(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")

        # A new rescue VM with no way in: esc goes back to how to sign in, then to the rescue VM chosen.
        await choose_scenario(pilot, screen, "rescue")
        await wait_for(pilot, lambda: screen.stage == "options" and screen._option_kind == "rescue", what="the rescue options")
        await move_to(pilot, screen, "new")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen._option_kind == "rescue-access", what="how to sign in")
        assert "esc: the previous options" in status_line(screen)
        await move_to(pilot, screen, "none")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"rescue_vm": None, "run_fixes": False, "credential": None}
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "options", what="how to sign in again")
        assert screen._option_kind == "rescue-access" and option_ids(screen)[screen.query_one("#options").highlighted] == "none"
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen._option_kind == "rescue", what="the rescue options again")
        assert option_ids(screen)[screen.query_one("#options").highlighted] == "new"
        assert "esc: the scenarios" in status_line(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")

        # A scenario without options: esc on its plan goes to the scenarios, as before.
        await choose_scenario(pilot, screen, "restart")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the restart plan")
        assert "esc: the scenarios" in status_line(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")
