"""Pane 1, Inventory: every VM in one table with its verdict (backend/verdict.py),
attention first; `/` filters, `s` sorts, enter opens the detail panel. Refreshes
update rows in place by resource id; verdicts follow the background probe, the
Connectivity and Boot panes and recovery runs (VerdictsChanged)."""

from __future__ import annotations

import functools

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding

from backend.models import Inventory, Vm
from backend.turns import Turns
from tui.messages import VerdictsChanged
from tui.screens.base import BaseScreen, TableFilterMixin
from widgets.fast_table import FastTable
from widgets.vm_table import COLUMNS, VmTable, subscription_names, vm_row

# Above this many VMs, rows are built in slices (10k rows take ~0.3 s of Python).
ROWS_IN_SLICES = 2000


class InventoryScreen(TableFilterMixin, BaseScreen):
    PANE_ID = "inventory"
    CSS_PATH = "inventory.tcss"
    _rows_from: Inventory | None = None  # what _build_rows makes rows of next
    # The rows shown, by the VM they show: id(vm) -> (vm, verdict, pending, subscription name, row).
    # A row is made again only when one of those changed (a verdict: made again and different):
    # each part of the first load adds subscriptions to the same VMs, and the background probe
    # changes a few verdicts at a time.
    _made_rows: dict[int, tuple]

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="inventory.filter"),
        Binding("escape", "clear_filter", "Clear", id="inventory.clear_filter"),
        Binding("o", "recover", "Recover", id="inventory.recover"),
        Binding("p", "probe", "Probe", id="inventory.probe"),
        Binding("x", "export", "Export", show=False, id="inventory.export"),
        Binding("X", "stop_probe", "Stop probe", show=False, id="inventory.stop_probe"),
        Binding("T", "timeline", "Timeline", show=False, id="inventory.timeline"),
    ]

    def compose_body(self) -> ComposeResult:
        yield self.filter_box("filter: name, group, subscription, location, IP, state")
        yield VmTable(id="vms")

    def on_mount(self) -> None:
        super().on_mount()
        self._made_rows = {}
        self.query_one(VmTable).focus()

    @property
    def table(self) -> VmTable:
        return self.query_one(VmTable)

    def show_inventory(self, inventory: Inventory) -> None:
        table = self.table
        table.empty_text = "No VMs match the filter." if inventory.vms else "No VMs in the selected subscriptions."
        verdict = self.aztriage.verdict_for
        if len(inventory.vms) > ROWS_IN_SLICES:
            # The VMs that need attention are counted as the rows are made, a slice at a time:
            # made again (every VERDICT_REUSE_S, or on new evidence), 10,000 verdicts in one
            # piece hold the event loop for 0.1-0.25 s (a few ms per turn: backend.turns).
            self._rows_from = inventory
            self._build_rows()
        else:
            # Counted once per load: the status line is redrawn on every keystroke.
            self._attention = sum(1 for vm in inventory.vms if verdict(vm).needs_attention)
            table.update_vms(inventory.vms, subscription_names(inventory), verdict, inventory.views_pending)
            self.update_status()
            self.aztriage.gc_pacer.settled()  # see _build_rows

    @on(VerdictsChanged)
    def _verdicts_changed(self) -> None:
        self.redraw_when_shown()
        self.update_status()

    def action_stop_probe(self) -> None:
        self.aztriage.stop_background_probe()

    def action_timeline(self) -> None:
        """The timeline of the VM under the cursor (who did what to it, when)."""
        vm = self.table.cursor_vm
        if vm is not None:
            from tui.vm_commands import open_timeline

            open_timeline(self, vm)

    def action_recover(self) -> None:
        from tui.vm_commands import recover

        recover(self, self.table.cursor_vm)

    def action_probe(self) -> None:
        from tui.vm_commands import probe

        probe(self, self.table.cursor_vm)

    def action_export(self) -> None:
        self.aztriage.export_inventory()

    @work(exclusive=True, group="inventory-rows", exit_on_error=False, description="building inventory rows")
    async def _build_rows(self) -> None:
        """Turn a large inventory into rows in slices, yielding to the event loop between
        them so keys keep working. (A thread would hold the GIL against the loop and take
        several times longer.)

        The inventory is not the worker's argument, and the locals are dropped on the way
        out: a finished worker sits in a reference cycle (its task's context) until a full
        garbage collection, and would keep a whole 10k-VM inventory alive until then."""
        inventory, self._rows_from = self._rows_from, None
        if inventory is None:
            return
        rows: list = []
        made: dict[int, tuple] = {}
        attention = 0
        try:
            names = subscription_names(inventory)
            verdict = self.aztriage.verdict_for
            vms = inventory.vms
            pending = inventory.views_pending
            before = self._made_rows
            turns = Turns()
            for vm in vms:
                inputs = (vm, verdict(vm), vm.id.lower() in pending, names.get(vm.subscription_id.lower()))
                known = before.get(id(vm))
                if known is not None and known[0] is vm and known[2:4] == inputs[2:] and (known[1] is inputs[1] or known[1] == inputs[1]):
                    row = known[4]
                else:
                    row = vm_row(vm, inputs[3], inputs[1], inputs[2])
                made[id(vm)] = (*inputs, row)
                rows.append(row)
                attention += inputs[1].needs_attention
                if turns.due():
                    await turns.next()
            self._made_rows = made
            self._attention = attention
            self._apply_rows(rows)
            self.aztriage.gc_pacer.settled()  # rows that live until the next refresh: frozen, not walked (tui/gc_pacing.py)
        finally:
            inventory, vms, rows, pending, made, before = None, (), [], frozenset(), {}, {}  # dropped: see the docstring

    def rows_released(self) -> None:
        self._made_rows = {}

    def _apply_rows(self, rows: list) -> None:
        self.table.set_rows(rows)
        self.update_status()

    def on_input_submitted(self, event) -> None:
        """enter in the filter: with no loaded VM matching a name, IP address or id, the tenant is
        searched (one Resource Graph query) and what it finds is added to the table. (Textual
        also runs TableFilterMixin's handler, which keeps the filter.)"""
        if event.input.id != "filter" or self.table.row_count or not event.value.strip():
            return
        from tui.palette import tenant_search_text

        text = tenant_search_text(event.value)
        if text is not None and self.aztriage.backend is not None:
            self._search_tenant(text)

    @work(exclusive=True, group="tenant-find", exit_on_error=False, description="searching the tenant")
    async def _search_tenant(self, text: str) -> None:
        from backend.errors import BackendError

        self.set_status(f" searching the tenant for {text}… (Resource Graph)")
        try:
            found = await self.aztriage.find_in_tenant(text)
        except BackendError as exc:
            self.notify(f"The tenant search failed: {exc}", severity="error", timeout=8)
            found = []
        if not found:
            self.notify(f"No VM matches {text} in the tenant either (Resource Graph searched every subscription in scope).", severity="warning", timeout=6)
        self.update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_probe":
            return bool(self.aztriage.probe_status)
        return super().check_action(action, parameters)

    # --- rows ----------------------------------------------------------------------------

    @on(FastTable.Selected, "#vms")
    def _open(self, event: FastTable.Selected) -> None:
        self.open_vm(event.item)

    def open_vm(self, vm: Vm | None) -> None:
        if vm is None:
            return
        from tui.screens.vm_detail import VmDetailScreen

        self.app.push_screen(VmDetailScreen(vm.id))

    @on(FastTable.SortChanged, "#vms")
    @on(FastTable.CursorMoved, "#vms")
    def _table_changed(self) -> None:
        self.update_status()

    def update_status(self) -> None:
        inventory = self.aztriage.inventory
        table = self.table
        text = Text()
        if inventory is None:
            text.append(" loading inventory…" if not self.aztriage.load_error else " no inventory")
            self.set_status(text)
            return
        total = table.total_count
        text.append(f" {total} VMs")
        if table.filter_text:
            text.append(f" · {table.row_count} match ")
            text.append(f"/{table.filter_text}", style="bold")
            if not table.row_count:
                text.append(" · enter searches the tenant")
        if self.aztriage.showing_broken:
            which = "what is broken only" if self.aztriage.broken_only else "what is broken, every VM loading"
            text.append(f" · {which}" + (f" ({self.aztriage.broken_note})" if self.aztriage.broken_note else ""), style="bold")
        attention = getattr(self, "_attention", 0)
        if attention:
            text.append(f" · {attention} need attention", style="bold")
        if self.aztriage.probe_status:
            text.append(f" · {self.aztriage.probe_status} (X stops)")
        if table.sort_column:
            label = next((c.label for c in COLUMNS if c.key == table.sort_column), table.sort_column) or "attention"
            text.append(f" · sort {label.lower()} {'▼' if table.sort_reverse else '▲'}")
        if table.row_count:
            text.append(f" · row {table.cursor_row + 1}/{table.row_count}")
        self.set_status(text)

    def palette_commands(self):
        from tui.vm_commands import vm_commands

        table = self.table
        vm = table.cursor_vm
        commands = [
            ("view: filter VMs", "Type to filter by name, group, subscription, location, IP or state", self.action_filter),
        ]
        if table.filter_text:
            commands.append(("view: clear filter", f"Show every VM again (filter is '{table.filter_text}')", self.action_clear_filter))
        for column in COLUMNS:
            label = column.label.lower() or "attention (! first)"
            commands.append((f"view: sort by {label}", f"Sort the inventory by {label}", functools.partial(table.sort_by, column.key, reverse=False)))
        commands.append(("view: reverse sort order", "Flip ascending/descending", table.action_sort_reverse))
        commands.append(("export: visible rows as CSV", "Write the rows shown (filter and sort applied) to a CSV file", self.export_csv))
        if vm is not None:
            commands.append((f"vm: details of {vm.name}", "Open the detail panel of the selected VM", lambda: self.open_vm(vm)))
        return commands + vm_commands(self, vm)

    def export_csv(self) -> None:
        import csv
        import io

        from backend.escape import csv_cell

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "name",
                "verdict",
                "resource_group",
                "subscription_id",
                "location",
                "size",
                "power_state",
                "availability_state",
                "sla_shape",
                "public_ips",
                "agent_status",
                "id",
            ]
        )
        for row in self.table.visible_rows():
            vm: Vm = row.item
            cells = [
                vm.name,
                self.aztriage.verdict_for(vm).id,
                vm.resource_group,
                vm.subscription_id,
                vm.location,
                vm.size,
                vm.power_state,
                vm.availability_state,
                vm.sla_shape,
                " ".join(vm.public_ips),
                vm.agent_status,
                vm.id,
            ]
            writer.writerow([csv_cell(cell) for cell in cells])
        self.aztriage.export_text("inventory", "csv", buffer.getvalue())
