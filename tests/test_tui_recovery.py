"""The Recovery pane as an operator drives it: choose a VM and a scenario, read
the plan, confirm (typing the name when a step is destructive), watch the
steps, resume an interrupted run; secrets typed in a masked field never show
and never reach the journal."""

from __future__ import annotations

import pytest

from backend.recovery import scenarios, service
from backend.recovery.journal import Journal
from backend.recovery.runner import Runner
from tests.recovery_support import guest_ports, operation_counts, vm_doc, writes
from tests.support import demo_settings
from tests.tui_support import (
    assert_read_only_never_runs,
    choose_scenario,
    detail,
    make_app,
    open_options,
    open_plan,
    open_recovery_pane,
    open_scenarios,
    renderable_text,
    screen_text,
    steps_text,
    table_lines,
    wait_for,
)
from tui.messages import OpenRecovery
from widgets.confirm_dialog import ConfirmDialog
from widgets.secret_field import SecretDialog, SecretField

pytestmark = pytest.mark.xdist_group("tui-recovery")

SENTINEL = "Sentinel-Pa55-PANE-3301"


@pytest.fixture(autouse=True)
def private_journal(recovery_journal):
    return recovery_journal


async def test_restart_from_vm_to_verified_run(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_scenarios(pilot, "web-prod-01")
        options = screen.query_one("#scenarios")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("Start" in p and "unavailable: web-prod-01 is already running" in p for p in prompts)
        await choose_scenario(pilot, screen, "restart")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        text = steps_text(screen)
        assert "Pre-flight checks" in text and "Restart web-prod-01" in text and "Check that SSH answers" in text
        assert "· pending" in text
        await pilot.press("down")
        shown = detail(screen)
        assert "why:" in shown and "changes: reboots the guest operating system" in shown and "Interrupts service" in shown
        before = writes(emu)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        assert app.screen.type_name is None  # nothing destructive: a plain yes
        # A restart interrupts service: Cancel has the focus, so a habitual enter changes nothing.
        assert "THIS INTERRUPTS SERVICE" in renderable_text(app.screen.query_one("#confirm-lines").content, width=200)
        assert app.screen.query_one("#confirm-cancel").has_focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog), what="the dialog to close")
        assert writes(emu) == before and screen.run_id is None  # nothing changes before the yes
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        await pilot.press("shift+tab", "enter")  # Run, chosen on purpose
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert screen.states == {0: "verified", 1: "verified", 2: "verified"}
        assert "✓ verified" in steps_text(screen)
        assert "all 3 steps verified" in screen.summary_text
        log_text = "\n".join(str(line.text) for line in screen.query_one("#log").lines)
        assert "SSH answers on" in log_text
        vm_id = vm_doc(emu, "web-prod-01")["doc"]["id"].lower()
        assert operation_counts(emu)[("restart", vm_id)] == 1


