"""A one-line question in a dialog (e.g. the source address the NSGs are evaluated for).
What is typed is plain text: shown as typed, checked by the caller's `check`, never markup."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line; `check(value)` returns the value to use or raises ValueError with one sentence.
    An empty answer is handed back as "" (the caller's default); escape cancels (None)."""

    DEFAULT_CSS = """
    TextPrompt { align: center middle; }
    TextPrompt > Vertical { width: 70; max-width: 95%; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    TextPrompt #prompt-title { text-style: bold; margin-bottom: 1; }
    TextPrompt #prompt-error { color: $text-error; height: auto; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, prompt: str, *, value: str = "", check: Callable[[str], str] | None = None, placeholder: str = "") -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._value = value
        self._check = check
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="prompt-title", markup=False)
            yield Static(self._prompt, id="prompt-text", markup=False)
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input", select_on_focus=False)
            yield Static("", id="prompt-error", markup=False)

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False
        field.focus()

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self) -> None:
        value = self.query_one(Input).value.strip()
        if value and self._check is not None:
            try:
                value = self._check(value)
            except ValueError as exc:
                self.query_one("#prompt-error", Static).update(str(exc))
                return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
