"""fix-nsg in the Recovery pane, as an operator drives it from the Connectivity diagnosis:
the scenario comes first and recommended, its options (your address, the source and hours
to change, anywhere with a typed phrase, delete the rule with the VM's name typed), the run to a verified RDP
check, and read-only."""

from __future__ import annotations

import pytest

from tests.recovery_support import resources, vm_doc, writes
from tests.tui_support import assert_read_only_never_runs, make_app, open_recovery_pane, run_confirmed_by_name, steps_text, wait_for
from tui.messages import OpenRecovery
from widgets.confirm_dialog import ConfirmDialog

pytestmark = [pytest.mark.xdist_group("tui-recovery"), pytest.mark.usefixtures("recovery_journal")]  # a journal of its own per test


def jump_rules(emu) -> dict[str, dict]:
    (doc,) = [d for d in resources(emu, "Microsoft.Network/networkSecurityGroups") if d["name"] == "nsg-jump-prod"]
    return {r["name"]: r["properties"] for r in doc["properties"].get("securityRules") or ()}


async def open_fix_nsg(pilot, emu, option: str, *, choose: bool = True):
    screen = await open_recovery_pane(pilot)
    vm_id = vm_doc(emu, "jump-prod-01")["doc"]["id"]
    screen.post_message(OpenRecovery(vm_id, "fix-nsg", reason="blocked by NSG rule Deny-RDP-Incident-4711 at priority 200 (NIC NSG nsg-jump-prod)"))
    await wait_for(pilot, lambda: screen.facts is not None and screen.stage == "scenarios", what="the scenarios")
    options = screen.query_one("#scenarios")
    first = options.get_option_at_index(0)
    assert first.id == "fix-nsg" and "recommended" in str(first.prompt) and options.highlighted == 0
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.stage == "options", what="the options")
    choices = screen.query_one("#options")
    ids = [choices.get_option_at_index(i).id for i in range(choices.option_count)]
    assert ids == ["allow", "source", "hours", "wide", "disable"]
    choices.highlighted = ids.index(option)
    if choose:
        await pilot.press("enter")
    return screen


async def test_fix_nsg_from_the_diagnosis_to_rdp_answering(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "allow")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        text = steps_text(screen)
        assert "Temporary allow rule: 192.88.99.10 to port 3389" in text
        assert screen.plan.steps[1].title == "Temporary allow rule: 192.88.99.10 to port 3389, priority 199, NIC NSG nsg-jump-prod"
        assert "Check that RDP answers" in text
        before = writes(emu)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        assert app.screen.type_name is None and writes(emu) == before
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert screen.states == {0: "verified", 1: "verified", 2: "verified"}, screen.summary_text
        assert f"aztriage-{screen.run_id}-allow-3389" in jump_rules(emu)
        log_text = "\n".join(str(line.text) for line in screen.query_one("#log").lines)
        assert "RDP answers on" in log_text


async def test_anywhere_needs_the_phrase_typed(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "wide")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the phrase dialog")
        dialog = app.screen
        assert dialog.type_name == "allow 3389 from anywhere"
        await pilot.press(*"allow 3389", "enter")
        await pilot.pause()
        hint = str(dialog.query_one("#confirm-hint").content)
        assert isinstance(app.screen, ConfirmDialog) and "does not match" in hint and "'allow 3389 from anywhere'" in hint
        await pilot.press(*" from anywhere", "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.steps[1].title.startswith("Temporary allow rule: anywhere (every internet address) to port 3389")
        assert screen.plan.params["source"] == "*" and not screen.plan.blockers


async def test_deleting_the_rule_asks_for_the_vms_name(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "disable")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert "DESTRUCTIVE" in steps_text(screen) and "Delete the blocking rule Deny-RDP-Incident-4711" in steps_text(screen)
        await run_confirmed_by_name(pilot, screen, "jump-prod-01", timeout=60)
        assert screen.states[1] == "verified" and "Deny-RDP-Incident-4711" not in jump_rules(emu)


async def test_read_only_shows_the_rule_change_disabled(emu):
    app = make_app(emu, read_only=True)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "allow")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        await assert_read_only_never_runs(pilot, app, screen, emu)


async def _runs_stage(pilot, screen, run_id: str) -> None:
    await pilot.press("escape")
    await pilot.press("H")
    await wait_for(pilot, lambda: screen.stage == "runs", what="the runs")
    table = screen.query_one("#runs")
    assert table.cursor_item is not None and table.cursor_item.run_id == run_id


async def test_release_and_undo_from_the_runs_stage(emu):
    before = jump_rules(emu)
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "allow")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        run_id = screen.run_id
        assert len(jump_rules(emu)) == len(before) + 1
        await _runs_stage(pilot, screen, run_id)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the release dialog")
        dialog = app.screen
        assert dialog.type_name == run_id and "DELETE security-rule" in str(dialog.query_one("#confirm-lines").content)
        await pilot.press(*run_id, "enter")
        await wait_for(pilot, lambda: jump_rules(emu) == before, timeout=30, what="the rule deleted")

        # The destructive option, then its undo: the rule comes back as it was.
        screen = await open_fix_nsg(pilot, emu, "disable")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        await pilot.press(*"jump-prod-01", "enter")
        await wait_for(pilot, lambda: screen.run_id and screen.run_id != run_id and not screen.running, timeout=60, what="the run")
        assert "Deny-RDP-Incident-4711" not in jump_rules(emu)
        await _runs_stage(pilot, screen, screen.run_id)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the undo dialog")
        await pilot.press(*screen.run_id, "enter")
        await wait_for(pilot, lambda: jump_rules(emu) == before, timeout=30, what="the rule restored")


async def test_the_options_say_where_your_address_came_from(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "allow", choose=False)
        shown = str(screen.query_one("#detail").render())
        assert "Your address 192.88.99.10: the demo's address for you." in shown


async def test_behind_nat_the_pane_says_the_address_azure_sees_cannot_be_known_and_asks_for_it(emu, monkeypatch):
    # The emulator as any ARM endpoint (not the demo), and this machine's address on the route to the VM a private one.
    from backend import source_address
    from backend.config import Config
    from backend.settings import ConnectionSettings
    from tests.support import FIXED_NOW
    from tui.app import AztriageApp

    monkeypatch.delenv("AZTRIAGE_SOURCE_IP", raising=False)
    monkeypatch.setattr(source_address, "route_source", lambda target: "192.168.1.23")
    settings = ConnectionSettings(arm_endpoint=emu.endpoint, ca_file=emu.ca_file, auth="none", polling_interval=0.02)
    app = AztriageApp(settings, config=Config(refresh_interval=0, auto_probe=False), clock=lambda: FIXED_NOW)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "allow", choose=False)
        shown = str(screen.query_one("#detail").render())
        assert "is 192.168.1.23, a private address: Azure sees the address of a NAT in front of it, which cannot be known" in " ".join(shown.split())
        assert "type it on the source line" in shown
        choices = screen.query_one("#options")
        assert "your address (unknown: type it)" in str(choices.get_option_at_index(0).prompt)
        await pilot.press("enter")  # allow, with no address: asks for it
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextPrompt", what="the address prompt")
