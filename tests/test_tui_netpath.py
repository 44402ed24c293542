"""The network recoveries in the Recovery pane as an operator drives them: reset-vpn opened from
payroll-app-01 brings its VPN connection back; upgrade-public-ip on rdgw-shared-01 asks for the
typed name (its disassociation is destructive) and ends with RDP answering on the same address."""

from __future__ import annotations

import pytest

from tests.test_recovery_reset_vpn import status
from tests.test_recovery_upgrade_ip import nic_and_pip, upgraded_keeping
from tests.tui_support import assert_read_only_never_runs, make_app, open_options, open_plan, run_confirmed_by_name, steps_text, wait_for
from widgets.confirm_dialog import ConfirmDialog

pytestmark = [pytest.mark.xdist_group("tui-recovery"), pytest.mark.usefixtures("recovery_journal")]  # a journal of its own per test


async def test_reset_vpn_runs_from_the_pane_and_the_connection_comes_back(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_options(pilot, "payroll-app-01", "reset-vpn")
        assert screen.query_one("#options").get_option_at_index(0).id == "connection:cn-hub-to-onprem-amsterdam"
        await pilot.press("enter")  # the connection only (the gateway option is the next line)
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert "Reset VPN connection cn-hub-to-onprem-amsterdam" in steps_text(screen)
        await pilot.press("o")
        await pilot.pause()
        if isinstance(app.screen, ConfirmDialog):
            await pilot.click("#confirm-ok")  # Run (Cancel has the focus when the plan interrupts service)
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert set(screen.states.values()) == {"verified"}
        assert status(emu) == "Connected"


async def test_upgrade_public_ip_from_the_pane_needs_the_typed_name_and_keeps_the_address(emu):
    address = nic_and_pip(emu, "rdgw-shared-01")[1]["properties"]["ipAddress"]
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_plan(pilot, "rdgw-shared-01", "upgrade-public-ip")
        assert "DESTRUCTIVE" in steps_text(screen)
        await run_confirmed_by_name(pilot, screen, "rdgw-shared-01", timeout=90)
        assert set(screen.states.values()) == {"verified"}
        upgraded_keeping(emu, "rdgw-shared-01", address)


@pytest.mark.parametrize(("vm_name", "scenario"), [("payroll-app-01", "reset-vpn"), ("rdgw-shared-01", "upgrade-public-ip")])
async def test_read_only_shows_the_network_plan_with_changes_disabled_and_never_runs(emu, vm_name, scenario):
    app = make_app(emu, read_only=True)
    async with app.run_test(size=(110, 36)) as pilot:
        if scenario == "reset-vpn":
            screen = await open_options(pilot, vm_name, scenario)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        else:
            screen = await open_plan(pilot, vm_name, scenario)
        await assert_read_only_never_runs(pilot, app, screen, emu)
