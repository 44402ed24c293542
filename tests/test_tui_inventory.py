"""The Inventory pane as an operator drives it: filter, sort, detail panel,
refresh that keeps cursor and filter, and errors as rows."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from backend.models import id_name
from tests.support import emulator_control
from tests.tui_support import arm_post, enter_detail, make_app, open_vm_detail, renderable_text, table_lines, wait_for, wait_loaded
from widgets.error_rows import ErrorRows
from widgets.vm_table import VmTable


@asynccontextmanager
async def loaded_table(emulator, size: tuple[int, int]):
    """The console on `emulator` at `size` once its first load has landed: the app, its pilot
    and the Inventory pane's table."""
    app = make_app(emulator)
    async with app.run_test(size=size) as pilot:
        await wait_loaded(pilot)
        yield app, pilot, app.screen.query_one(VmTable)


def names(table: VmTable) -> list[str]:
    return [row.item.name for row in table.visible_rows()]


async def test_every_vm_is_listed_with_states_readable_without_colour(emulator):
    async with loaded_table(emulator, (160, 50)) as (app, pilot, table):
        assert table.row_count == len(app.inventory.vms) == 30
        lines = table_lines(table)
        header = lines[0]
        for label in ("NAME", "GROUP", "SUBSCRIPTION", "LOCATION", "SIZE", "POWER", "HEALTH", "SLA", "PUBLIC IP", "AGENT"):
            assert label in header
        deallocated = next(line for line in lines if "legacy-app-02" in line)
        # Text markers, not only colour: '!' and an upper-case state.
        assert deallocated.lstrip().startswith("!") and "DEALLOCATED" in deallocated and "UNAVAILABLE" in deallocated
        healthy = next(line for line in lines if "api-dev-01" in line)
        assert "running" in healthy and "!" not in healthy


async def test_filter_as_you_type_and_escape_clears(emulator):
    async with loaded_table(emulator, (120, 30)) as (app, pilot, table):
        await pilot.press("slash", *"legacy")
        assert names(table) and all(n.startswith("legacy") for n in names(table))
        assert "match /legacy" in str(app.screen.query_one("#status-line").content)
        await pilot.press("enter")  # keep the filter, back to the table
        assert table.has_focus and table.filter_text == "legacy"
        await pilot.press("escape")
        assert table.row_count == 30 and table.filter_text == ""


async def test_keys_typed_at_once_after_slash_all_reach_the_filter(emulator):
    """`/` and a name arriving together (a paste, keys batched over SSH): every key lands in the
    box; none reaches the table's own keys (p would have probed), none is lost."""
    from textual import events

    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        inventory = app.screen
        for key in ("slash", *"payroll"):
            app.post_message(events.Key(key, "/" if key == "slash" else key))
        await wait_for(pilot, lambda: inventory.table.filter_text == "payroll", what="the filter /payroll")
        await pilot.pause()
        assert app.screen is inventory
        assert inventory.table.row_count == 1 and inventory.table.cursor_vm.name == "payroll-app-01"
        assert "1 match /payroll" in str(inventory.query_one("#status-line").content)


async def test_p_then_o_typed_at_once_open_the_recovery_without_a_failure(emulator):
    """p (probe this VM in Connectivity) and o (its recovery) arriving together: the operator
    ends in the Recovery pane and no worker fails (the probe once ran on the Recovery pane)."""
    from textual import events

    from tui.screens.recovery import RecoveryScreen

    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        for key in "po":
            app.post_message(events.Key(key, key))
        await wait_for(pilot, lambda: isinstance(app.screen, RecoveryScreen), what="the Recovery pane")
        await pilot.pause(0.5)
        assert isinstance(app.screen, RecoveryScreen)
        assert not [n for n in app._notifications if n.severity == "error"]


async def test_filter_matches_state_ip_and_location(emulator):
    async with loaded_table(emulator, (120, 30)) as (app, pilot, table):
        await pilot.press("slash", *"deallocated")
        assert set(names(table)) == {vm.name for vm in app.inventory.vms if vm.power_state == "deallocated"}
        vm = next(v for v in app.inventory.vms if v.public_ips)
        app.screen.set_filter(vm.public_ips[0])
        await pilot.pause()
        assert vm.name in names(table)
        app.screen.set_filter("eastus unavailable")
        await pilot.pause()
        expected = {v.name for v in app.inventory.vms if v.location == "eastus" and "unavailable" in v.availability_state.lower()}
        assert set(names(table)) == expected and expected


