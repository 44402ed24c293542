"""The Checklist pane as an operator drives it: worst first, grouped by rule or
by VM, filtered, a finding's evidence and fix, enter jumps to the VM in the
Inventory pane, and the incident report exported from the palette."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tui_support import make_app, table_lines, wait_for, wait_loaded
from widgets.findings_table import FindingsTable
from widgets.vm_table import VmTable

pytestmark = pytest.mark.xdist_group("tui-checklist")


async def open_checklist(pilot):
    app = pilot.app
    await wait_loaded(pilot)
    await pilot.press("5")
    await wait_for(pilot, lambda: getattr(app.screen, "result", None) is not None, what="the checklist")
    await pilot.pause()
    return app.screen


def detail(screen) -> str:
    from tests.tui_support import renderable_text

    return renderable_text(screen.query_one("#finding-detail").content, width=200)


async def test_findings_grouped_by_rule_worst_first_with_evidence_and_fix(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_checklist(pilot)
        table = screen.query_one(FindingsTable)
        lines = table_lines(table)
        assert "SEV" in lines[0] and "FINDING" in lines[0] and "EVIDENCE" in lines[0]
        # The group that costs the most points heads the list, in upper case without colour.
        assert "HIGH" in lines[1] and "▾ no-zone-or-set" in lines[1]
        summary = str(screen.query_one("#summary").content)
        assert summary.startswith(" Score ") and "HIGH" in summary and "by rule" in summary
        # Down to the first finding: the panel shows its evidence and fix.
        await pilot.press("down")
        finding = table.cursor_finding
        assert finding is not None and finding.rule == "no-zone-or-set"
        text = detail(screen)
        assert "Evidence" in text and finding.evidence[:60] in text and "Fix" in text and finding.fix[:40] in text
        # `?` lists the pane's keys (remappable by binding id).
        from tui.screens.help import key_rows

        rows = key_rows(screen)
        assert ("checklist pane", "v", "View", "checklist.group") in rows
        assert any(r[0] == "checklist pane" and r[3] == "checklist.export_report" for r in rows)
        # "Not checked" is listed, never hidden.
        not_checked = [row for row in table.visible_rows() if row.key == ("group", "not-checked")]
        assert not_checked and not_checked[0].cells[1] == "▾ not checked (1)"
        assert any(row.key[0] == "not-checked" and row.item.rule == "retirement" for row in table.visible_rows())


async def test_group_by_vm_filter_and_enter_jumps_to_the_vm(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_checklist(pilot)
        table = screen.query_one(FindingsTable)
        await pilot.press("v")
        first = table.visible_rows()[0]
        assert first.key[0] == "vm" and first.cells[0] == "HIGH"
        scores = [row.item.score for row in table.visible_rows() if row.key[0] == "vm"]
        assert scores == sorted(scores), "worst VM first"
        await pilot.press("slash", *"sql-prod-02")
        await pilot.press("enter")
        shown = [row.item for row in table.visible_rows() if row.key[0] == "finding"]
        # Its own findings, and the findings of its set peers whose evidence names it.
        assert {f.rule for f in shown if f.vm == "sql-prod-02"} >= {"set-domains"}
        assert all(f.vm == "sql-prod-02" or "sql-prod-02" in f.evidence for f in shown)
        assert any("▾ sql-prod-02 (" in line for line in table_lines(table))
        table.move_cursor_to_key(
            next(row.key for row in table.visible_rows() if row.key[0] == "finding" and row.item.rule == "set-domains" and row.item.vm == "sql-prod-02")
        )
        await pilot.pause()
        assert "share fault domain 0" in detail(screen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "inventory", what="the inventory pane")
        await pilot.pause()
        vm_table = app.screen.query_one(VmTable)
        assert vm_table.cursor_vm is not None and vm_table.cursor_vm.name == "sql-prod-02"


async def test_the_footer_follows_what_a_filter_leaves_under_the_cursor(emulator):
    """Typing a filter offers "x Export" (the report) only while a VM's finding is under the cursor; a
    keystroke that changes nothing the footer offers leaves its keys as they are (recomposing
    them cost a third of each keystroke at 10,000 VMs)."""
    from textual.widgets._footer import FooterKey

    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_checklist(pilot)

        def footer() -> list[FooterKey]:
            return list(screen.query(FooterKey))

        await pilot.press("down")
        await pilot.pause()
        assert screen.query_one(FindingsTable).cursor_vm_id is not None
        assert "Export" in [key.description for key in footer()]
        await pilot.press("slash", *"zzz")
        await pilot.pause()
        assert screen.query_one(FindingsTable).row_count == 0
        keys = footer()
        assert "Export" not in [key.description for key in keys]
        await pilot.press("z")
        await pilot.pause()
        assert footer() == keys  # the same key widgets: not recomposed
        await pilot.press("backspace", "backspace", "backspace", "backspace", "enter", "down")
        await pilot.pause()
        assert screen.query_one(FindingsTable).cursor_vm_id is not None
        assert "Export" in [key.description for key in footer()]


async def test_export_report_of_the_selected_vm_writes_a_file_whose_path_is_shown(emulator, test_home):
    app = make_app(emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_checklist(pilot)
        table = screen.query_one(FindingsTable)
        screen.set_filter("dev-sandbox-01 disk-delete-option")
        await pilot.pause()
        key = next(row.key for row in table.visible_rows() if row.key[0] == "finding")
        table.move_cursor_to_key(key)
        await pilot.pause()
        commands = [name for name, _help, _cb in screen.palette_commands()]
        assert "export: report for dev-sandbox-01" in commands
        await pilot.press("x")
        exports = Path(os.environ["XDG_DATA_HOME"]) / "aztriage" / "exports"
        await wait_for(pilot, lambda: any(exports.glob("report-dev-sandbox-01-*.md")), what="the report file")
        path = next(exports.glob("report-dev-sandbox-01-*.md"))
        assert any(str(path) in n.message for n in app._notifications), "the notification shows the path"
        text = path.read_text()
        assert text.startswith("# Incident report: dev-sandbox-01")
        assert "disk-delete-option" in text and "## Recovery runs" in text
        assert oct(path.stat().st_mode & 0o777) == "0o600"


# --- how it looks (pytest-textual-snapshot; SVGs in snapshots/test_tui_checklist/) -------


def checklist_ready(*keys: str, filter_text: str | None = None):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        await pilot.press("5")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "result", None) is not None and not pilot.app.screen.checking, what="the checklist")
        if filter_text is not None:
            pilot.app.screen.set_filter(filter_text)
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_checklist_pane_by_rule(snap_compare, emulator, size):
    assert snap_compare(make_app(emulator, read_only=True), terminal_size=size, run_before=checklist_ready("down"))


def test_checklist_pane_by_vm(snap_compare, emulator):
    assert snap_compare(make_app(emulator), terminal_size=(120, 36), run_before=checklist_ready("v", "down", "down"))


def test_checklist_pane_filtered_finding_detail(snap_compare, emulator):
    assert snap_compare(make_app(emulator), terminal_size=(100, 30), run_before=checklist_ready("down", filter_text="contosolegacyvhds"))
