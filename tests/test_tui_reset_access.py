"""reset-access in the Recovery pane, to the end without a CLI flag: the account is chosen from
those the VM's model names (its administrator, the users whose SSH keys it places) or typed
(checked; VMAccess creates it on Linux), even where the model names no administrator; the new
password is typed twice in masked fields, must match, and is never shown or kept."""

from __future__ import annotations

import pytest

from tests.test_tui_network_options import answer, option_ids
from tests.tui_support import choose_scenario, choose_vm, make_app, open_recovery_pane, wait_for
from widgets.confirm_dialog import ConfirmDialog
from widgets.secret_field import SecretDialog

pytestmark = pytest.mark.xdist_group("tui-recovery")

PASSWORD = "Sentinel-Pa55-ACCOUNT-77"


@pytest.fixture(autouse=True)
def private_journal(recovery_journal):
    return recovery_journal


async def to_credential(pilot, screen, vm: str, credential: str) -> None:
    await choose_vm(pilot, screen, vm)
    await choose_scenario(pilot, screen, "reset-access")
    await wait_for(pilot, lambda: screen.stage == "options", what="the options")
    screen.query_one("#options").highlighted = option_ids(screen).index(credential)
    await pilot.press("enter")


async def test_a_new_linux_account_is_named_and_its_password_typed_twice(emu, private_journal):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_recovery_pane(pilot)
        await to_credential(pilot, screen, "build-lnx-01", "password")
        await wait_for(pilot, lambda: screen._option_kind == "account", what="the accounts")
        assert option_ids(screen) == ["azureuser", "+account"]
        assert "the VM's administrator" in str(screen.query_one("#options").get_option_at_index(0).prompt)
        await pilot.press("G", "enter")
        prompt = await answer(pilot, app, "root")
        assert app.screen is prompt and "reserved account" in str(prompt.query_one("#prompt-error").content)
        prompt = await answer(pilot, app, "Ops Rescue")
        assert app.screen is prompt and "not an account name" in str(prompt.query_one("#prompt-error").content)
        await answer(pilot, app, "opsrescue")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), what="the password dialog")
        dialog = app.screen
        assert "opsrescue" in str(dialog.query_one("#secret-prompt").content)
        await pilot.press(*PASSWORD, "enter")
        await pilot.pause()
        assert app.focused is dialog.query_one("#secret-again")  # asked again, the first one unseen
        await pilot.press(*PASSWORD[:-1], "enter")
        await pilot.pause()
        assert "differ" in str(dialog.query_one("#secret-error").content)
        assert dialog.query_one("#secret").value == "" and dialog.query_one("#secret-again").value == ""
        assert PASSWORD not in app.export_screenshot()
        await pilot.press(*PASSWORD, "enter", *PASSWORD, "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["username"] == "opsrescue"
        assert "sets a new password for opsrescue (the account is created if it does not exist)" in screen.plan.steps[1].changes
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert screen.states[1] == "verified", screen.messages
        assert PASSWORD not in app.export_screenshot()
    assert PASSWORD.encode() not in private_journal.read_bytes()


async def test_no_administrator_in_the_model_is_no_longer_a_dead_end(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_recovery_pane(pilot)
        # Linux: no account is known, so the list offers only a typed one.
        await to_credential(pilot, screen, "legacy-ftp-01", "ssh_key")
        await wait_for(pilot, lambda: screen._option_kind == "account", what="the accounts")
        assert option_ids(screen) == ["+account"]
        await pilot.press("enter")
        await answer(pilot, app, "ftpadmin")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), what="the key dialog")
        assert not app.screen.query("#secret-again")  # a public key is not a secret typed blind
        await pilot.press(*"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtest ops@contoso", "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["username"] == "ftpadmin" and not screen.plan.blockers
        # Windows: VMAccess resets only the administrator, whose name the operator gives.
        await pilot.press("escape", "escape", "escape", "escape")  # the accounts, the access choices, the scenarios, the VMs
        await wait_for(pilot, lambda: screen.stage == "vms", what="the VMs")
        await pilot.press("escape")
        await to_credential(pilot, screen, "legacy-app-01", "password")
        prompt = await answer(pilot, app, "contoso/admin")
        assert app.screen is prompt and "not an account name" in str(prompt.query_one("#prompt-error").content)
        await answer(pilot, app, "legacyadmin")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), what="the password dialog")
        await pilot.press(*PASSWORD, "enter", *PASSWORD, "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["username"] == "legacyadmin"
