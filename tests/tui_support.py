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


def make_app(emulator, *, read_only: bool = False, refresh_interval: float = 0, keys: dict | None = None, start_pane: str = "inventory", subscriptions: tuple[str, ...] = (), auto_probe: bool = False):
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
