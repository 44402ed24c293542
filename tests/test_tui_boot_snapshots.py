"""How boot diagnostics look: the Boot pane after reading every log, and the
page of one VM (serial log, screenshot in half blocks, repair commands) at
80x24 and 160x50. SVGs in snapshots/test_tui_boot_snapshots/; update with
`pytest tests/test_tui_boot_snapshots.py --snapshot-update` after checking the
change. The graphics-protocol mode is not a snapshot (its image id is random
and its pixels are not in the SVG): tests/test_tui_boot.py checks the PNG it
sends instead."""

from __future__ import annotations

import pytest

from tests.tui_support import make_app, wait_for, wait_loaded
from widgets import screenshot_view

SIZES = [(80, 24), (160, 50)]


@pytest.fixture(autouse=True)
def half_blocks():
    screenshot_view.use_mode(screenshot_view.HALFBLOCK)


def detail(name: str, *keys: str):
    async def run_before(pilot) -> None:
        from tui.screens.boot import BootDetailScreen

        await wait_loaded(pilot)
        screen = BootDetailScreen(pilot.app.inventory.vm_by_name(name)[0].id)
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.fetches >= 1, what="boot diagnostics")
        if keys:
            await pilot.press(*keys)
        await pilot.pause(0.2)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_boot_pane_after_reading_every_log(snap_compare, emulator, size):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        screen = pilot.app.screen
        await pilot.press("a")
        await wait_for(pilot, lambda: not screen.sweeping and screen.swept_at is not None, what="sweep")
        pilot.app.clear_notifications()
        await pilot.pause(0.2)

    assert snap_compare(make_app(emulator, start_pane="boot"), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_serial_log_of_a_vm_in_emergency_mode(snap_compare, emulator, size):
    assert snap_compare(make_app(emulator), terminal_size=size, run_before=detail("api-dev-01"))


def test_serial_log_search(snap_compare, emulator):
    assert snap_compare(make_app(emulator), terminal_size=(100, 30), run_before=detail("api-dev-01", "slash", *"datadrive", "enter", "n"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_screenshot_in_half_blocks_stop_code(snap_compare, emulator, size):
    assert snap_compare(make_app(emulator), terminal_size=size, run_before=detail("iis-test-01", "v"))


def test_screenshot_in_half_blocks_linux_console(snap_compare, emulator):
    assert snap_compare(make_app(emulator), terminal_size=(160, 50), run_before=detail("pg-dev-01", "v"))


def test_repair_commands(snap_compare, emulator):
    assert snap_compare(make_app(emulator), terminal_size=(120, 36), run_before=detail("pg-dev-01", "m"))


def test_boot_diagnostics_off(snap_compare, emulator):
    assert snap_compare(make_app(emulator, read_only=True), terminal_size=(80, 24), run_before=detail("dev-spot-01"))
