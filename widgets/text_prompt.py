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
    """Ask for one line; `check(value)` returns the value to use (None: the value as typed) or
    raises ValueError with one sentence, shown under the field. An empty answer is handed back
    as "" (the caller's default); escape cancels (None). `error`: the sentence that refused the
    answer asked again (a check the caller makes after the prompt, e.g. against the inventory)."""

    DEFAULT_CSS = """
    TextPrompt { align: center middle; }
    TextPrompt > Vertical { width: 70; max-width: 95%; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    TextPrompt #prompt-title { text-style: bold; margin-bottom: 1; }
    TextPrompt #prompt-error { color: $text-error; height: auto; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]
    # The ids of the title, the prompt and the line that says why an answer is refused.
    IDS = ("prompt-title", "prompt-text", "prompt-error")

    def __init__(
        self, title: str, prompt: str, *, value: str = "", check: Callable[[str], str | None] | None = None, placeholder: str = "", error: str = ""
    ) -> None:
        super().__init__()
        self._error = error
        self._title = title
        self._prompt = prompt
        self._value = value
        self._check = check
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        title_id, prompt_id, error_id = self.IDS
        with Vertical():
            yield Static(self._title, id=title_id, markup=False)
            yield Static(self._prompt, id=prompt_id, markup=False)
            yield from self.compose_field()
            yield Static(self._error, id=error_id, markup=False)
            yield from self.compose_buttons()

    def compose_field(self) -> ComposeResult:
        field = Input(value=self._value, placeholder=self._placeholder, id="prompt-input", select_on_focus=False)
        field.cursor_blink = False
        yield field

    def compose_buttons(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def say_why_not(self, sentence: str) -> None:
        self.query_one(f"#{self.IDS[2]}", Static).update(sentence)

    def checked(self, value: str) -> str | None:
        """The value to hand back, or None when `check` refused it (its sentence is shown)."""
        if self._check is None:
            return value
        try:
            cleaned = self._check(value)
        except ValueError as exc:
            self.say_why_not(str(exc))  # what is wrong, never the value
            return None
        return value if cleaned is None else cleaned

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self) -> None:
        value: str | None = self.query_one(Input).value.strip()
        if value:
            value = self.checked(value)
            if value is None:
                return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
