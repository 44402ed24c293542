"""Every dialog of the console at 80x24, as an operator on a small SSH window sees it:
the confirm (Cancel first when the plan interrupts service), the destructive one that
wants the VM's name typed (a wrong name said in words, the long body scrolled with its
hint), the rescue run that waits for the operator (its commands folded to paste back whole,
the ARM id broken only before a '/'), the copy dialog (long values broken the same way), the one-line text prompt, the masked secret field with its
confirmation, the question before quitting while a recovery runs, the SysRq dialog, and
the option list that asks how to sign in to a rescue VM, the serial console's scrollback search and the keys (`?`). SVGs in
snapshots/test_dialog_snapshots/; update them with `--snapshot-update` on this whole file
after reading the new SVG's text."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.screen import ModalScreen

from tests.tui_support import make_app, screen_text, wait_for, wait_loaded
from widgets.confirm_dialog import ConfirmDialog
from widgets.copy_dialog import CopyDialog
from widgets.secret_field import SecretDialog, SecretField
from widgets.text_prompt import TextPrompt

SIZE = (80, 24)
VM_ID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-prod-weu/providers/Microsoft.Compute/virtualMachines/web-prod-01"
PLAN = [f"{i + 1}. step {i + 1} of perform-maintenance: why it is needed and what it changes" for i in range(30)]


class Host(App[None]):
    """A bare app that opens one dialog, so its picture is the dialog's own."""

    def __init__(self, dialog: ModalScreen) -> None:
        super().__init__()
        self.dialog = dialog
        self.answers: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.answers.append)


def settle(*keys: str):
    async def run_before(pilot) -> None:
        await pilot.pause(0.2)
        if keys:
            await pilot.press(*keys)
        await pilot.pause(0.2)

    return run_before


def test_confirm_of_a_plan_that_interrupts_service_has_cancel_first(snap_compare):
    lines = [
        "1. Pre-flight checks",
        "2. Restart web-prod-01",
        "3. Check that RDP answers",
        "",
        "Interrupts service: web-prod-01 stops answering while this runs.",
    ]
    dialog = ConfirmDialog("Run restart on web-prod-01?", lines, action="Run", cancel_first=True)
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle())


def test_destructive_confirm_with_a_wrong_name_typed(snap_compare):
    dialog = ConfirmDialog("Run perform-maintenance on app-prod-ne-02?", PLAN, type_name="app-prod-ne-02", action="Run 30 steps")
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle(*"app-prod-ne-01", "enter"))


def test_destructive_confirm_scrolled_to_the_end(snap_compare):
    dialog = ConfirmDialog("Run perform-maintenance on app-prod-ne-02?", PLAN, type_name="app-prod-ne-02", action="Run 30 steps")
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle(*["pagedown"] * 6))


def test_copy_dialog(snap_compare):
    items = [
        ("resource id", VM_ID),
        ("portal link", f"https://portal.azure.com/#@/resource{VM_ID}/overview"),
        ("connect", "mstsc /v:web-prod-01.westeurope.cloudapp.azure.test"),
    ]
    dialog = CopyDialog("Copy: web-prod-01", items, file_stem="web-prod-01", write=lambda *_: None)
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle())


def rescue_instructions(os_type: str, address: str) -> str:
    """A new rescue VM's instructions as the rescue scenario writes them once its address is known
    (a layout of only what they read: the names, the LUN, how the operator signs in)."""
    from types import SimpleNamespace

    from backend.recovery.scenarios import rescue

    windows = os_type == "Windows"
    name = "iis-test-01" if windows else "api-dev-01"
    layout = SimpleNamespace(
        vm=SimpleNamespace(name=name, os_type=os_type),
        rescue_name=f"rescue-{name}",
        rescue_id=f"/subscriptions/c7a95f30-91be-4d28-8e4f-2b6d3a7c9015/resourceGroups/rescue-{name}-20261207015239/providers/Microsoft.Compute/virtualMachines/rescue-{name}",
        lun=0,
        copy_name=f"{name}-osdisk-rescued-20261207015239",
        generation="V2",
        verdict=None,
        new_rescue=True,
        credential="password" if windows else "ssh_key",
        windows=windows,
    )
    return rescue._instructions(layout, address)


