"""The console at tenant scale, through the real app on the emulator: it opens on what is
broken (Resource Graph) before or instead of loading every VM, reads a VM of that view whole
when it is opened, and finds a VM it has not loaded by name or IP (the Inventory filter, the
palette) with one Resource Graph query."""

from __future__ import annotations

import dataclasses

import pytest

from backend.config import Config
from tests.support import FIXED_NOW, demo_settings
from tests.tui_support import wait_for, wait_loaded

pytestmark = pytest.mark.xdist_group("graph")


def _app(emu, **kwargs):
    from tui.app import AztriageApp

    settings = demo_settings(emu, **{k: v for k, v in kwargs.items() if k in ("subscriptions", "engine", "graph_threshold")})
    return AztriageApp(settings, config=Config(refresh_interval=0, auto_probe=False), clock=lambda: FIXED_NOW, broken=kwargs.get("broken", False))


async def test_broken_opens_on_what_is_broken_and_loads_every_vm_on_request(graph_emulator):
    from backend.search import is_sketch
    from tui.screens.health import HealthScreen

    app = _app(graph_emulator, broken=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        assert app.showing_broken and app.broken_only
        shown = {vm.name for vm in app.inventory.vms}
        # Every VM the Inventory pane lists is broken or waits for maintenance; none of the healthy ones.
        assert shown and all(vm.availability_state != "Available" or vm.maintenance.pending for vm in app.inventory.vms)
        assert app.screen.table.total_count == len(shown)
        assert "what is broken only" in str(app.screen.query_one("#status-line").content)
        assert "BROKEN ONLY" in app.header_state.status
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, HealthScreen) and app.screen.view is not None, what="health pane")
        view = app.screen.view
        assert view.statuses and view.maintenance and any(e.event.status.lower() == "active" for e in view.events)
        assert all(s.reason_type != "user-initiated" for s in view.statuses)  # stopped by their owners: counted, not listed
        # Opening a VM of the view reads it whole (NICs, disks) from Resource Graph.
        sketch = view.statuses[0].vm
        assert is_sketch(sketch)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "VmDetailScreen", what="detail")
        await wait_for(pilot, lambda: app.screen.vm is not None and not is_sketch(app.screen.vm), what="the VM read whole")
        assert app.screen.vm.id == sketch.id and app.screen.vm.nics and app.screen.vm.os_disk.name
        await pilot.press("escape")
        # The palette leaves the view and loads every VM.
        loads = app.loads
        app.load_every_vm()
        await wait_loaded(pilot, loads + 1)
        assert not app.showing_broken and len(app.inventory.vms) > len(shown)


async def test_a_tenant_above_the_threshold_shows_what_is_broken_first_then_every_vm(graph_emulator):
    app = _app(graph_emulator, graph_threshold=1)  # the demo's subscriptions are "many" here
    seen: list[tuple[bool, int]] = []
    broadcast = app.broadcast

    def spy(message):
        from tui.messages import InventoryChanged

        if isinstance(message, InventoryChanged):
            seen.append((app.showing_broken, len(message.inventory.vms)))
        broadcast(message)

    app.broadcast = spy  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.loads >= 2 and not app.showing_broken, what="every VM after what is broken")
        assert seen[0][0] and seen[-1] == (False, len(app.inventory.vms))
        assert seen[0][1] < len(app.inventory.vms)
        assert app.inventory.engine == "arg"


async def test_the_inventory_filter_finds_a_vm_that_is_not_loaded(graph_emulator):
    from backend.azure.backend import AzureBackend

    probe = AzureBackend(demo_settings(graph_emulator))
    everything = await probe.inventory(instance_views=0)
    await probe.close()
    first = everything.subscriptions[0].subscription_id
    elsewhere = next(vm for vm in everything.vms if vm.subscription_id != first and vm.private_ips and vm.public_ips)
    app = _app(graph_emulator, subscriptions=(first,))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        table = app.screen.table
        assert elsewhere.id.lower() not in {vm.id.lower() for vm in app.inventory.vms}
        await pilot.press("slash", *elsewhere.name)
        await pilot.pause()
        assert table.row_count == 0
        assert "enter searches the tenant" in str(app.screen.query_one("#status-line").content)
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 1, what="the VM found in the tenant")
        assert table.cursor_vm.id == elsewhere.id
        assert dataclasses.replace(table.cursor_vm, health=elsewhere.health) == elsewhere  # read whole, as the full inventory has it
        # By its public IP too (another VM of the same subscription, found the same way).
        other = next(vm for vm in everything.vms if vm.subscription_id != first and vm.public_ips and vm.id != elsewhere.id)
        await pilot.press("escape", "slash", *other.public_ips[0], "enter")
        await wait_for(pilot, lambda: table.row_count >= 1 and any(r.item.id == other.id for r in table.visible_rows()), what="found by IP")


async def test_the_palette_finds_and_opens_a_vm_that_is_not_loaded(graph_emulator):
    from backend.azure.backend import AzureBackend

    probe = AzureBackend(demo_settings(graph_emulator))
    everything = await probe.inventory(instance_views=0)
    await probe.close()
    first = everything.subscriptions[0].subscription_id
    elsewhere = next(vm for vm in everything.vms if vm.subscription_id != first)
    app = _app(graph_emulator, subscriptions=(first,))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        before = len(_graph_log(graph_emulator))
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette", what="palette")
        await pilot.press(*f"vm: find {elsewhere.name} in the tenant")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "VmDetailScreen", what="detail")
        assert app.screen.vm is not None and app.screen.vm.id == elsewhere.id
        # Nothing was sent per keystroke: one query found it, at most four read it whole.
        assert 2 <= len(_graph_log(graph_emulator)) - before <= 5


def _graph_log(emu) -> list[dict]:
    from tests.support import emulator_control

    return [r for r in emulator_control(emu, "GET", "/_emulator/requests") if "resourcegraph" in r["path"].lower()]
