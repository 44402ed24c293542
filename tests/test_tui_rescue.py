"""The rescue and recreate scenarios in the Recovery pane, as an operator
drives them: the options (a new rescue VM or one of theirs, the common fixes
or not), the plan with its warnings, the VM's name typed for the destructive
steps, the wait for the operator with its commands and the `d` key that says
the repair is done, and the summary with the run's ledger."""

from __future__ import annotations

import itertools
import re

import pytest

from tests.recovery_support import power, vm_doc
from tests.rescue_support import guest
from tests.tui_support import choose_scenario, choose_vm, confirm_by_name, detail, make_app, open_plan, open_recovery_pane, steps_text, wait_for, wait_loaded
from widgets.confirm_dialog import ConfirmDialog
from widgets.folded_text import FoldedText
from widgets.secret_field import SecretDialog, SecretField

KEY_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAIConsoleRescueKey0042"
KEY = f"ssh-ed25519 {KEY_BODY} operator@laptop"

pytestmark = pytest.mark.xdist_group("tui-rescue")


@pytest.fixture(autouse=True)
def private_journal(recovery_journal, monkeypatch):
    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "3")


def log_text(screen) -> str:
    return "\n".join(str(line.text) for line in screen.query_one("#log").lines)


async def commands_whole_at_80x24(pilot, dialog, rescue_id: str) -> None:
    """The 'waits for you' dialog on an 80x24 screen: no line wider than its box, the rescue VM's
    address whole on its ssh line, the Bastion command's ARM id broken only before a '/' with
    bash's line continuation (so the lines pasted are the command), no comment line that runs."""
    await pilot.resize_terminal(80, 24)
    await pilot.pause(0.3)
    box = dialog.query_one("#confirm-lines", FoldedText)
    lines = box.lines
    assert box.size.width <= 70 and all(len(line) <= box.size.width for line in lines), (box.size.width, lines)
    (ssh,) = [line for line in lines if "ssh rescueadmin@" in line]
    assert re.fullmatch(r"\s+ssh rescueadmin@10\.\d+\.\d+\.\d+", ssh), ssh  # the address whole, alone with its command
    text = "\n".join(lines)
    assert f"--target-resource-id {rescue_id} --auth-type ssh-key" in re.sub(r" \\\n\s*", " ", text).replace("\\\n", ""), text
    for line, after in itertools.pairwise(lines):
        if line.endswith("\\") and not line.endswith(" \\"):  # a word broken by a continuation: only before a '/'
            assert line[-2].isalnum() and after.startswith("/"), (line, after)
    # Every address on screen is whole: none ends a line cut after a dot.
    assert not any(re.search(r"\b\d{1,3}(\.\d{1,3}){0,2}\.?$", line) for line in lines if "10." in line and "ssh" not in line), lines
    await pilot.resize_terminal(120, 40)
    await pilot.pause(0.3)


async def rescue_options(pilot, screen) -> list[str]:
    """The ids of the rescue options the pane offers for api-dev-01."""
    await choose_vm(pilot, screen, "api-dev-01")
    await choose_scenario(pilot, screen, "rescue")
    await wait_for(pilot, lambda: screen.stage == "options", what="the rescue options")
    options = screen.query_one("#options")
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


