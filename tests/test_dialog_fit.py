"""Dialogs at 80x24: however long the body, the buttons stay on screen, the body
scrolls by keys from wherever the focus is, and its border says how much is hidden."""

from __future__ import annotations

from textual.app import App
from textual.containers import Vertical
from textual.widgets import Button

from tests.tui_support import screen_text
from widgets.confirm_dialog import ConfirmDialog

LONG = [f"{i + 1}. step {i + 1}: why it is needed and what it changes, said in words" for i in range(40)]


class DialogApp(App[None]):
    def __init__(self, dialog: ConfirmDialog) -> None:
        super().__init__()
        self.dialog = dialog
        self.answer: bool | None = None

    def on_mount(self) -> None:
        self.push_screen(self.dialog, lambda answer: setattr(self, "answer", answer))


async def test_a_long_destructive_confirm_keeps_its_buttons_on_screen_and_scrolls():
    dialog = ConfirmDialog("Run perform-maintenance on app-prod-ne-02?", LONG, type_name="app-prod-ne-02", action="Run 3 steps")
    app = DialogApp(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        for button_id in ("#confirm-ok", "#confirm-cancel"):
            region = dialog.query_one(button_id, Button).region
            assert region.height > 0 and region.bottom <= 24, (button_id, region)
        shown = screen_text(app)
        assert "Run 3 steps" in shown and "Cancel" in shown
        assert "Type the VM's name (app-prod-ne-02)" in shown
        assert "1. step 1:" in shown and "40. step 40:" not in shown
        assert "more lines (↑↓ PgUp PgDn scroll)" in shown, shown
        # The name box has the focus; the body still scrolls with the keys the hint names.
        await pilot.press("end")  # (the name box's own key: moves its cursor, scrolls nothing)
        for _ in range(6):
            await pilot.press("pagedown")
        await pilot.pause(0.1)
        shown = screen_text(app)
        assert "40. step 40:" in shown and "above" in shown, shown
        await pilot.press(*"app-prod-ne-02", "enter")
        await pilot.pause(0.1)
    assert app.answer is True


async def test_a_wrong_name_said_on_two_lines_keeps_the_buttons_whole_inside_the_frame():
    dialog = ConfirmDialog("Run perform-maintenance on app-prod-ne-02?", LONG, type_name="app-prod-ne-02", action="Run 3 steps")
    app = DialogApp(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press(*"app-prod-ne-01", "enter")
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert "'app-prod-ne-01' does not match" in shown and "Escape to cancel." in shown, shown
        frame = dialog.query_one(Vertical).region
        for button_id in ("#confirm-ok", "#confirm-cancel"):
            region = dialog.query_one(button_id, Button).region
            # All three rows of the button above the frame's bottom border (its lower edge was under it).
            assert region.height == 3 and region.bottom <= frame.bottom - 1, (button_id, region, frame)
    assert app.answer is None


async def test_a_short_confirm_is_not_stretched_and_says_nothing_is_hidden():
    dialog = ConfirmDialog("Restart web-prod-01?", ["1. Restart web-prod-01", "Interrupts service."], action="Run", cancel_first=True)
    app = DialogApp(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "Interrupts service." in shown and "more line" not in shown
        assert dialog.query_one("#confirm-cancel", Button).has_focus
        await pilot.press("enter")
        await pilot.pause(0.1)
    assert app.answer is False