@pytest.mark.parametrize("os_type", ["Linux", "Windows"])
def test_rescue_waits_for_you_with_its_commands_whole(snap_compare, os_type):
    from backend.shellcmd import POSIX, POWERSHELL, fold_text

    shell = POWERSHELL if os_type == "Windows" else POSIX
    lines = [rescue_instructions(os_type, "10.30.1.9"), "", "Is it done?"]
    dialog = ConfirmDialog("Run 5a81ba44c8 waits for you", lines, action="It is done", fold=lambda text, width: fold_text(text, width, shell))
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle(*["pagedown"] * (0 if os_type == "Linux" else 2)))


def test_text_prompt_with_a_refused_answer(snap_compare):
    def check(value: str) -> str:
        raise ValueError(f"{value} is not an IP address or a CIDR range.")

    dialog = TextPrompt(
        "Source address", "The address (or CIDR range) the NSGs are evaluated for; empty: the detected one.", check=check, placeholder="203.0.113.7"
    )
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle(*"not-an-address", "enter"))


def test_secret_field_typed_masked_twice(snap_compare):
    dialog = SecretDialog("New password", "The password for rescueadmin on the rescue VM (typed masked, twice; never kept):", confirm=True)
    assert snap_compare(Host(dialog), terminal_size=SIZE, run_before=settle(*"Sentinel-Pa55", "enter", *"Sentinel-Pa5"))


async def test_secret_dialog_wants_the_same_value_twice_and_never_shows_it():
    dialog = SecretDialog("New password", "The password (typed twice):", confirm=True)
    app = Host(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await pilot.press(*"Sentinel-Pa55", "enter")
        assert dialog.query_one("#secret-again", SecretField).has_focus  # enter moves to the confirmation
        await pilot.press(*"Sentinel-Pa56", "enter")
        await pilot.pause(0.1)
        shown = screen_text(app)
        assert "The two entries differ" in shown and "Sentinel" not in shown
        assert [f.value for f in dialog.query(SecretField)] == ["", ""] and app.answers == []
        await pilot.press(*"Sentinel-Pa55", "enter", *"Sentinel-Pa55", "enter")
        await pilot.pause(0.1)
    assert app.answers == ["Sentinel-Pa55"]


def test_sysrq_dialog(snap_compare):
    from tui.screens.serial_console import SysRqDialog

    assert snap_compare(Host(SysRqDialog("api-dev-01")), terminal_size=SIZE, run_before=settle())


def test_scrollback_search_of_the_serial_console(snap_compare):
    from tui.screens.serial_console import ScrollbackSearch

    lines = [f"[  {n:4d}.000000] systemd[1]: Started unit {n}." for n in range(1, 60)] + [
        "[   61.034000] systemd[1]: Timed out waiting for device /dev/disk/by-uuid/2df1230a-1c2d-4e5f-8a9b-f292af692df1.",
        'You are in emergency mode. After logging in, type "journalctl -xb" to view system logs.',
    ]
    assert snap_compare(Host(ScrollbackSearch(lines)), terminal_size=SIZE, run_before=settle(*"Timed out"))


def test_help_at_80x24(snap_compare, emulator):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(make_app(emulator), terminal_size=SIZE, run_before=run_before)


def test_quit_while_a_recovery_runs(snap_compare, emulator):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        pilot.app.recovery_in_progress = ("web-prod-01", "5e1f0c2a9b")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the question")
        await pilot.pause(0.2)

    assert snap_compare(make_app(emulator), terminal_size=SIZE, run_before=run_before)


@pytest.mark.xdist_group("tui-rescue")
def test_option_list_how_to_sign_in_to_the_rescue_vm(snap_compare, emulator):
    from tests.tui_support import choose_scenario, choose_vm, open_recovery_pane

    async def run_before(pilot) -> None:
        screen = await open_recovery_pane(pilot)
        await choose_vm(pilot, screen, "api-dev-01")
        await choose_scenario(pilot, screen, "rescue")
        await wait_for(pilot, lambda: screen.stage == "options", what="the rescue options")
        await pilot.press("enter")  # a new rescue VM
        await wait_for(pilot, lambda: screen._option_kind == "rescue-access", what="the way in")
        await pilot.pause(0.2)

    assert snap_compare(make_app(emulator), terminal_size=SIZE, run_before=run_before)
