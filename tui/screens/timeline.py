"""One VM's incident timeline (T on a VM, or "vm: timeline" in the palette): who did what,
when, newest first, from the activity log, Resource Health's history and aztriage's own
runs, probes and verdicts (backend/timeline.py). "Who stopped it" sits on top when the VM
is stopped or deallocated. f picks the source, w the window, enter shows an entry whole."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from backend.models import Inventory, Vm
from backend.timeline import CHANGES, SOURCE_LABELS, SOURCES, Timeline, TimelineEntry
from tui.screens.base import BaseScreen
from widgets.fast_table import FastTable
from widgets.timeline_table import TimelineTable, timeline_rows

WINDOWS = (("24 h", timedelta(hours=24)), ("7 days", timedelta(days=7)), ("30 days", timedelta(days=30)), ("90 days", timedelta(days=90)))


class TimelineScreen(BaseScreen):
    CSS_PATH = "timeline.tcss"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="timeline.back"),
        Binding("f", "next_source", "Source", id="timeline.source"),
        Binding("w", "next_window", "Window", id="timeline.window"),
        Binding("r", "reload", "Refresh", id="timeline.reload"),
    ]

    def __init__(self, vm_id: str, *, window: int = 1) -> None:
        super().__init__()
        self.vm_id = vm_id
        self.vm: Vm | None = None
        self.window = window  # index into WINDOWS
        self.source: str | None = None  # None: every source
        self.timeline: Timeline | None = None
        self.loading = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="who", markup=False)
        yield TimelineTable(id="timeline")
        yield Static("", id="entry", markup=False)

    @property
    def table(self) -> TimelineTable:
        return self.query_one(TimelineTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.focus()

    def show_inventory(self, inventory: Inventory) -> None:
        first = self.vm is None
        self.vm = inventory.vm_by_id(self.vm_id)
        if first and self.vm is not None:
            self.load()
        self.update_status()

    # --- loading ---------------------------------------------------------------------------

    @work(exclusive=True, group="timeline", exit_on_error=False, description="reading the timeline")
    async def load(self) -> None:
        from backend.timeline import build_timeline, journal_for

        app = self.aztriage
        vm, backend = self.vm, app.backend
        if vm is None or backend is None:
            return
        self.loading = True
        self.update_status()
        try:
            now = app.now()
            journal = await asyncio.to_thread(journal_for, vm.id)
            self.timeline = await build_timeline(
                backend, vm, since=now - WINDOWS[self.window][1], until=now, journal=journal, console=app.console_events.of(vm.id)
            )
        finally:
            self.loading = False
        self.redraw()
        if not any(source == CHANGES for source, _ in self.timeline.errors):
            app.record_changes({vm.id: self.timeline.recent_change(now)})  # read already: the verdict's evidence too

    def redraw(self) -> None:
        tl = self.timeline
        who = self.query_one("#who", Static)
        if tl is None:
            who.update(Text(""))
            return
        lines = Text()
        if tl.who_stopped is not None:
            lines.append("Who stopped it: ", style="bold")
            lines.append(tl.who_stopped.sentence)
        for source, message in tl.errors:
            if lines:
                lines.append("\n")
            lines.append(f"{SOURCE_LABELS.get(source, source)} not read: ", style="bold red")
            lines.append(message)
        who.update(lines)
        who.display = bool(lines)
        entries = tl.entries if self.source is None else tuple(e for e in tl.entries if e.source == self.source)
        self.table.set_rows(timeline_rows(entries))
        self._fit_when_laid_out()
        self.show_entry(self.table.cursor_item)
        self.update_status()

    def _fit_when_laid_out(self, tries: int = 40) -> None:
        # Rows that arrive before the table's first layout were fitted to no width, and no
        # Resize reaches the table afterwards: fit them once it has its width.
        table = self.table
        if table.size.width:
            table.refit()
        elif tries:
            self.set_timer(0.05, lambda: self._fit_when_laid_out(tries - 1))

    def show_entry(self, entry: TimelineEntry | None) -> None:
        box = self.query_one("#entry", Static)
        if entry is None:
            box.update(Text(""))
            return
        text = Text()
        text.append(entry.time.strftime("%Y-%m-%d %H:%M:%S UTC"), style="bold")
        text.append(f"  {SOURCE_LABELS.get(entry.source, entry.source)}  {entry.actor}\n")
        text.append(entry.detail or entry.what)
        if entry.link:
            text.append(f"  [{entry.link}]")
        box.update(text)

    @on(FastTable.CursorMoved, "#timeline")
    @on(FastTable.Selected, "#timeline")
    def _entry_changed(self, event: FastTable.CursorMoved | FastTable.Selected) -> None:
        self.show_entry(event.item)

    # --- actions ---------------------------------------------------------------------------

    def action_next_source(self) -> None:
        order: list[str | None] = [None, *SOURCES]
        self.source = order[(order.index(self.source) + 1) % len(order)]
        self.redraw()

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.load()

    def action_reload(self) -> None:
        self.load()

    def update_status(self) -> None:
        name = self.vm.name if self.vm else self.vm_id.rsplit("/", 1)[-1]
        source = "all sources" if self.source is None else SOURCE_LABELS[self.source]
        count = f"{self.table.row_count} entries" if self.timeline is not None else "reading…"
        if self.loading:
            count = "reading…"
        self.set_status(Text(f" Timeline of {name} · last {WINDOWS[self.window][0]} · {source} · {count} · f source · w window · esc back"))

    def palette_commands(self):
        from tui.vm_commands import vm_commands

        return [
            ("timeline: next source", "Show one source at a time: activity log, resource health, aztriage (f)", self.action_next_source),
            ("timeline: longer window", "24 hours, 7, 30 or 90 days (w)", self.action_next_window),
            ("view: back", "Close the timeline", self.app.pop_screen),
            *vm_commands(self, self.vm),
        ]
