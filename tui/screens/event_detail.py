"""One Service Health event: what it is, its updates (newest first) and the
VMs of mine in its impacted regions."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from backend.health import EventRow, event_by_id
from backend.models import Inventory
from tui.screens.base import BaseScreen
from widgets import fmt
from widgets.fast_table import FastTable
from widgets.plain import add_plain_row
from widgets.scroll_panel import ScrollPanel
from widgets.vm_table import VmTable, subscription_names


def event_renderable(row: EventRow, now) -> Group:
    e = row.event
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    status = Text(e.status.upper() if e.status.lower() == "active" else e.status, style="bold red" if e.status.lower() == "active" else "")
    add_plain_row(grid, "Status", status)
    add_plain_row(grid, "Type / level", f"{e.type} / {e.level or '-'}")
    add_plain_row(grid, "Tracking id", e.id)
    add_plain_row(grid, "Regions", ", ".join(e.regions) or "-")
    add_plain_row(grid, "Services", ", ".join(e.services) or "-")
    if e.impact_start:
        add_plain_row(grid, "Impact start", f"{fmt.when(e.impact_start)} ({fmt.ago(e.impact_start, now)})")
    if e.impact_mitigation:
        add_plain_row(grid, "Mitigated", fmt.when(e.impact_mitigation))
    if e.last_update:
        add_plain_row(grid, "Last update", fmt.when(e.last_update))
    add_plain_row(
        grid, "My VMs", f"{len(row.impacted_vms)} " + ("listed by Azure as impacted" if row.listed else "in the region (Azure lists no impacted resources)")
    )
    parts: list[RenderableType] = [Text(e.title, style="bold"), grid]
    if e.summary:
        parts += [Text(""), Text(e.summary)]
    updates = row.updates
    parts.append(Text(f"\nUpdates ({len(updates)}, newest first)", style="bold underline"))
    if not updates:
        parts.append(Text("none", style="dim"))
    for u in updates:
        line = Text()
        line.append(fmt.when(u.time), style="bold")
        line.append("  " + u.summary)
        parts.append(line)
    where = "listed by Azure as impacted" if row.listed else f"mine in {', '.join(e.regions) or 'no region'}"
    parts.append(Text(f"\nImpacted VMs: {where}", style="bold underline"))
    return Group(*parts)


class EventDetailScreen(BaseScreen):
    CSS_PATH = "event_detail.tcss"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="event.back"),
    ]

    def __init__(self, event_id: str) -> None:
        super().__init__()
        self.event_id = event_id
        self.row: EventRow | None = None

    def compose_body(self) -> ComposeResult:
        with ScrollPanel(id="event-info", name="event"):
            yield Static(id="event-body", markup=False)
        yield VmTable(id="impacted", empty_text="None of my VMs are in the impacted regions.")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(VmTable).focus()

    def show_inventory(self, inventory: Inventory) -> None:
        self.row = event_by_id(inventory, self.event_id)
        body = self.query_one("#event-body", Static)
        if self.row is None:
            body.update(Text("This event is no longer reported.", style="yellow"))
            self.query_one(VmTable).update_vms(())
        else:
            body.update(event_renderable(self.row, self.aztriage.now()))
            self.query_one(VmTable).update_vms(self.row.impacted_vms, subscription_names(inventory), self.aztriage.verdict_for)
        self.update_status()

    def update_status(self) -> None:
        count = len(self.row.impacted_vms) if self.row else 0
        self.set_status(f" event {self.event_id} · {count} impacted {'VM' if count == 1 else 'VMs'} · enter: VM details · esc back")

    @on(FastTable.Selected, "#impacted")
    def _open_vm(self, event: FastTable.Selected) -> None:
        from tui.screens.vm_detail import VmDetailScreen

        self.app.push_screen(VmDetailScreen(event.item.id))
