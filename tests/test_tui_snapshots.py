"""How the console looks: each pane at 80x24 and 160x50 on the demo estate.
SVGs live in snapshots/test_tui_snapshots/; update them with
`pytest tests/test_tui_snapshots.py --snapshot-update` after checking the
change in the report. Deterministic: a fixed clock (the estate's FIXED_NOW),
no blinking cursor, a load that has finished before the picture is taken."""

from __future__ import annotations

import pytest

from tests.tui_support import make_app, open_vm_detail, wait_for, wait_loaded

SIZES = [(80, 24), (160, 50)]


def loaded(then: tuple[str, ...] = ()):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        if then:
            await pilot.press(*then)
            await pilot.pause()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_inventory_pane(snap_compare, emulator, size):
    assert snap_compare(make_app(emulator, read_only=True), terminal_size=size, run_before=loaded())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_health_pane(snap_compare, emulator, size):
    assert snap_compare(make_app(emulator, start_pane="health"), terminal_size=size, run_before=loaded())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_inventory_filtered(snap_compare, emulator, size):
    assert snap_compare(make_app(emulator), terminal_size=size, run_before=loaded(("slash", *"unavailable")))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_vm_detail_panel(snap_compare, emulator, size):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        await open_vm_detail(pilot, "erp-prod-eus-01")
        await wait_for(pilot, lambda: pilot.app.screen.backup is not None, what="its Azure Backup")

    assert snap_compare(make_app(emulator), terminal_size=size, run_before=run_before)


def test_help_screen(snap_compare, emulator):
    assert snap_compare(make_app(emulator), terminal_size=(100, 40), run_before=loaded(("question_mark",)))
