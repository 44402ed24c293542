"""Presenter mode as an operator on an incident bridge uses it: `--present`
(or `P`) makes the layout roomier and shows, at the foot of every page, the
why of what is on screen in a large block, and a trail of what was done:
panes visited, VM opened, probe run, recovery confirmed, run finished."""

from __future__ import annotations

import pytest

from backend.config import Config
from tests.recovery_support import reset
from tests.support import FIXED_NOW, demo_settings
from tests.tui_support import renderable_text, wait_for, wait_loaded
from tui.presenter import Trail
from tui.screens.connectivity import ConnectivityScreen
from tui.screens.recovery import RecoveryScreen
from tui.screens.vm_detail import VmDetailScreen
from widgets.confirm_dialog import ConfirmDialog
from widgets.presenter_panel import Breadcrumb, PresenterPanel, trail_line

pytestmark = pytest.mark.xdist_group("presenter")


@pytest.fixture(autouse=True)
def isolated(emu, recovery_journal, monkeypatch):
    monkeypatch.setattr(ConnectivityScreen, "probe_timeout", 0.3)
    monkeypatch.setattr(ConnectivityScreen, "probe_attempts", 1)
    yield
    reset(emu)


def present_app(emu, present: bool = True):
    from tui.app import AztriageApp

    return AztriageApp(demo_settings(emu), config=Config(refresh_interval=0, auto_probe=False), clock=lambda: FIXED_NOW, present=present)


def panel(app) -> PresenterPanel:
    return app.screen.query_one(PresenterPanel)


def why_text(app) -> str:
    return renderable_text(panel(app).query_one("#presenter-why").content, width=200)


def trail_text(app) -> str:
    crumb = panel(app).query_one(Breadcrumb)
    return crumb.render_line(0).text


async def settle(pilot) -> None:
    # The panel follows the cursor a few times a second: let it look at least twice.
    ticks = pilot.app.presenter.ticks
    await wait_for(pilot, lambda: pilot.app.presenter.ticks >= ticks + 2, what="the presenter to look again")


async def test_an_incident_walkthrough_shows_the_why_and_the_trail(emu):
    app = present_app(emu)
    async with app.run_test(size=(130, 44)) as pilot:
        await wait_loaded(pilot)
        await settle(pilot)
        assert app.has_class("-present")
        assert panel(app).display and panel(app).region.height > 0
        assert not panel(app).query_one("#presenter-why").display  # nothing to explain on the inventory
        assert "done: 1 Inventory" in trail_text(app)

        # Connectivity: probe one VM; its verdict is the why.
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectivityScreen) and app.screen.states, what="connectivity")
        screen = app.screen
        screen.set_filter("jump-prod-01")
        await pilot.pause()
        await pilot.press("p")
        await wait_for(pilot, lambda: not screen.probing and any(s.diagnosis for s in screen.states.values()), what="the diagnosis")
        await wait_for(pilot, lambda: app.presenter.trail.texts[-1].startswith("probed"), what="the probe in the trail")
        await settle(pilot)
        shown = why_text(app)
        assert "Diagnosis: jump-prod-01 port 3389" in shown
        assert "blocked by NSG rule Deny-RDP-Incident-4711 at priority 200" in shown
        assert "next: o opens the recovery" in shown
        assert app.presenter.trail.texts[-2:] == ["3 Connectivity", "probed jump-prod-01: 0 of 1 ports reachable, 1 NOT"]

        # Recovery: the why of the highlighted plan step, then confirm and run.
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, RecoveryScreen), what="the recovery pane")
        screen = app.screen
        await pilot.press("slash", *"web-prod-01")
        await pilot.press("enter", "enter")
        options = screen.query_one("#scenarios")
        await wait_for(pilot, lambda: screen.stage == "scenarios" and options.highlighted is not None, what="the scenarios")
        await settle(pilot)
        assert why_text(app).startswith("Scenario: Restart for web-prod-01\nReboot the VM on its host")
        options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index("restart")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        await pilot.press("down")
        await settle(pilot)
        step = screen.plan.steps[1]
        shown = why_text(app)
        assert f"Step 2 of {len(screen.plan.steps)}: {step.title}" in shown
        assert " ".join(step.why.split()) in " ".join(shown.split())
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("shift+tab", "enter")  # a redeploy interrupts service: Cancel has the focus
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        await wait_for(pilot, lambda: any(t.startswith("run ") for t in app.presenter.trail.texts), what="the run in the trail")
        await settle(pilot)
        texts = app.presenter.trail.texts
        assert "4 Recovery" in texts
        assert f"confirmed: {screen.plan.title} on web-prod-01: {len(screen.plan.steps)} steps" in texts
        run = next(t for t in texts if t.startswith("run "))
        assert run.startswith(f"run {screen.run_id}: ") and "verified" in run
        # After the run the VM is probed again (no stale verdict): that may follow the run in the trail.
        assert all(t.startswith("probed web-prod-01") for t in texts[texts.index(run) + 1 :])
        # The breadcrumb keeps the newest steps when they no longer fit.
        line = trail_text(app)
        assert line.startswith(" done: …") and f"run {screen.run_id}" in line


