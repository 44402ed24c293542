"""The panes of the console. A pane is one entry here: its number key, its
title and the screen class that draws it (imported when first shown, so
starting the app does not import every pane). Only panes that exist are
listed; a later feature adds its line."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pane:
    key: str  # the number key that shows it
    id: str  # the app mode name; also used in binding ids ("pane.<id>")
    title: str
    screen: str  # "module:Class"
    short: str = ""  # the tab's name when the full titles do not fit (80 columns)

    @property
    def short_title(self) -> str:
        return self.short or self.title

    def screen_class(self):
        module, _, cls = self.screen.partition(":")
        return getattr(importlib.import_module(module), cls)

    def make_screen(self) -> Any:
        """A new screen of this pane: the app's mode factory."""
        return self.screen_class()()


PANES: tuple[Pane, ...] = (
    Pane("1", "inventory", "Inventory", "tui.screens.inventory:InventoryScreen", "Inv"),
    Pane("2", "health", "Health", "tui.screens.health:HealthScreen", "Health"),
    Pane("3", "connectivity", "Connectivity", "tui.screens.connectivity:ConnectivityScreen", "Conn"),
    Pane("4", "recovery", "Recovery", "tui.screens.recovery:RecoveryScreen", "Recov"),
    Pane("5", "checklist", "Checklist", "tui.screens.checklist:ChecklistScreen", "Check"),
    Pane("6", "boot", "Boot", "tui.screens.boot:BootScreen", "Boot"),
)


def pane(pane_id: str) -> Pane:
    for p in PANES:
        if p.id == pane_id:
            return p
    raise KeyError(pane_id)
