"""Helpers for the console's Pilot and snapshot tests: an app on the shared
emulator with a fixed clock, and waiting until a load has landed."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request

from rich.console import Console

from backend.config import Config
from tests.support import FIXED_NOW, demo_settings


def make_app(
    emulator,
    *,
    read_only: bool = False,
    refresh_interval: float = 0,
    keys: dict | None = None,
    start_pane: str = "inventory",
    subscriptions: tuple[str, ...] = (),
    auto_probe: bool = False,
):
    from tui.app import AztriageApp

    settings = demo_settings(emulator, read_only=read_only, subscriptions=subscriptions)
    # The background probe is off unless a test is about it: snapshots and timings stay what they were.
    config = Config(refresh_interval=refresh_interval, keys=keys or {}, auto_probe=auto_probe)
    return AztriageApp(settings, config=config, clock=lambda: FIXED_NOW, start_pane=start_pane)


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
    await pilot.pause()


async def wait_loaded(pilot, loads: int = 1) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.loads >= loads or app.failures > 0, what=f"load {loads}")
    # Let every screen handle InventoryChanged.
    await pilot.pause()
    await pilot.pause()


async def enter_detail(pilot) -> None:
    """Enter on the VM under the cursor, until its detail page is up."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "VmDetailScreen", what="the VM's detail page")


async def open_vm_detail(pilot, name: str) -> None:
    """The detail page of the VM `name`, opened from the inventory filtered down to it."""
    pilot.app.screen.set_filter(name)
    await pilot.pause()
    await enter_detail(pilot)


def table_lines(table) -> list[str]:
    """The table as drawn on screen, one string per line."""
    return [table.render_line(y).text for y in range(table.size.height)]


def screen_text(app) -> str:
    """What the terminal shows now (the top screen and what a modal lets through), one line per row."""
    return "\n".join("".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips())


def renderable_text(renderable, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def arm_post(emulator, path: str, body=None) -> int:
    """A write through the emulator's ARM surface (as another operator would do it)."""
    ctx = ssl.create_default_context(cafile=emulator.ca_file)
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(
        emulator.endpoint + path,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer test-token"},
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return resp.status


# --- the Recovery pane ---------------------------------------------------------------------


async def open_recovery_pane(pilot):
    """The Recovery pane (key 4) once the first load has landed."""
    from tui.screens.recovery import RecoveryScreen

    await wait_loaded(pilot)
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RecoveryScreen), what="the recovery pane")
    await pilot.pause()
    return pilot.app.screen


async def choose_vm(pilot, screen, name: str) -> None:
    """Filter the pane's VM table to `name` by typing, as an operator does, and choose it."""
    await pilot.press("slash", *name)
    await pilot.press("enter")  # keeps the filter, back to the table
    await pilot.press("enter")  # chooses the VM
    await wait_for(pilot, lambda: screen.facts is not None and screen.stage == "scenarios", what="the scenarios")


async def open_scenarios(pilot, vm_name: str):
    """The Recovery pane with `vm_name` chosen by keys: its list of scenarios."""
    screen = await open_recovery_pane(pilot)
    await choose_vm(pilot, screen, vm_name)
    return screen


async def choose_scenario(pilot, screen, scenario_id: str) -> None:
    options = screen.query_one("#scenarios")
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    options.highlighted = ids.index(scenario_id)
    await pilot.press("enter")


async def open_scenario(pilot, vm_name: str, scenario_id: str):
    """The Recovery pane with `scenario_id` chosen for `vm_name` by keys (its options or plan on the way)."""
    screen = await open_scenarios(pilot, vm_name)
    await choose_scenario(pilot, screen, scenario_id)
    return screen


async def open_options(pilot, vm_name: str, scenario_id: str):
    """The Recovery pane at `scenario_id`'s options for `vm_name` (zones, sizes, an account...)."""
    screen = await open_scenario(pilot, vm_name, scenario_id)
    await wait_for(pilot, lambda: screen.stage == "options", what="the options")
    return screen


async def open_plan(pilot, vm_name: str, scenario_id: str, timeout: float = 30.0):
    """The Recovery pane showing `scenario_id`'s plan for `vm_name`, chosen by keys."""
    screen = await open_scenario(pilot, vm_name, scenario_id)
    await wait_for(pilot, lambda: screen.stage == "plan", timeout=timeout, what="the plan")
    return screen


async def confirm_by_name(pilot, name: str):
    """The confirmation a destructive plan asks for, with `name` (the VM's) typed into it; returns the dialog."""
    from widgets.confirm_dialog import ConfirmDialog

    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the confirm dialog")
    dialog = pilot.app.screen
    assert dialog.type_name == name
    await pilot.press(*name, "enter")
    return dialog


async def run_confirmed_by_name(pilot, screen, name: str, timeout: float = 60.0) -> None:
    """o on the plan, `name` typed into the confirmation, and the run to its end."""
    await pilot.press("o")
    await confirm_by_name(pilot, name)
    await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=timeout, what="the run")


def detail(screen) -> str:
    return renderable_text(screen.query_one("#detail").content, width=200)


def steps_text(screen) -> str:
    return "\n".join(table_lines(screen.query_one("#steps")))


async def assert_read_only_never_runs(pilot, app, screen, emu) -> None:
    """A plan shown under --read-only: its changes are marked disabled, the status line says
    so, and neither `o` nor the run action itself opens a confirmation or sends a write."""
    from tests.recovery_support import writes
    from widgets.confirm_dialog import ConfirmDialog

    assert "– disabled" in steps_text(screen)
    assert "read-only: changes are disabled" in str(screen.query_one("#status-line").content)
    before = writes(emu)
    await pilot.press("o")
    await pilot.pause()
    assert not isinstance(app.screen, ConfirmDialog)
    screen.action_run_plan()
    await pilot.pause()
    assert writes(emu) == before and screen.run_id is None