async def test_rescue_from_the_pane_waits_for_d_and_ends_with_the_ledger(emu):
    app = make_app(emu)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_recovery_pane(pilot)
        ids = await rescue_options(pilot, screen)
        options = screen.query_one("#options")
        assert ids[:2] == ["new+fixes", "new"]
        assert "existing:" + vm_doc(emu, "dev-sandbox-01")["doc"]["id"] in ids  # same group, region and OS, running
        assert "resource group of its own" in detail(screen)
        options.highlighted = 0
        await pilot.press("enter")
        # The rescue VM has no public IP: how will the operator sign in to it?
        await wait_for(pilot, lambda: screen._option_kind == "rescue-access", what="the way in to the rescue VM")
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["ssh_key", "password", "none"]
        assert "no public IP" in detail(screen) and "serial console" in detail(screen)
        await pilot.press("enter")  # your SSH public key
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), what="the key dialog")
        app.screen.query_one("#secret", SecretField).value = KEY
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", timeout=30, what="the plan")
        text = steps_text(screen)
        assert "Repair the copy on rescue-api-dev-01 (you)" in text and "Swap api-dev-01's OS disk" in text
        assert "Serial log: did not boot: emergency mode (fstab)" in detail(screen)
        assert "sign-in: - → rescueadmin with your SSH public key" in detail(screen) and KEY_BODY not in detail(screen)
        await pilot.press("o")
        await confirm_by_name(pilot, "api-dev-01")
        await wait_for(pilot, lambda: screen.waiting_run and not screen.running, timeout=60, what="the wait for the operator")
        log = log_text(screen)
        assert "lsblk -f /dev/disk/azure/scsi1/lun0" in log
        rescue = vm_doc(emu, "rescue-api-dev-01")["doc"]
        assert guest(emu, rescue["id"])["account"]["ssh_keys"] == [KEY]
        flat = " ".join(log.split())  # the log wraps long lines
        assert "private IP 10." in flat and "ssh rescueadmin@10." in flat and "aztriage console --vm rescue-api-dev-01" in flat
        assert KEY_BODY not in log
        assert "d: the repair is done" in str(screen.query_one("#status-line").content)
        assert screen.check_action("operator_done", ()) is True
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="is it done?")
        asked = "\n".join(app.screen._lines)
        assert "lsblk" in asked and "ssh rescueadmin@10." in asked
        await commands_whole_at_80x24(pilot, app.screen, vm_doc(emu, "rescue-api-dev-01")["doc"]["id"])
        await pilot.press("enter")
        # The rest deallocates the VM: its name is typed again.
        await confirm_by_name(pilot, "api-dev-01")
        await wait_for(pilot, lambda: screen.summary_text and not screen.running and not screen.waiting_run, timeout=60, what="the end of the run")
        assert "all 17 steps verified" in screen.summary_text, screen.summary_text
        log = log_text(screen)
        assert "ledger (what this run created):" in log
        assert "keep" in log and "snapshot" in log and "in-use" in log and "deleted" in log and "rescue-vm" in log
    vm_id = vm_doc(emu, "api-dev-01")["doc"]["id"]
    assert guest(emu, vm_id)["boot"] == "ok" and power(emu, "api-dev-01") == "running"


async def test_recreate_from_the_pane_needs_the_name_and_shows_what_it_keeps(emu):
    app = make_app(emu)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_plan(pilot, "dev-sandbox-01", "recreate")
        assert "DESTRUCTIVE" in steps_text(screen)
        assert "deleteOption is Delete on OS disk" in detail(screen)
        await pilot.press("o")
        dialog = await confirm_by_name(pilot, "dev-sandbox-01")
        assert any("deletes the VM resource dev-sandbox-01" in line for line in dialog._lines)
        await wait_for(pilot, lambda: screen.summary_text and not screen.running, timeout=60, what="the run")
        assert "all 12 steps verified" in screen.summary_text, screen.summary_text  # with the two extensions installed again
        assert "ledger (what this run created):" in log_text(screen) and "vm " in log_text(screen)
    assert power(emu, "dev-sandbox-01") == "running"


async def test_the_rescue_vm_chooser_offers_only_vms_that_boot(emu):
    """pg-dev-01 (same group, region and OS, running, Available) is stuck in initramfs: once the
    background probe has read its boot log, the chooser no longer offers it; dev-sandbox-01 stays."""
    app = make_app(emu, auto_probe=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        pg = app.inventory.vm_by_name("pg-dev-01")[0]
        await wait_for(pilot, lambda: app.verdict_for(pg).id == "not-booting", timeout=90, what="pg-dev-01's boot log")
        screen = await open_recovery_pane(pilot)
        ids = await rescue_options(pilot, screen)
        assert "existing:" + vm_doc(emu, "dev-sandbox-01")["doc"]["id"] in ids
        assert "existing:" + pg.id not in ids and not any(i.lower() == "existing:" + pg.id.lower() for i in ids)
