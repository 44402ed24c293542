"""The console shell: panes, header, keys and their remapping, the command
palette and exports, automatic refresh, and the Health pane."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import FIXED_NOW
from tests.tui_support import enter_detail, make_app, renderable_text, table_lines, wait_for, wait_loaded


def screen_name(app) -> str:
    return type(app.screen).__name__


async def run_from_palette(pilot, command: str) -> None:
    """Open the command palette with ctrl+p, type `command` and press enter on what it offers first."""
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: screen_name(pilot.app) == "CommandPalette", what="palette")
    await pilot.press(*command)
    await pilot.pause(0.3)
    await pilot.press("enter")


async def open_from_palette(pilot, vm_name: str) -> None:
    """The VM's detail page, reached by its name in the command palette."""
    await run_from_palette(pilot, f"vm: open {vm_name}")
    await wait_for(pilot, lambda: screen_name(pilot.app) == "VmDetailScreen", what="detail")


async def test_number_keys_switch_panes_and_keep_state(emulator):
    from widgets.app_header import AppHeader
    from widgets.vm_table import VmTable

    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        app.screen.set_filter("prod")
        await pilot.pause()
        await pilot.press("2")
        assert screen_name(app) == "HealthScreen"
        header = str(app.screen.query_one(AppHeader).render())
        assert "2 Health" in header
        await pilot.press("1")
        assert screen_name(app) == "InventoryScreen"
        assert app.screen.query_one(VmTable).filter_text == "prod"
        # From a detail page a pane key goes straight to that pane.
        await enter_detail(pilot)
        await pilot.press("2")
        assert screen_name(app) == "HealthScreen"
        await pilot.press("1")
        assert screen_name(app) == "InventoryScreen"


async def test_health_pane_lists_unavailable_vms_worst_first_and_events(emulator):
    from backend.health import health_view
    from widgets.health_tables import EventTable, MaintenanceTable, StatusTable

    app = make_app(emulator, start_pane="health")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        view = health_view(app.inventory)
        statuses = app.screen.query_one(StatusTable)
        assert [row.item.vm.name for row in statuses.visible_rows()] == [s.vm.name for s in view.statuses]
        assert statuses.row_count == sum(1 for vm in app.inventory.vms if vm.availability_state != "Available")
        lines = table_lines(statuses)
        assert "REASON" in lines[0] and "SINCE" in lines[0] and "RECOMMENDED ACTION" in lines[0]
        assert "UNAVAILABLE" in lines[1]
        events = app.screen.query_one(EventTable)
        assert events.row_count == len(view.events) > 0
        first_event = table_lines(events)[1]
        assert first_event.lstrip().startswith("ACTIVE")
        assert str(len(view.events[0].impacted_vms)) in first_event
        maintenance = app.screen.query_one(MaintenanceTable)
        assert maintenance.row_count == len(view.maintenance)


async def test_selecting_an_event_shows_updates_and_impacted_vms(emulator):
    from backend.health import health_view
    from widgets.health_tables import EventTable
    from widgets.vm_table import VmTable

    app = make_app(emulator, start_pane="health")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        view = health_view(app.inventory)
        row = next(r for r in view.events if r.impacted_vms and r.event.updates)
        events = app.screen.query_one(EventTable)
        events.focus()
        events.move_cursor_to_key(row.id.lower())
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen_name(app) == "EventDetailScreen", what="event detail")
        text = renderable_text(app.screen.query_one("#event-body").content)
        assert row.event.title in text
        assert row.event.updates[0].summary[:50] in text.replace("\n", " ")
        impacted = app.screen.query_one(VmTable)
        assert {r.item.name for r in impacted.visible_rows()} == {vm.name for vm in row.impacted_vms}
        await pilot.press("escape")
        assert screen_name(app) == "HealthScreen"


async def test_help_lists_every_key_with_remapped_keys(emulator):
    app = make_app(emulator, keys={"refresh": "f5"})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        from tui.screens.help import key_rows

        rows = key_rows(app.screen)
        by_id = {binding_id: keys for _, keys, _, binding_id in rows}
        assert by_id["refresh"] == "f5"
        for binding_id in ("inventory.filter", "table.sort", "table.select", "quit", "help", "pane.health"):
            assert binding_id in by_id
        await pilot.press("question_mark")
        assert screen_name(app) == "HelpScreen"
        await pilot.press("escape")
        assert screen_name(app) == "InventoryScreen"
        # The remapped key works; the old one no longer refreshes.
        await pilot.press("r")
        await pilot.pause(0.2)
        assert app.loads == 1
        await pilot.press("f5")
        await wait_loaded(pilot, loads=2)


