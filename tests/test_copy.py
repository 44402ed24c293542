"""Copy: the values whole and selectable on screen, sent by OSC 52 on request (said as
"sent", never "copied": nothing tells the app whether the terminal took it), and written
to the export folder on x."""

from __future__ import annotations

import os
from pathlib import Path

from tests.tui_support import make_app, screen_text, wait_for, wait_loaded
from widgets.copy_dialog import CopyDialog
from widgets.folded_text import FoldedText


def piece_runs(lines: list[str], label: str, next_label: str | None) -> list[str]:
    """The lines a value takes in the copy dialog: those between its label and the next one."""
    start = lines.index(label) + 1
    end = lines.index(next_label) if next_label else len(lines)
    return lines[start:end]


def split_before_slashes(value: str, pieces: list[str]) -> None:
    """The pieces a value must be shown in if it is broken only before a '/': each piece but the
    first starts with '/', and together they are the value (so the check fails on a cut name)."""
    assert "".join(pieces) == value, pieces
    assert len(pieces) > 1 and all(p.startswith("/") for p in pieces[1:]), pieces


async def test_c_in_the_vm_detail_shows_sends_and_writes_the_id_and_portal_link(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        vm = app.inventory.vm_by_name("erp-prod-eus-01")[0]
        app.screen.set_filter("erp-prod-eus-01")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CopyDialog), what="the copy dialog")
        dialog = app.screen
        shown = screen_text(app).replace("\n", "")
        # Whole, not ellipsized: the id and the link can be selected as they are.
        assert vm.name in shown and "resource id" in shown and "portal link" in shown
        box = dialog.query_one("#copy-values", FoldedText)
        # Longer than a line, each is broken only before a '/': no name or GUID is cut.
        split_before_slashes(vm.id, piece_runs(box.lines, "1  resource id", "2  portal link"))
        link = piece_runs(box.lines, "2  portal link", None)
        assert "".join(link) == vm.portal_url and all(p[:1] in "/#?&" for p in link[1:]), link
        assert all(len(line) <= box.size.width for line in box.lines), (box.size.width, box.lines)
        # A drag over the values and ctrl+c copies each in one piece (the breaks were only for the screen).
        await pilot.mouse_down(box, offset=(0, 0))
        await pilot.hover(box, offset=(box.size.width - 1, len(box.lines) - 1))
        await pilot.mouse_up(box, offset=(box.size.width - 1, len(box.lines) - 1))
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard.split("\n") == ["1  resource id", vm.id, "2  portal link", vm.portal_url], app.clipboard
        assert "Close" in shown
        await pilot.press("2")
        await pilot.pause()
        assert dialog.sent == [vm.portal_url]
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith("Sent the portal link to the terminal's clipboard (OSC 52)") for m in messages), messages
        assert not any("copied" in m.lower() for m in messages), messages
        await pilot.press("x")
        exports = Path(os.environ["XDG_DATA_HOME"]) / "aztriage" / "exports"
        await wait_for(pilot, lambda: any(exports.glob("vm-erp-prod-eus-01-ids-*.txt")), what="the file")
        text = next(exports.glob("vm-erp-prod-eus-01-ids-*.txt")).read_text()
        assert f"resource id: {vm.id}\n" in text and f"portal link: {vm.portal_url}\n" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CopyDialog)
