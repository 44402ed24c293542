"""How the Recovery pane looks: a plan, the scenario choice after a diagnosis,
the typed-name confirmation, the masked secret field, a read-only plan, and the
network recoveries' option lists (fix-nsg's source and hours, reset-vpn's gateway).
SVGs in snapshots/test_tui_recovery_snapshots/; nothing here changes the
emulator (no plan is confirmed), so the pictures are stable."""

from __future__ import annotations

import pytest

from tests.recovery_support import vm_doc
from tests.tui_support import make_app, wait_for, wait_loaded
from tui.messages import OpenRecovery
from tui.screens.recovery import RecoveryScreen

SIZES = [(80, 24), (160, 50)]


@pytest.fixture(autouse=True)
def empty_journal(tmp_path, monkeypatch):
    monkeypatch.setattr(RecoveryScreen, "journal_path", tmp_path / "journal.sqlite3")


async def _pane(pilot) -> RecoveryScreen:
    await wait_loaded(pilot)
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RecoveryScreen), what="the pane")
    return pilot.app.screen


async def _choose(pilot, vm: str, scenario: str, stage: str) -> RecoveryScreen:
    """The VM and the scenario chosen, on to `stage` (the plan, or the scenario's options)."""
    screen = await _pane(pilot)
    screen.query_one("#vms").set_filter(vm)
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.facts is not None and screen.stage == "scenarios", what="scenarios")
    _highlight(screen.query_one("#scenarios"), scenario)
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.stage == stage, what=stage)
    return screen


def _highlight(options, option_id: str) -> None:
    options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index(option_id)


def _on_second_option(vm: str, scenario: str):
    """A run_before: the scenario's options for the VM, the second one highlighted (j)."""

    async def run_before(pilot) -> None:
        await _choose(pilot, vm, scenario, "options")
        await pilot.press("j")
        await pilot.pause()

    return run_before


async def _plan(pilot, vm: str, scenario: str) -> RecoveryScreen:
    screen = await _choose(pilot, vm, scenario, "plan")
    await pilot.press("down")
    await pilot.pause()
    return screen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_recovery_plan(snap_compare, emu, size):
    async def run_before(pilot) -> None:
        await _plan(pilot, "web-prod-01", "redeploy")

    assert snap_compare(make_app(emu), terminal_size=size, run_before=run_before)


def test_recovery_read_only_plan(snap_compare, emu):
    async def run_before(pilot) -> None:
        await _plan(pilot, "web-prod-01", "restart")

    assert snap_compare(make_app(emu, read_only=True), terminal_size=(80, 24), run_before=run_before)


def test_recovery_scenarios_after_a_diagnosis(snap_compare, emu):
    async def run_before(pilot) -> None:
        screen = await _pane(pilot)
        vm_id = vm_doc(emu, "files-shared-01")["doc"]["id"]
        screen.post_message(
            OpenRecovery(
                vm_id,
                "run-fix",
                reason="the guest does not answer RDP although the NSG allows it",
                evidence=("NSG nsg-files-shared allows 3389 (Allow-RDP, priority 310)",),
            )
        )
        await wait_for(pilot, lambda: screen.facts is not None and screen.stage == "scenarios", what="scenarios")
        await pilot.pause()

    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=run_before)


def test_recovery_confirm_with_typed_name(snap_compare, emu):
    async def run_before(pilot) -> None:
        await _plan(pilot, "web-prod-02", "redeploy")
        await pilot.press("o")
        await pilot.pause()
        await pilot.press(*"web-prod")
        await pilot.pause()

    assert snap_compare(make_app(emu), terminal_size=(100, 30), run_before=run_before)


def test_recovery_masked_password(snap_compare, emu):
    async def run_before(pilot) -> None:
        await _choose(pilot, "files-shared-01", "reset-access", "options")
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.press(*"Not-Shown-Pa55word!")
        await pilot.pause()

    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=run_before)


def test_recovery_fix_nsg_options(snap_compare, emu):
    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=_on_second_option("jump-prod-01", "fix-nsg"))


def test_recovery_reset_vpn_gateway_option(snap_compare, emu):
    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=_on_second_option("payroll-app-01", "reset-vpn"))


def test_recovery_restore_point_options(snap_compare, emu):
    """mon-shared-eus-01's agent is not Ready: application-consistent is greyed out with the reason."""

    async def run_before(pilot) -> None:
        await _choose(pilot, "mon-shared-eus-01", "restore-point", "options")

    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=run_before)


def test_recovery_backup_now_options(snap_compare, emu):
    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=_on_second_option("erp-prod-eus-01", "backup-now"))


def put_snapshot(emu, vm: str, disk: dict, name: str, taken: str) -> None:
    """A snapshot of one of the VM's disks, taken at a fixed time (the picture does not move)."""
    doc = vm_doc(emu, vm)["doc"]
    group_id = doc["id"].split("/providers/")[0]
    emu.store.put(
        {
            "id": f"{group_id}/providers/Microsoft.Compute/snapshots/{name}",
            "name": name,
            "type": "Microsoft.Compute/snapshots",
            "location": doc["location"],
            "sku": {"name": "Standard_ZRS"},
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": disk["managedDisk"]["id"]},
                "timeCreated": taken,
                "provisioningState": "Succeeded",
            },
        }
    )


def test_recovery_restore_disk_sources(snap_compare, emu):
    storage = vm_doc(emu, "web-prod-03")["doc"]["properties"]["storageProfile"]
    put_snapshot(emu, "web-prod-03", storage["osDisk"], "snap-web-prod-03-os-before-patch", "2026-03-14T02:10:00Z")
    put_snapshot(emu, "web-prod-03", storage["osDisk"], "snap-web-prod-03-os-weekly", "2026-03-09T01:00:00Z")
    put_snapshot(emu, "web-prod-03", storage["dataDisks"][0], "snap-web-prod-03-data-before-patch", "2026-03-14T02:10:30Z")

    async def run_before(pilot) -> None:
        await _choose(pilot, "web-prod-03", "restore-disk", "options")

    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=run_before)


def test_recovery_plan_with_a_backup_first(snap_compare, emu):
    async def run_before(pilot) -> None:
        screen = await _choose(pilot, "web-prod-03", "resize", "options")
        _highlight(screen.query_one("#options"), "Standard_E4s_v5")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.plan.params.get("backup_first"), what="the plan with the backup")

    assert snap_compare(make_app(emu), terminal_size=(80, 24), run_before=run_before)