async def test_sort_by_any_column_and_reverse(emulator):
    async with loaded_table(emulator, (160, 50)) as (app, pilot, table):
        # It opens attention first: by verdict, worst first, then by name.
        from backend.verdict import BY_ID

        ranks = [BY_ID[app.verdict_for(row.item).id].rank for row in table.visible_rows()]
        assert table.sort_column == "verdict" and ranks == sorted(ranks) and ranks[0] < ranks[-1]
        assert names(table)[0] == "erp-prod-eus-01"  # Unavailable inside Azure's incident heads the list
        table.sort_by("name", reverse=False)
        await pilot.pause()
        assert names(table) == sorted(names(table), key=str.lower)
        await pilot.press("s")  # next column: the verdict
        assert table.sort_column == "verdict"
        await pilot.press("s")  # then group
        assert table.sort_column == "group"
        groups = [row.item.resource_group.lower() for row in table.visible_rows()]
        assert groups == sorted(groups)
        assert "GROUP ▲" in table_lines(table)[0]
        await pilot.press("S")
        groups = [row.item.resource_group.lower() for row in table.visible_rows()]
        assert groups == sorted(groups, reverse=True)
        assert "GROUP ▼" in table_lines(table)[0]
        table.sort_by("health", reverse=False)
        await pilot.pause()
        first = table.visible_rows()[0].item
        assert first.availability_state == "Unavailable"


