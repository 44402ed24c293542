"""The console's timeline of one VM (T), at 80x24: who stopped it on top, the entries
newest first, a source filter and a longer window, reached from the VM detail, the
Inventory and the command palette."""

from __future__ import annotations

import pytest

from tests.tui_support import make_app, table_lines, wait_for, wait_loaded

pytestmark = pytest.mark.xdist_group("tui-timeline")


async def _open(pilot, name: str):
    from tui.screens.timeline import TimelineScreen

    app = pilot.app
    await wait_loaded(pilot)
    vm = next(v for v in app.inventory.vms if v.name == name)
    app.push_screen(TimelineScreen(vm.id))
    await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen) and app.screen.timeline is not None and not app.screen.loading, what="the timeline")
    await wait_for(pilot, lambda: not app.screen.table.hidden_columns, what="the columns fitted to the screen")
    return app.screen


def _text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_dev_spot_01_at_80x24_says_the_platform_stopped_it_and_lists_newest_first(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, "dev-spot-01")
        who = _text(screen, "#who")
        assert who.startswith("Who stopped it: the platform at 2026-11-29 13:00 UTC") and "Spot eviction" in who
        lines = table_lines(screen.table)
        assert lines[0].split()[:3] == ["TIME", "(UTC)", "▲"] or lines[0].startswith(" TIME (UTC)")
        assert "11-29 13:00" in lines[1] and "Azure platform" in lines[1]
        assert any("dana.ng@" in line and "Start Virtual Machine" in line for line in lines), "\n".join(lines)
        # every row fits the 80 columns
        assert all(len(line.rstrip()) <= 80 for line in lines)
        # the first entry is shown whole below the table
        assert "evicted and deallocated because Azure needed the capacity back" in _text(screen, "#entry")


async def test_f_picks_one_source_and_w_a_longer_window(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, "dev-spot-01")
        assert "last 7 days" in _text(screen, "#status-line")
        week = screen.table.row_count
        await pilot.press("f")
        assert screen.source == "activity"
        rows = screen.table.visible_rows()
        assert rows and {r.item.source for r in rows} == {"activity"}
        assert "activity log" in _text(screen, "#status-line")
        await pilot.press("w")
        await wait_for(pilot, lambda: not screen.loading and "last 30 days" in _text(screen, "#status-line"), what="the 30-day window")
        assert {r.item.what for r in screen.table.visible_rows()} >= {"Create or Update Virtual Machine: dev-spot-01"}
        assert screen.table.row_count > 0 and week > 0


async def test_reached_from_the_vm_detail_and_the_inventory(emulator):
    from tui.screens.timeline import TimelineScreen

    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("slash", *"jump-prod-01", "enter")
        await pilot.press("T")
        await wait_for(
            pilot, lambda: isinstance(app.screen, TimelineScreen) and app.screen.timeline is not None and not app.screen.loading, what="timeline from inventory"
        )
        assert app.screen.vm.name == "jump-prod-01"
        top = app.screen.table.visible_rows()[0].item
        assert (top.actor, top.what) == ("sec.oncall@contoso.com", "Create or Update Security Rule: nsg-jump-prod/Deny-RDP-Incident-4711")
        await pilot.press("escape")
        await pilot.press("enter")  # the VM detail
        await pilot.pause()
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen), what="timeline from the detail")
        assert app.screen.vm_id.endswith("/jump-prod-01")


def test_timeline_snapshot_at_80x24(snap_compare, emulator):
    from tui.screens.timeline import TimelineScreen

    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        pilot.app.screen.set_filter("dev-spot-01")
        await pilot.pause()
        await pilot.press("T")
        await wait_for(
            pilot,
            lambda: isinstance(pilot.app.screen, TimelineScreen) and pilot.app.screen.timeline is not None and not pilot.app.screen.loading,
            what="timeline",
        )
        await wait_for(pilot, lambda: not pilot.app.screen.table.hidden_columns, what="the columns fitted to the screen")
        # laid out: the who line and the entry below the table have their full height
        await wait_for(
            pilot, lambda: pilot.app.screen.query_one("#who").size.height == 2 and pilot.app.screen.query_one("#entry").size.height == 3, what="layout"
        )
        await pilot.pause()

    assert snap_compare(make_app(emulator), terminal_size=(80, 24), run_before=run_before)
