"""Pane 2, Health: what Azure says is wrong. VMs whose Resource Health is
not Available (worst first), Service Health events with how many of my VMs
sit in their regions, and VMs waiting for planned maintenance. Enter on an
event shows its updates and impacted VMs; enter on a VM opens its details."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from backend.health import HealthView, health_view
from backend.models import Inventory
from tui.screens.base import BaseScreen
from widgets.fast_table import MANY_ROWS, FastTable
from widgets.health_tables import EventTable, MaintenanceTable, StatusTable, event_rows, maintenance_rows, status_rows


class HealthScreen(BaseScreen):
    PANE_ID = "health"
    CSS_PATH = "health.tcss"

    BINDINGS = [
        Binding("tab", "app.focus_next", "Next", id="health.next_table"),
        Binding("shift+tab", "app.focus_previous", "Previous table", show=False, id="health.previous_table"),
        Binding("o", "recover", "Recover", id="health.recover"),
        Binding("p", "probe", "Probe", id="health.probe"),
        Binding("x", "export", "Export", show=False, id="health.export"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: HealthView | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("Resource Health", id="statuses-title", classes="section-title", markup=False)
        yield StatusTable(id="statuses")
        yield Static("Service Health events", id="events-title", classes="section-title", markup=False)
        yield EventTable(id="events")
        yield Static("Planned maintenance", id="maintenance-title", classes="section-title", markup=False)
        yield MaintenanceTable(id="maintenance")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(StatusTable).focus()

    def show_inventory(self, inventory: Inventory) -> None:
        if len(inventory.vms) > MANY_ROWS:
            self._show_from_thread()
        else:
            self._show(*_health_rows(inventory, self.aztriage.now()))

    @work(exclusive=True, group="health-rows", exit_on_error=False, description="computing the health view")
    async def _show_from_thread(self) -> None:
        """The view of a large estate (a few hundred ms of Python) is made in a thread. The
        inventory is read here, not passed: a finished worker lingers in a reference cycle."""
        inventory = self.aztriage.inventory
        try:
            if inventory is not None:
                self._show(*await asyncio.to_thread(_health_rows, inventory, self.aztriage.now()))
        finally:
            inventory = None

    def _show(self, view: HealthView, total: int, statuses: list, events: list, maintenance: list) -> None:
        self.view = view
        self.query_one(StatusTable).set_rows(statuses)
        self.query_one(EventTable).set_rows(events)
        self.query_one(MaintenanceTable).set_rows(maintenance)
        self._title("#statuses-title", "Resource Health", f"{len(view.statuses)} of {total} VMs not Available, worst first", bool(view.statuses))
        active = sum(1 for e in view.events if e.event.status.lower() == "active")
        self._title("#events-title", "Service Health events", f"{len(view.events)} events, {active} active · enter: updates and impacted VMs", bool(active))
        self._title(
            "#maintenance-title",
            "Planned maintenance",
            f"{len(view.maintenance)} {'VM' if len(view.maintenance) == 1 else 'VMs'} with maintenance pending",
            bool(view.maintenance),
        )
        self.update_status()

    def _title(self, selector: str, title: str, detail: str, alert: bool) -> None:
        text = Text()
        text.append(f" {title} ", style="bold reverse" if alert else "bold")
        text.append(f" {detail}")
        self.query_one(selector, Static).update(text)

    def update_status(self) -> None:
        if self.view is None:
            self.set_status(" loading health…" if not self.aztriage.load_error else " no health data")
            return
        v = self.view
        unplanned = sum(1 for s in v.statuses if s.reason_type == "unplanned")
        text = Text(f" {len(v.statuses)} VMs not Available")
        if unplanned:
            text.append(f" ({unplanned} UNPLANNED)", style="bold")
        text.append(f" · {len(v.events)} events · {len(v.maintenance)} maintenance pending")
        self.set_status(text)

    def selected_vm(self) -> Any:
        """The VM under the cursor of the focused table (Resource Health or maintenance)."""
        focused = self.focused
        if isinstance(focused, (StatusTable, MaintenanceTable)):
            item = focused.cursor_item
            return item.vm if item is not None else None
        return None

    def action_recover(self) -> None:
        from tui.vm_commands import recover

        recover(self, self.selected_vm())

    def action_probe(self) -> None:
        from tui.vm_commands import probe

        probe(self, self.selected_vm())

    def action_export(self) -> None:
        self.aztriage.export_health()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("recover", "probe"):
            return self.selected_vm() is not None or None  # greyed out on the events table
        return super().check_action(action, parameters)

    @on(FastTable.Selected, "#statuses")
    @on(FastTable.Selected, "#maintenance")
    def _open_vm(self, event: FastTable.Selected) -> None:
        from tui.screens.vm_detail import VmDetailScreen

        self.app.push_screen(VmDetailScreen(event.item.vm.id))

    @on(FastTable.Selected, "#events")
    def _open_event(self, event: FastTable.Selected) -> None:
        self.open_event(event.item.id)

    def open_event(self, event_id: str) -> None:
        from tui.screens.event_detail import EventDetailScreen

        self.app.push_screen(EventDetailScreen(event_id))

    def palette_commands(self):
        from tui.vm_commands import vm_commands

        commands = vm_commands(self, self.selected_vm())
        if self.view:
            for row in self.view.events:
                commands.append(
                    (f"view: event {row.event.title}", f"{row.event.status} {row.event.type}: updates and impacted VMs", lambda i=row.id: self.open_event(i))
                )
        return commands


def _health_rows(inventory: Inventory, now: datetime) -> tuple[HealthView, int, list, list, list]:
    """The view and its tables' rows: pure, so it may run in a thread."""
    view = health_view(inventory)
    return view, len(inventory.vms), status_rows(view.statuses, now), event_rows(view.events), maintenance_rows(view.maintenance)