async def test_enter_opens_the_detail_panel(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        risky = next(vm for vm in app.inventory.vms if any(d.data_loss_risk for d in vm.disks) and vm.nics and vm.nics[0].nsg_id)
        await open_vm_detail(pilot, risky.name)
        from widgets.vm_detail import VmDetail

        detail = app.screen.query_one(VmDetail)
        text = renderable_text(detail.query_one("#vm-detail-body").content)
        assert risky.name in text
        assert "DATA LOSS RISK" in text
        for disk in risky.disks:
            assert disk.name in text
        assert "NSG rules that apply" in text
        nsg = app.inventory.nsg(risky.nics[0].nsg_id)
        priorities = [str(r.priority) for r in nsg.all_rules("Inbound")]
        rule_lines = [line.split()[0] for line in text.splitlines() if line.split() and line.split()[0].isdigit()]
        assert rule_lines[: len(priorities)] == priorities and len(priorities) >= 2
        assert risky.id in text and "portal.azure.com" in text
        assert "Boot diagnostics" in text and "Agent" in text and "Planned maintenance" in text
        await pilot.press("escape")
        assert type(app.screen).__name__ == "InventoryScreen"


async def test_detail_panel_shows_health_reason_and_actions(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        sick = next(vm for vm in app.inventory.vms if vm.health and vm.health.reason_type == "Unplanned" and vm.health.recommended_actions)
        table = app.screen.query_one(VmTable)
        assert table.move_cursor_to_key(sick.id.lower())
        await enter_detail(pilot)
        text = renderable_text(app.screen.query_one("#vm-detail-body").content)
        assert "unplanned" in text and sick.health.summary.split(".")[0] in text
        assert sick.health.recommended_actions[0].action[:40] in text.replace("\n", " ").replace("  ", " ") or "Recommended" in text


async def test_refresh_keeps_cursor_filter_and_shows_new_state(fresh_emulator):
    emulator = fresh_emulator
    async with loaded_table(emulator, (120, 30)) as (app, pilot, table):
        table.sort_by("name", reverse=False)  # (attention-first would move the VM once it stops)
        app.screen.set_filter("prod")
        await pilot.pause()
        running = [row.item for row in table.visible_rows() if row.item.power_state == "running"]
        target = running[1]
        table.move_cursor_to_key(target.id.lower())
        position = table.cursor_row
        # Someone stops the VM; a refresh must show it without losing our place.
        status = arm_post(emulator, target.id + "/powerOff?api-version=2026-04-01")
        assert status in (200, 202)
        emulator_control(emulator, "POST", "/_emulator/advance", {"seconds": 3600})
        await pilot.press("r")
        await wait_loaded(pilot, loads=2)
        assert table.filter_text == "prod"
        assert table.cursor_key == target.id.lower() and table.cursor_row == position
        line = next(line for line in table_lines(table) if target.name in line)
        assert "STOPPED" in line


async def test_failed_subscription_becomes_an_error_row(fresh_emulator):
    emulator = fresh_emulator
    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        victim = app.inventory.subscriptions[1]
        emulator_control(
            emulator,
            "POST",
            "/_emulator/faults",
            {"match": f"/subscriptions/{victim.subscription_id}/providers/Microsoft.Network", "method": "GET", "status": 403, "count": -1},
        )
        await pilot.press("r")
        await wait_loaded(pilot, loads=2)
        rows = app.screen.query_one(ErrorRows)
        assert rows.display and len(rows.errors) == 1
        assert victim.display_name in rows.errors[0] and victim.subscription_id in rows.errors[0]
        table = app.screen.query_one(VmTable)
        assert table.row_count > 0
        assert all(row.item.subscription_id != victim.subscription_id for row in table.visible_rows())
        assert any(n.severity == "error" for n in app._notifications)


async def test_failed_load_is_a_notification_and_error_row_not_a_crash(fresh_emulator):
    emulator = fresh_emulator
    emulator_control(emulator, "POST", "/_emulator/faults", {"match": "/subscriptions", "method": "GET", "status": 403, "count": -1})
    app = make_app(emulator)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: app.failures > 0, what="the failure")
        await pilot.pause()
        rows = app.screen.query_one(ErrorRows)
        assert rows.display and "refreshing failed" in rows.errors[0] and "press r" in rows.errors[0]
        assert any(n.severity == "error" for n in app._notifications)
        assert app.is_running
        # Recovery: the fault goes away, r loads.
        emulator_control(emulator, "DELETE", "/_emulator/faults")
        await pilot.press("r")
        await wait_loaded(pilot)
        assert not app.screen.query_one(ErrorRows).display
        assert app.screen.query_one(VmTable).row_count == 30


@pytest.mark.parametrize("read_only", [True, False])
async def test_read_only_marker_in_the_header(emulator, read_only):
    from widgets.app_header import AppHeader

    app = make_app(emulator, read_only=read_only)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        header = str(app.screen.query_one(AppHeader).render())
        assert ("READ-ONLY" in header) is read_only
        assert "DEMO" in header and ("03:00:00 UTC" in header or "03:00:00Z" in header)


async def test_every_pane_with_a_table_filters_the_same_way(emulator):
    """`/` shows the filter box and focuses it, typing filters, enter keeps the filter
    (box still shown) and returns to the table, esc clears it and hides the box: in the
    Inventory, Connectivity, Recovery, Checklist and Boot panes alike."""
    app = make_app(emulator)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        for key in ("1", "3", "4", "5", "6"):
            await pilot.press(key)
            await wait_for(pilot, lambda: hasattr(app.screen, "filter_box"), what=f"pane {key}")
            screen = app.screen
            box, table = screen.query_one("#filter"), screen.table
            assert not box.display, key
            await pilot.press("slash", *"prod")
            assert box.display and box.has_focus and table.filter_text == "prod", key
            await pilot.press("enter")
            await pilot.pause()
            assert box.display and table.has_focus and table.filter_text == "prod", key
            assert "/prod" in str(screen.query_one("#status-line").content) or key == "4", key
            await pilot.press("escape")
            await pilot.pause()
            assert not box.display and table.filter_text == "" and table.has_focus, key


def agent_cells(table: VmTable) -> dict[str, str]:
    """Each visible VM's AGENT cell as drawn, by name."""
    column = [c.key for c in table.columns].index("agent")
    return {row.item.name: row.cells[column] for row in table.visible_rows()}


async def test_first_load_shows_rows_before_instance_views_and_fills_them_in(fresh_emulator):
    """The rows are on screen from the subscription-wide lists while the instance views are
    still being read: their agent shows "…", and filtering, sorting and opening a VM work
    meanwhile; when the views are in, the agent facts replace the "…" in place."""
    emulator = fresh_emulator
    emulator_control(emulator, "POST", "/_emulator/faults", {"match": "/instanceView", "method": "GET", "delay_s": 5.0, "count": -1})
    app = make_app(emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.screen.query_one(VmTable)
        await wait_for(pilot, lambda: table.row_count == 30, what="the rows from the lists")
        assert app.loads == 0  # the instance views are still being read
        waiting = [name for name, cell in agent_cells(table).items() if cell == "…"]
        assert waiting, agent_cells(table)
        assert any("…" in line for line in table_lines(table)[1:])

        # Filter, sort and open while the views are read.
        await pilot.press("slash", *"legacy")
        await pilot.press("enter")
        assert names(table) and all(n.startswith("legacy") for n in names(table))
        table.sort_by("name", reverse=True)
        await pilot.pause()
        assert names(table) == sorted(names(table), key=str.lower, reverse=True)
        vm = next(row.item for row in table.visible_rows() if row.item.power_state == "running" and agent_cells(table)[row.item.name] == "…")
        table.move_cursor_to_key(vm.id.lower())
        await enter_detail(pilot)
        body = app.screen.query_one("#vm-detail-body")
        text = renderable_text(body.content)
        assert app.loads == 0, "the instance views came in before the test looked"
        assert vm.name in text and "Agent" in text and "…" in text

        # The views come in: the open detail panel and the table fill in, filter and sort kept.
        await wait_loaded(pilot)
        text = renderable_text(app.screen.query_one("#vm-detail-body").content)
        assert "…" not in text and "ready" in text.lower()
        await pilot.press("escape")
        await pilot.pause()
        assert table.filter_text == "legacy" and table.sort_column == "name" and table.sort_reverse
        cells = agent_cells(table)
        assert "…" not in cells.values() and cells[vm.name] != "…"
    emulator_control(emulator, "DELETE", "/_emulator/faults")


async def test_the_detail_never_cuts_an_address_a_name_or_an_id_at_80_columns(emulator):
    """Every VM's detail at 80 columns (the panel's 77): each address, FQDN, disk, NIC and NSG
    name is whole on one line; the resource id and the portal link, longer than a line, are
    broken only before a '/' (an IP cut as 127.10.1.1 / 9 misreads as another host)."""
    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        from widgets.vm_detail import vm_detail_renderable

        for vm in app.inventory.vms:
            text = renderable_text(vm_detail_renderable(vm, app.inventory, app.now()), width=77)
            lines = [line.strip() for line in text.splitlines()]
            whole = [ip for nic in vm.nics for ip in nic.private_ips] + [p.ip_address for nic in vm.nics for p in nic.public_ips if p.ip_address]
            whole += [p.fqdn for nic in vm.nics for p in nic.public_ips if p.fqdn] + [d.name for d in vm.disks] + [n.name for n in vm.nics]
            whole += [id_name(n.nsg_id) for n in vm.nics if n.nsg_id] + [e.name for e in vm.extensions]
            for value in whole:
                assert any(value in line for line in lines), (vm.name, value, text)
            for label, value in (("Resource id", vm.id), ("Portal", vm.portal_url), ("Image", vm.image or "")):
                if not value:
                    continue
                at = next(i for i, line in enumerate(lines) if line.startswith(label))
                pieces = [lines[at][len(label) :].strip()]
                for line in lines[at + 1 :]:
                    if "".join(pieces) == value:
                        break
                    pieces.append(line)
                assert "".join(pieces) == value and all(p[:1] in "/:" for p in pieces[1:]), (vm.name, pieces)


async def test_the_whole_table_is_shown_as_soon_as_every_subscription_is_listed():
    """Parts of the first load are shown at most once a second, but the part that lists every
    VM is shown at once: the operator does not wait a second for the last subscriptions."""
    from backend.models import Inventory
    from tui.app import _PartialLoads

    shown: list[Inventory] = []

    class App:
        def show_partial(self, inventory: Inventory) -> None:
            shown.append(inventory)

    loads = _PartialLoads(App())  # type: ignore[arg-type]
    first, middle, whole = (Inventory((), (), lists_pending=n) for n in (19, 5, 0))
    loads.seen(first)
    await asyncio.sleep(0.05)
    assert shown == [first]
    loads.seen(middle)  # within the second: held back
    await asyncio.sleep(0.05)
    assert shown == [first]
    loads.seen(whole)
    assert shown == [first, whole]  # at once, and the held-back part is not shown after it
    await asyncio.sleep(0.05)
    assert shown == [first, whole]
    loads.stop()


async def test_a_pane_left_for_another_lets_go_of_its_rows_and_has_them_back_when_shown(emulator, monkeypatch):
    """On a large estate (here: the threshold lowered to the demo's 30 VMs) a pane the operator
    leaves for another drops its rows; shown again, it has every row back, with the filter, the
    sort and the VM under the cursor as they were."""
    import tui.screens.base as base

    monkeypatch.setattr(base, "HIDDEN_ROWS_KEPT", 10)
    app = make_app(emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        inventory = app.screen
        table = inventory.query_one(VmTable)
        table.sort_by("name", reverse=True)
        table.move_cursor(4)
        await pilot.pause()
        before, under_cursor = table_lines(table), table.cursor_key
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "health", what="the Health pane")
        await wait_for(pilot, lambda: table.total_count == 0, what="the hidden Inventory letting go of its rows")
        await pilot.press("1")
        await wait_for(pilot, lambda: table.total_count == 30, what="the rows back")
        await pilot.pause()
        assert table.cursor_key == under_cursor and table.cursor_row == 4
        assert table_lines(table) == before

        # A page opened over the pane (the VM's detail) is not leaving it: the rows stay.
        await enter_detail(pilot)
        await pilot.pause(0.2)
        assert table.total_count == 30


async def test_rows_are_made_again_only_for_vms_whose_row_changed(emulator, monkeypatch):
    """A large estate's rows (here: the threshold lowered to the demo's 30 VMs) are made once:
    a new inventory of the same VMs (each part of the first load) keeps them, and a verdict
    that changes remakes that VM's row alone, which then reads as a fresh one would."""
    import dataclasses

    import tui.screens.inventory as inventory_screen
    from widgets.vm_table import vm_row

    monkeypatch.setattr(inventory_screen, "ROWS_IN_SLICES", 10)
    async with loaded_table(emulator, (160, 50)) as (app, pilot, table):
        inventory = app.inventory
        keys = [vm.id.lower() for vm in inventory.vms]
        first = {key: table.get_row(key) for key in keys}
        assert all(first.values())
        # The VMs that need attention are counted as the rows are made, as the status line says.
        attention = sum(app.verdict_for(vm).needs_attention for vm in inventory.vms)
        assert attention and f"{attention} need attention" in str(app.screen.query_one("#status-line").content)

        app.screen.show_inventory(dataclasses.replace(inventory, events=tuple(inventory.events)))
        await wait_for(pilot, lambda: not any(w.group == "inventory-rows" and w.is_running for w in app.screen.workers), what="the rows")
        assert all(table.get_row(key) is first[key] for key in keys)

        # A probe found web-prod-01's guest agent not ready: its verdict changes, the others' do not.
        vm = next(v for v in inventory.vms if v.name == "web-prod-01")
        before = app.verdict_for(vm)
        app.verdicts.record_diagnoses(vm, (), app.now(), agent_status="NotReady")
        assert app.verdict_for(vm) != before
        app.screen.show_inventory(inventory)
        await wait_for(pilot, lambda: table.get_row(vm.id.lower()) is not first[vm.id.lower()], what="web-prod-01's row made again")
        names = {s.subscription_id.lower(): s.display_name for s in inventory.subscriptions}
        fresh = vm_row(vm, names.get(vm.subscription_id.lower()), app.verdict_for(vm), vm.id.lower() in inventory.views_pending)
        assert table.get_row(vm.id.lower()).cells == fresh.cells != first[vm.id.lower()].cells
        assert sum(table.get_row(key) is first[key] for key in keys) == len(keys) - 1


@pytest.mark.parametrize("in_slices", [False, True], ids=["at-once", "in-slices"])
async def test_on_a_large_estate_the_rows_are_frozen_once_drawn(emulator, monkeypatch, in_slices):
    """On a large estate (here the threshold lowered to the demo's VMs) the Inventory's rows
    live until the next refresh: once drawn they are frozen with the inventory, so the
    collector's automatic full passes do not walk them (at 10,000 VMs each pass walked them
    all, 50-145 ms of the console's loop, about once a refresh)."""
    import gc

    import tui.gc_pacing as pacing

    monkeypatch.setattr(pacing, "LARGE_ESTATE_VMS", 10)
    if in_slices:  # as at 10,000 VMs
        monkeypatch.setattr("tui.screens.inventory.ROWS_IN_SLICES", 10)
    async with loaded_table(emulator, (120, 30)) as (app, pilot, table):
        await wait_for(pilot, lambda: table.row_count > 10 and not any(w.is_running for w in app.workers if w.group == "inventory-rows"), what="the rows")
        assert app.gc_pacer.engaged
        rows = table.visible_rows()
        walked = {id(o) for o in gc.get_objects()}  # what an automatic collection would walk
        assert not any(id(row) in walked for row in rows)
    assert gc.get_freeze_count() == 0  # the console closed: the interpreter's own behaviour again
