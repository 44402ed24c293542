"""Copy: the values whole and selectable on screen, sent by OSC 52 on request (said as
"sent", never "copied": nothing tells the app whether the terminal took it), and written
to the export folder on x."""

from __future__ import annotations

import os
from pathlib import Path

from tests.tui_support import make_app, renderable_text, screen_text, wait_for, wait_loaded
from widgets.copy_dialog import CopyDialog


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
        values = renderable_text(dialog.query_one("#copy-values").content, width=400)
        assert vm.id in values and vm.portal_url in values
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