async def test_palette_exports_inventory_json_to_a_shown_path(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        await run_from_palette(pilot, "export: inventory as JSON")
        await wait_for(pilot, lambda: any("Exported inventory to" in str(n.message) for n in app._notifications), what="export notification")
        note = next(str(n.message) for n in app._notifications if "Exported inventory to" in str(n.message))
        path = Path(note.split("Exported inventory to ", 1)[1].strip())
        assert path.is_file() and str(path).startswith(os.environ["XDG_DATA_HOME"])
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        doc = json.loads(path.read_text())
        assert len(doc["vms"]) == 30 and FIXED_NOW.strftime("%Y%m%d-%H%M%S") in path.name


async def test_palette_jumps_to_a_vm_by_name(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        await open_from_palette(pilot, "erp-prod-eus-01")
        assert app.screen.vm.name == "erp-prod-eus-01"


async def test_auto_refresh_rearms_and_waits_while_a_modal_is_open(emulator):
    app = make_app(emulator, refresh_interval=0.3)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_loaded(pilot)
        await wait_loaded(pilot, loads=3)  # re-armed after each load
        await pilot.press("question_mark")
        assert screen_name(app) == "HelpScreen"
        # A load already under way when help opened may still land; none may start after.
        await wait_for(pilot, lambda: not any(w.group == "inventory" and w.is_running for w in app.workers), what="in-flight load")
        loads = app.loads
        await pilot.pause(1.0)
        assert app.loads == loads  # no refresh behind the help screen
        await pilot.press("escape")
        await wait_loaded(pilot, loads=loads + 1)


async def test_q_quits(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_the_console_creates_no_journal_and_names_unfinished_runs_at_start(emulator, tmp_path, monkeypatch):
    from backend.recovery.journal import Journal
    from tests.test_recovery_journal import make_run
    from tui.screens.recovery import RecoveryScreen

    path = tmp_path / "journal" / "journal.sqlite3"
    monkeypatch.setattr(RecoveryScreen, "journal_path", path)
    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
    assert not path.exists() and not path.parent.exists()  # opening the console writes no journal

    path.parent.mkdir()
    with Journal(path) as journal:
        make_run(journal)  # its process is gone: interrupted
    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: any("1 unfinished recovery run(s): restart on vm1 (interrupted)" in str(n.message) for n in app._notifications),
            what="the unfinished-run notice",
        )


@pytest.fixture
def log_file():
    """The console's log file as `aztriage` sets it up (tui/cli.setup_logging), for one test."""
    import logging

    from tui.cli import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    path = Path(setup_logging())
    yield path
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


async def test_a_failed_worker_in_a_screen_is_a_notification_and_a_logged_traceback(emulator, monkeypatch, log_file):
    import tui.screens.health as health

    def broken_rows(inventory, now):
        raise ValueError("no such column 'zone' (row builder bug)")

    # The Health pane builds a large estate's view in a worker; make this one take that
    # path, with a bug in the row builder.
    monkeypatch.setattr(health, "MANY_ROWS", 0)
    monkeypatch.setattr(health, "_health_rows", broken_rows)
    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: any("row builder bug" in n.message for n in app._notifications), what="the notification")
        [note] = [n for n in app._notifications if "row builder bug" in n.message]
        assert note.severity == "error"
        assert "health-rows on the Health screen failed: ValueError: no such column 'zone'" in note.message
        assert str(log_file) in note.message
        # The console goes on: another pane, and back.
        await pilot.press("1")
        await wait_for(pilot, lambda: screen_name(app) == "InventoryScreen", what="the inventory pane")
        assert app.is_running and not app.load_error
    text = log_file.read_text()
    entry = text[text.index("health-rows on the Health screen failed") :]
    assert "Traceback (most recent call last)" in entry and "in broken_rows" in entry
    assert "ValueError: no such column 'zone' (row builder bug)" in entry


async def test_every_pane_forwards_its_failed_workers(emulator):
    from tui.panes import PANES

    async def fails(pane_id):
        raise RuntimeError(f"bug in a worker of {pane_id}")

    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        for pane in PANES:
            await pilot.press(pane.key)
            await wait_for(pilot, lambda: type(app.screen).__name__ == pane.screen.rpartition(":")[2], what=pane.id)  # noqa: B023  (awaited in this iteration)
            app.screen.run_worker(fails(pane.id), group="test-worker", exit_on_error=False)
            await wait_for(pilot, lambda: any(f"bug in a worker of {pane.id}" in n.message for n in app._notifications), what=f"{pane.id}'s notification")  # noqa: B023  (awaited in this iteration)
        assert app.is_running


async def test_the_palette_offers_every_action_on_the_selected_vm_and_recovers_it(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        await open_from_palette(pilot, "web-prod-01")
        names = [name for name, _help, _cb in app.screen.palette_commands()]
        # Every scenario the VM's state allows, by its id; Start is not offered to a running VM.
        assert "recover: redeploy to a new host (redeploy) web-prod-01" in names and not any("(start)" in n for n in names)
        assert "probe: web-prod-01" in names and "vm: boot log of web-prod-01" in names
        await run_from_palette(pilot, "redeploy web-prod-01")

        # The Recovery pane opens on the VM with that scenario chosen: Enter shows its plan.
        def chosen() -> bool:
            options = app.screen.query_one("#scenarios")
            return app.screen.stage == "scenarios" and options.highlighted is not None and options.get_option_at_index(options.highlighted).id == "redeploy"

        await wait_for(pilot, lambda: screen_name(app) == "RecoveryScreen" and chosen(), timeout=30, what="redeploy chosen in the Recovery pane")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.stage == "plan", timeout=30, what="the redeploy plan")
        assert app.screen.plan.scenario == "redeploy" and app.screen.plan.vm.name == "web-prod-01"


async def test_a_finished_worker_is_freed_without_a_collection(emulator):
    """A finished worker and its task were a reference cycle (the task's context holds the
    worker), garbage that only the console's rare full collection freed on a large estate
    (tui/gc_pacing.py). Once its end is reported, reference counting frees it and its result."""
    import gc
    import weakref

    class Findings:
        pass

    async def work() -> Findings:
        return Findings()

    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        gc.disable()
        try:
            workers = [app.screen.run_worker(work(), group="test-work")]
            await wait_for(pilot, lambda: workers[0].is_finished, what="the worker's end")
            result = weakref.ref(workers[0].result)
            workers.clear()
            await wait_for(pilot, lambda: result() is None, timeout=5, what="the finished worker and its result freed")
        finally:
            gc.enable()
        assert app.is_running


async def test_a_cancelled_worker_lets_go_of_what_its_frames_held(emulator):
    """A refresh cancels the background probe; whatever the cancelled worker's frames held
    (an inventory, its findings) must be freed, although Textual keeps the worker itself
    alive in the context of every callback scheduled while it ran. (A failed worker's
    frames are let go the same way once it is reported; pytest's log capture keeps the
    reported traceback, so that case is not asserted here.)"""
    import asyncio
    import gc
    import weakref

    class Findings:  # stands for an inventory and what a probe found on it
        pass

    held: list[weakref.ref] = []
    started = asyncio.Event()

    async def probe_like() -> None:
        findings = Findings()
        held.append(weakref.ref(findings))
        app.set_interval(60, lambda: None)  # scheduled while the worker runs: its context keeps the worker
        started.set()
        await asyncio.sleep(3600)

    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        worker = app.screen.run_worker(probe_like(), group="test-probe", exit_on_error=False)
        await started.wait()
        worker.cancel()
        await wait_for(pilot, lambda: worker.is_finished, what="the worker's end")
        await wait_for(pilot, lambda: gc.collect() >= 0 and held[0]() is None, what="the worker's findings freed")
        assert app.is_running


async def test_a_key_tells_the_collector_pacer_the_operator_is_at_the_console(emulator):
    # The pacer holds back a full collection (a freeze of half a second or more at 10,000 VMs)
    # while the operator is at the keys: the app must tell it of every key.
    import time

    from tui.gc_pacing import IDLE_FOR_FULL_S

    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        assert app.gc_pacer._last_input == float("-inf")
        await pilot.press("2")
        assert screen_name(app) == "HealthScreen"
        assert time.monotonic() - app.gc_pacer._last_input < IDLE_FOR_FULL_S
