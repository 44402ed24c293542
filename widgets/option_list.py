"""A list of choices (the Recovery pane's scenarios and options) that moves with the
same keys as every table: up/down or k/j, home/end or g/G, PgUp/PgDn, enter."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import OptionList

from widgets.scroll_panel import move_bindings


class ChoiceList(OptionList):
    BINDINGS = [
        *move_bindings("list", up="cursor_up", down="cursor_down", first="first", last="last", page_up="page_up", page_down="page_down"),
        Binding("enter", "select", "Open", id="list.select"),
    ]

    # Unavailable choices (disabled: their reason is in the line) sit at the end of the scenario
    # list and cannot be highlighted; G/End and PgDn still bring them into view.

    def action_last(self) -> None:
        super().action_last()
        self.scroll_end(animate=False)

    def action_page_down(self) -> None:
        before = self.highlighted
        super().action_page_down()
        if self.highlighted == before:
            self.scroll_page_down(animate=False)
