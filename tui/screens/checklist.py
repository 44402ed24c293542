"""Pane 5, Checklist: the high-availability checklist over the whole estate.

Findings grouped by rule (or, with `b`, by VM), worst first; `/` filters by
rule, VM, severity or any word of the evidence. The panel under the table
shows the selected finding's evidence and fix; enter shows its VM in the
Inventory pane. The command palette exports the selected VM's incident report.

Each refresh is checked again at once; the per-VM instance views and the
compute usage behind some rules are read again only every ten minutes (or
with "checklist: read instance views and quota now"), since they cost one
request per VM.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widgets import Static

from backend.checks import RULES_BY_ID, CheckResult, CheckSession, Finding, NotChecked, render_markdown, role_settings
from backend.models import Inventory
from tui.gc_pacing import release_gradually
from tui.messages import ShowVm
from tui.screens.base import TablePane
from widgets.fast_table import MANY_ROWS, FastTable
from widgets.findings_table import BY_RULE, BY_VM, FindingsTable, Group, rows_for, severity_text

log = logging.getLogger("aztriage.console")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ChecklistScreen(TablePane[FindingsTable]):
    PANE_ID = "checklist"
    table_type, table_id = FindingsTable, "findings"
    detail_id, detail_name = "finding-detail", "finding"
    filter_placeholder = "filter: rule, VM, severity, words of the evidence"
    CSS_PATH = "checklist.tcss"

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="checklist.filter"),
        Binding("escape", "clear_filter", "Clear", id="checklist.clear_filter"),
        Binding("v", "toggle_grouping", "View", id="checklist.group"),
        Binding("x", "export_report", "Export", id="checklist.export_report"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.grouping = BY_RULE
        self.result: CheckResult | None = None
        self.checking = False
        self.check_error = ""
        self.session = CheckSession()
        self._pending: Inventory | None = None
        self._summary: dict | None = None  # result.summary(), made once per result

    # --- checking ----------------------------------------------------------------------

    def show_inventory(self, inventory: Inventory) -> None:
        self._pending = inventory
        self.run_checks()

    # The inventory is not the worker's argument (nor left in its frame): a finished worker
    # sits in a reference cycle until a full garbage collection and would keep a whole
    # inventory alive; and Textual would repr() the arguments for the worker's description.
    @work(exclusive=True, group="checklist", exit_on_error=False, description="checking the estate")
    async def run_checks(self, force: bool = False) -> None:
        inventory, self._pending = self._pending, None
        backend = self.aztriage.backend
        if backend is None or inventory is None:
            return
        self.checking = True
        self.check_error = ""
        self.update_status()
        try:
            roles = role_settings(self.aztriage.config)
            _, result = await self.session.run(backend, inventory, roles, force=force)
        except Exception as exc:
            # Not the app's worker handler: that one reports a failed inventory load.
            # The pane keeps its last result and says what failed.
            self.check_error = f"checking failed: {_one_line(exc)}"
            log.warning("the checklist failed", exc_info=True)
            self.notify(f"The checklist could not be computed: {_one_line(exc)}; press r to try again.", severity="error", timeout=8)
            return
        finally:
            inventory = None
            self.checking = False
            self.update_status()
        if len(result.inventory.vms) > MANY_ROWS:
            # Rows and summary of a large estate take several hundred ms: in a thread, like the checks.
            rows, summary = await asyncio.to_thread(_rows_and_summary, result, self.grouping)
            self.show_result(result, rows=rows, summary=summary)
        else:
            self.show_result(result)

    def show_result(self, result: CheckResult, *, rows: list | None = None, summary: dict | None = None) -> None:
        old = self.result
        if old is not None and old is not result and len(old.inventory.vms) > MANY_ROWS:
            # The last holder of the previous result and of its enriched inventory: let go slowly.
            release_gradually([*old.findings, *old.inventory.vms])
        self.result = result
        self._summary = summary
        table = self.table
        table.empty_text = "No findings match the filter." if result.findings or result.not_checked else "No findings: every rule passed."
        if rows is None:
            rows = rows_for(result, self.grouping, _subscription_names(result))
        table.set_rows(rows)
        self.show_summary()
        self.show_detail()
        self.update_status()

    def show_summary(self) -> None:
        if self.result is None:
            return
        if self._summary is None:
            self._summary = self.result.summary()
        s = self._summary
        sev = s["by_severity"]
        text = Text()
        text.append(f" Score {s['score']}/100", style="bold")
        text.append(f" · {s['vms']} VMs · ")
        text.append(f"{sev['high']} HIGH", style="bold" if sev["high"] else "")
        text.append(f" · {sev['medium']} medium · {sev['low']} low · {sev['info']} info")
        text.append(f" · by {'rule' if self.grouping == BY_RULE else 'VM'}")
        self.query_one("#summary", Static).update(text)

    # --- the detail panel --------------------------------------------------------------

    @on(FastTable.CursorMoved, "#findings")
    def _cursor_moved(self) -> None:
        self.show_detail()
        self.update_status()
        self.refresh_bindings()  # "x Export report" needs a VM under the cursor

    def show_detail(self) -> None:
        panel = self.query_one("#finding-detail", Static)
        item = self.table.cursor_item
        panel.update(detail_text(item, self.result) if item is not None else "")

    # --- keys --------------------------------------------------------------------------

    def action_toggle_grouping(self) -> None:
        self.grouping = BY_VM if self.grouping == BY_RULE else BY_RULE
        if self.result is not None:
            vm_id = self.table.cursor_vm_id
            self.show_result(self.result, summary=self._summary)
            if vm_id:
                self.table.move_cursor_to_key(("vm", vm_id.lower()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export_report":
            return self.table.cursor_vm_id is not None
        return super().check_action(action, parameters)

    @on(FastTable.Selected, "#findings")
    def _selected(self, event: FastTable.Selected) -> None:
        vm_id = self.table.cursor_vm_id
        if vm_id:
            self.app.post_message(ShowVm(vm_id))
        elif isinstance(event.item, Finding):
            self.notify("This finding is about a subscription and region, not one VM.", timeout=4)

    # --- status line -------------------------------------------------------------------

    def update_status(self) -> None:
        text = Text()
        if self.checking:
            text.append(" checking…" if self.result is None else " checking again…")
        elif self.check_error:
            text.append(" " + self.check_error, style="bold")
        elif self.result is None:
            text.append(" waiting for the inventory…" if not self.aztriage.load_error else " no inventory")
        else:
            table = self.table
            text.append(f" {len(self.result.findings)} findings")
            if table.filter_text:
                text.append(f" · {table.row_count} rows match ")
                text.append(f"/{table.filter_text}", style="bold")
        text.append(" · enter: show VM · v: by rule/VM · x: export report")
        self.set_status(text)

    # --- exports -----------------------------------------------------------------------

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        commands: list[tuple[str, str, Any]] = [
            ("view: filter findings", "Type to filter by rule, VM, severity or evidence", self.action_filter),
            (f"view: group findings by {'VM' if self.grouping == BY_RULE else 'rule'}", "Switch the grouping of the checklist", self.action_toggle_grouping),
            (
                "checklist: read instance views and quota now",
                "Read the VM agent, maintenance, fault domains and compute usage again (one request per VM)",
                self.recheck,
            ),
        ]
        if self.result is not None:
            commands += [
                ("export: checklist as Markdown", "Write every finding with evidence and fix (the `aztriage check --format md` text)", self.export_markdown),
                ("export: checklist as JSON", "Write the `aztriage check --format json` document", self.export_json),
            ]
        vm = self.selected_vm()
        if vm is not None:
            commands.append((f"export: report for {vm.name}", "Write the incident report of the selected VM (Markdown) to a file", self.action_export_report))
        return commands

    def selected_vm(self):
        vm_id = self.table.cursor_vm_id
        if not vm_id or self.result is None:
            return None
        return self.result.inventory.vm_by_id(vm_id)

    def recheck(self) -> None:
        inventory = self.aztriage.inventory
        if inventory is not None:
            self._pending = inventory
            self.run_checks(force=True)

    def export_markdown(self) -> None:
        if self.result is not None:
            self.aztriage.export_text("checklist", "md", render_markdown(self.result))

    def export_json(self) -> None:
        if self.result is not None:
            self.aztriage.export_text("checklist", "json", json.dumps(self.result.to_json(), indent=2, default=str) + "\n")

    def action_export_report(self) -> None:
        vm = self.selected_vm()
        if vm is None:
            self.notify("Select a finding of a VM first.", severity="warning", timeout=4)
            return
        self.notify(f"Writing the incident report of {vm.name}…", timeout=3)
        self.export_report(vm.id)

    @work(exclusive=True, group="checklist-report", exit_on_error=False)
    async def export_report(self, vm_id: str) -> None:
        from backend.report import render, report_for

        result = self.result
        vm = result.inventory.vm_by_id(vm_id) if result else None
        if result is None or vm is None:
            return
        try:
            report = await report_for(self.aztriage.connected_backend, result.inventory, vm, checks=result, now=self.aztriage.now())
        except Exception as exc:  # the report fails alone; the inventory load is not at fault
            log.warning("the incident report of %s failed", vm.name, exc_info=True)
            self.notify(f"The incident report of {vm.name} could not be written: {_one_line(exc)}", severity="error", timeout=8)
            return
        from backend.escape import safe_filename

        self.aztriage.export_text(f"report-{safe_filename(vm.name)}", "md", render([report], "md"))


def _subscription_names(result: CheckResult) -> dict[str, str]:
    return {s.subscription_id.lower(): s.display_name for s in result.inventory.subscriptions}


def _rows_and_summary(result: CheckResult, grouping: str) -> tuple[list, dict]:
    return rows_for(result, grouping, _subscription_names(result)), result.summary()


def detail_text(item: Any, result: CheckResult | None) -> Any:
    """The panel under the table: a finding's evidence and fix, or a group's summary."""
    if isinstance(item, Finding):
        rule = RULES_BY_ID.get(item.rule)
        head = Text()
        head.append(f"{severity_text(item.severity)} {item.rule}", style="bold")
        head.append(f" — {item.title}")
        where = Text()
        where.append("VM        ", style="bold")
        where.append(f"{item.vm} · {item.resource_group} · {item.location}" if item.vm else f"subscription {item.subscription_id} · {item.location}")
        evidence = Text()
        evidence.append("Evidence  ", style="bold")
        evidence.append(item.evidence)
        fix = Text()
        fix.append("Fix       ", style="bold")
        fix.append(item.fix)
        source = Text(f"Source    {rule.source}" if rule else "", style="dim")
        return RichGroup(head, where, evidence, fix, source)
    if isinstance(item, NotChecked):
        head = Text()
        head.append(f"not checked: {item.rule}", style="bold")
        return RichGroup(head, Text(f"Scope     {item.scope}"), Text(f"Why       {item.reason}"))
    if isinstance(item, Group):
        head = Text()
        head.append(item.title, style="bold")
        lines: list[Any] = [head]
        if item.kind == "rule":
            rule = RULES_BY_ID.get(item.key)
            lines.append(Text(f"{len(item.findings)} findings · usual severity {rule.severity if rule else '?'} · source {rule.source if rule else '?'}"))
        elif item.kind == "vm":
            lines.append(Text(f"score {item.score}/100 · {len(item.findings)} findings · enter: show in the Inventory pane · x: export its incident report"))
        elif item.kind == "not-checked":
            lines.append(Text("These rules could not be evaluated everywhere; the checklist says so instead of guessing."))
        return RichGroup(*lines)
    return ""