async def test_a_destructive_plan_runs_only_after_the_name_is_typed(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_plan(pilot, "dev-sandbox-01", "deallocate")
        assert "DESTRUCTIVE" in steps_text(screen)
        before = writes(emu)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        dialog = app.screen
        assert dialog.type_name == "dev-sandbox-01"
        await pilot.press(*"dev-sandbox-0")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)  # a wrong name does nothing
        assert dialog.query_one("#confirm-ok").disabled
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back to the plan")
        assert writes(emu) == before and screen.run_id is None
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog again")
        await pilot.press(*"dev-sandbox-01", "enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert screen.states[1] == "verified"
        from tests.recovery_support import power

        assert power(emu, "dev-sandbox-01") == "deallocated"


async def test_read_only_shows_the_plan_with_changes_disabled_and_never_runs(emu):
    app = make_app(emu, read_only=True)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_plan(pilot, "web-prod-01", "restart")
        await assert_read_only_never_runs(pilot, app, screen, emu)


async def test_the_connectivity_diagnosis_opens_with_its_scenario_first(emu):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_recovery_pane(pilot)
        vm_id = vm_doc(emu, "files-shared-01")["doc"]["id"]
        screen.post_message(
            OpenRecovery(vm_id, "run-fix", reason="the guest does not answer RDP: its firewall drops 3389", evidence=("NSG allows 3389 from Internet",))
        )
        await wait_for(pilot, lambda: screen.facts is not None and screen.stage == "scenarios", what="the scenarios")
        options = screen.query_one("#scenarios")
        first = options.get_option_at_index(0)
        assert first.id == "run-fix" and "recommended" in str(first.prompt)
        assert options.highlighted == 0
        shown = detail(screen)
        assert "Diagnosis: the guest does not answer RDP" in shown and "NSG allows 3389" in shown
        # fix-nsg is one of the pane's scenarios now: offered first, recommended, never "cannot run".
        screen.post_message(OpenRecovery(vm_id, "fix-nsg", reason="an NSG rule drops RDP"))
        await wait_for(pilot, lambda: screen.recommended.scenario == "fix-nsg" and screen.stage == "scenarios" and screen.facts is not None, what="again")
        await pilot.pause()
        first = options.get_option_at_index(0)
        assert first.id == "fix-nsg" and "recommended" in str(first.prompt) and not first.disabled
        assert "cannot run" not in detail(screen)


async def test_a_password_is_typed_masked_sent_and_never_shown_or_kept(emu, private_journal):
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_options(pilot, "files-shared-01", "reset-access")
        options = screen.query_one("#options")
        options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index("password")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), what="the secret dialog")
        dialog = app.screen
        await pilot.press(*"short", "enter")
        await pilot.pause()
        assert "12 to 123 characters" in str(dialog.query_one("#secret-error").content)
        field = dialog.query_one(SecretField)
        field.value = ""
        await pilot.press(*SENTINEL)
        await pilot.pause()
        assert field.password and SENTINEL not in app.export_screenshot()
        assert SENTINEL not in repr(field)
        await pilot.press("enter")  # to the confirmation field: the same password again
        await pilot.press(*SENTINEL, "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["username"] == "contosoadmin"
        assert screen.plan.needs_secrets == ("password",)
        assert SENTINEL not in app.export_screenshot()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert screen.states[1] == "verified", screen.messages
        assert screen._secrets == {}
        assert SENTINEL not in app.export_screenshot()
    assert SENTINEL.encode() not in private_journal.read_bytes()
    vm_id = vm_doc(emu, "files-shared-01")["doc"]["id"]
    assert guest_ports(emu, vm_id)["3389"] == "rdp"


class Interrupted(Exception):
    """Stands in for the process dying at a step boundary."""


async def interrupted_run(emu, journal_path, vm_name: str, scenario: str, boundary: tuple[str, int]) -> None:
    """A run stopped at a step boundary as if its process had died there."""
    from backend.azure.backend import AzureBackend

    def die(where: str, index: int) -> None:
        if (where, index) == boundary:
            raise Interrupted()

    backend = AzureBackend(demo_settings(emu), retry_total=2)
    try:
        plan, facts = await service.make_plan(backend, await service.find_vm(backend, vm_name), scenario)
        with Journal(journal_path) as journal, pytest.raises(Interrupted):
            await Runner(backend, journal, hook=die).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
    finally:
        await backend.close()


async def test_an_interrupted_run_is_listed_and_resumed_from_the_pane(emu, private_journal):
    await interrupted_run(emu, private_journal, "web-prod-01", "restart", ("operation", 1))
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_recovery_pane(pilot)
        await pilot.press("H")
        await wait_for(pilot, lambda: screen.stage == "runs", what="the runs")
        lines = table_lines(screen.query_one("#runs"))
        assert "INTERRUPTED" in lines[1] and "web-prod-01" in lines[1] and "1/3" in lines[1]
        assert "R: resume this run" in detail(screen)
        # At 80 columns its footer is whole: R, u, L and '? Keys' ('Resume run', 'Undo run' pushed it off).
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "? Keys" in screen_text(app).splitlines()[-1] and "R Resume" in screen_text(app).splitlines()[-1], what="the runs footer")
        await pilot.resize_terminal(110, 36)
        await pilot.pause(0.2)
        await pilot.press("R")
        await wait_for(pilot, lambda: screen.run_id and not screen.running and screen.summary_text, timeout=60, what="the resumed run")
        assert screen.states == {0: "verified", 1: "verified", 2: "verified"}
    vm = vm_doc(emu, "web-prod-01")["doc"]["id"].lower()
    assert operation_counts(emu)[("restart", vm)] == 1


async def test_unfinished_runs_are_announced_when_the_console_starts(emu, private_journal):
    await interrupted_run(emu, private_journal, "qa-win-01", "start", ("running", 1))
    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_for(pilot, lambda: any("unfinished recovery run" in str(n.message) for n in app._notifications), what="the notice")
        note = next(str(n.message) for n in app._notifications if "unfinished recovery run" in str(n.message))
        assert "start on qa-win-01 (interrupted)" in note
        screen = await open_recovery_pane(pilot)
        assert "(1 unfinished)" in str(screen.query_one("#status-line").content)


async def test_quitting_during_a_run_asks_first_and_says_how_to_resume():
    from tests.recovery_support import own_emulator

    slow = own_emulator(acceleration=10)  # a restart takes 4 s
    try:
        await _quit_during_a_run(slow)
    finally:
        slow.stop()


async def _quit_during_a_run(emu) -> None:
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, "web-prod-01", "restart")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        await pilot.press("shift+tab", "enter")  # a restart: Cancel has the focus, Run is chosen on purpose
        await wait_for(pilot, lambda: screen.running and screen.run_id, what="the run under way")
        run_id = screen.run_id
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the quit question")
        question = app.screen
        text = renderable_text(question.query_one("#confirm-lines").content, width=200)
        assert f"aztriage recover --resume {run_id}" in text and "web-prod-01" in text
        assert question.focused is question.query_one("#confirm-cancel")  # Enter out of habit keeps it running
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="back to the run")
        await wait_for(pilot, lambda: not screen.running, timeout=60, what="the run")
        assert app.is_running and screen.states[1] == "verified"
        # Once nothing runs, q quits at once.
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog) and app._exit


async def test_a_wrong_typed_name_says_so(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_plan(pilot, "dev-sandbox-01", "deallocate")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        dialog = app.screen
        await pilot.press(*"dev-sandbox-1", "enter")
        await pilot.pause()
        hint = str(dialog.query_one("#confirm-hint").content)
        assert isinstance(app.screen, ConfirmDialog) and "does not match" in hint and "dev-sandbox-01" in hint
        await pilot.press("escape")
