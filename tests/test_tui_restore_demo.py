"""The demo's restore story in the console: Recovery → iis-test-01 (INACCESSIBLE_BOOT_DEVICE) →
restore-disk offers last night's restore point and yesterday's snapshot of its OS disk (the
estate's, newest first); choosing the restore point plans the swap from its disk restore point,
and the run, confirmed by the VM's name, ends verified with RDP answering: the guest boots again."""

from __future__ import annotations

import pytest

from tests.recovery_support import vm_doc
from tests.rescue_support import guest
from tests.tui_support import detail, make_app, open_options, run_confirmed_by_name, steps_text, wait_for

pytestmark = pytest.mark.xdist_group("tui-recovery")


@pytest.fixture(autouse=True)
def private_journal(recovery_journal):
    return recovery_journal


async def test_iis_test_01_is_restored_from_last_nights_restore_point_in_the_console(emu, monkeypatch):
    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "3")
    vm_id = vm_doc(emu, "iis-test-01")["doc"]["id"]
    assert guest(emu, vm_id)["boot"] == "stop-code:INACCESSIBLE_BOOT_DEVICE"
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "iis-test-01", "restore-disk")
        options = screen.query_one("#options")
        lines = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert lines[0].startswith("OS disk iis-test-01_OsDisk_1_"), lines
        assert lines[1].startswith("  restore point rp-nightly · ") and "app-consistent" in lines[1], lines
        assert lines[2].startswith("  snapshot iis-test-01-os-before-update · "), lines
        assert options.highlighted == 1 and "made from restore point rp-nightly" in detail(screen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["source"].endswith("/restorePointCollections/rpc-iis-test-01/restorePoints/rp-nightly")
        assert "Make iis-test-01_OsDisk_1_" in steps_text(screen) and "Check that RDP answers" in steps_text(screen)
        await run_confirmed_by_name(pilot, screen, "iis-test-01", timeout=90)
        assert set(screen.states.values()) == {"verified"}, screen.states
    assert guest(emu, vm_id).get("boot") in (None, "ok")
    assert "-restored-" in vm_doc(emu, "iis-test-01")["doc"]["properties"]["storageProfile"]["osDisk"]["name"]
