"""Confirming a recovery before it changes anything.

A plan with destructive steps is confirmed by typing the VM's name (as
`--confirm VM_NAME` does headless); any other plan with a plain yes. The
dialog lists what will change and the warnings, so the decision is made
with them on screen."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from widgets.plain import plain_content


class ConfirmDialog(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical { width: 76; max-width: 96%; height: auto; max-height: 90%; border: thick $warning; background: $surface; padding: 0 1; }
    ConfirmDialog #confirm-title { text-style: bold; padding: 0 1; }
    ConfirmDialog #confirm-body { height: auto; max-height: 14; padding: 0 1; }
    ConfirmDialog #confirm-name { margin: 0 1; }
    ConfirmDialog #confirm-hint { color: $text-muted; padding: 0 1; }
    ConfirmDialog #confirm-buttons { height: auto; padding: 0 1; }
    ConfirmDialog Button { margin-right: 2; min-width: 10; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, title: str, lines: list[str], *, type_name: str | None = None, action: str = "Run", cancel_first: bool = False) -> None:
        """cancel_first: Cancel has the focus, so an Enter pressed out of habit changes nothing."""
        super().__init__()
        self._title = title
        self._lines = lines
        self.type_name = type_name
        self._action = action
        self._cancel_first = cancel_first

    def compose(self) -> ComposeResult:
        with Vertical():
            # Plain text, never markup: step titles carry [brackets] and VM names anything.
            yield Static(self._title, id="confirm-title", markup=False)
            with VerticalScroll(id="confirm-body"):
                yield Static("\n".join(self._lines), id="confirm-lines", markup=False)
            if self.type_name:
                yield Static(f"Type the VM's name ({self.type_name}) to allow the destructive steps:", id="confirm-hint", markup=False)
                yield Input(placeholder=self.type_name, id="confirm-name", select_on_focus=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(plain_content(self._action), id="confirm-ok", variant="error" if self.type_name else "primary", disabled=bool(self.type_name))
                yield Button("Cancel", id="confirm-cancel")

    def on_mount(self) -> None:
        if self.type_name:
            box = self.query_one("#confirm-name", Input)
            box.cursor_blink = False
            box.focus()
        else:
            self.query_one("#confirm-cancel" if self._cancel_first else "#confirm-ok", Button).focus()

    @property
    def typed_ok(self) -> bool:
        if not self.type_name:
            return True
        return self.query_one("#confirm-name", Input).value.strip() == self.type_name

    @on(Input.Changed, "#confirm-name")
    def _typed(self) -> None:
        self.query_one("#confirm-ok", Button).disabled = not self.typed_ok

    @on(Input.Submitted, "#confirm-name")
    def _submitted(self) -> None:
        if self.typed_ok:
            self.dismiss(True)
            return
        typed = self.query_one("#confirm-name", Input).value.strip()
        hint = self.query_one("#confirm-hint", Static)
        if typed:
            hint.update(f"{typed!r} does not match: type the VM's name exactly ({self.type_name}), or Escape to cancel.")
        else:
            hint.update(f"Type the VM's name ({self.type_name}) to allow the destructive steps, or Escape to cancel.")

    @on(Button.Pressed, "#confirm-ok")
    def _ok(self) -> None:
        if self.typed_ok:
            self.dismiss(True)

    @on(Button.Pressed, "#confirm-cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