async def test_the_key_toggles_presenter_mode_and_the_trail_is_kept_meanwhile(emu):
    app = present_app(emu, present=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        assert not app.has_class("-present")
        assert not panel(app).display or panel(app).region.height == 0
        app.screen.set_filter("erp-prod-eus-01")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VmDetailScreen), what="the VM detail")
        await pilot.press("escape", "2")
        await pilot.pause()
        assert app.presenter.trail.texts == ["1 Inventory", "opened VM erp-prod-eus-01", "2 Health"]
        await pilot.press("P")
        await settle(pilot)
        assert app.has_class("-present")
        assert panel(app).region.height > 0
        assert "done: 1 Inventory › opened VM erp-prod-eus-01 › 2 Health" in trail_text(app)
        await pilot.press("P")
        await pilot.pause()
        assert not app.has_class("-present") and panel(app).region.height == 0


async def test_a_panel_whose_lines_are_not_mounted_yet_is_shown_later_not_a_crash(emu):
    # A page being composed has its panel before the panel's own lines; the presenter looks a few
    # times a second and must neither crash on it nor take it as shown.
    from textual.widgets import Static

    app = present_app(emu)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        await settle(pilot)
        shown = why_text(app)
        assert shown
        await panel(app).remove_children()
        await pilot.press("P", "P")  # off and on again: the presenter shows the panel at once
        await pilot.pause()
        why = Static("", id="presenter-why", markup=False)
        await panel(app).mount_all([why, Breadcrumb(id="presenter-trail")])
        await settle(pilot)
        assert why_text(app) == shown
        assert "done: 1 Inventory" in trail_text(app)


async def test_the_palette_offers_presenter_mode(emu):
    app = present_app(emu, present=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        names = {name: callback for name, _help, callback in app.palette_commands()}
        names["view: presenter mode on"]()
        await pilot.pause()
        assert app.has_class("-present")
        assert "view: presenter mode off" in {name for name, _h, _c in app.palette_commands()}


def test_the_trail_drops_repeats_and_old_entries():
    trail = Trail(lambda: FIXED_NOW, limit=3)
    for text in ("1 Inventory", "1 Inventory", "2 Health", "opened VM a", "3 Connectivity"):
        trail.add(text)
    assert trail.texts == ["2 Health", "opened VM a", "3 Connectivity"]


def test_the_breadcrumb_keeps_the_newest_steps():
    line = trail_line(["1 Inventory", "opened VM erp-prod-eus-01", "3 Connectivity", "probed erp-prod-eus-01: 0 of 1 ports reachable, 1 NOT"], 60)
    assert len(line.plain) == 60
    assert line.plain.startswith(" done: …") and line.plain.endswith("1 NOT")
    assert trail_line([], 40).plain == " done: nothing yet"


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_presenter_mode_on_a_plan_step(snap_compare, emu, size):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RecoveryScreen), what="the pane")
        screen = pilot.app.screen
        screen.query_one("#vms").set_filter("web-prod-01")
        await pilot.pause()
        await pilot.press("enter")
        options = screen.query_one("#scenarios")
        await wait_for(pilot, lambda: screen.stage == "scenarios" and options.highlighted is not None, what="scenarios")
        options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index("redeploy")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="plan")
        await pilot.press("down")
        await settle(pilot)
        await pilot.pause()

    assert snap_compare(present_app(emu), terminal_size=size, run_before=run_before)
