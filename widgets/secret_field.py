"""A masked field for a secret (a new password, an SSH public key), and the
dialog that asks for one. The value lives only in memory: it is never shown,
never logged, never put in a message's text; the dialog hands it back to the
caller and forgets it."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class SecretField(Input):
    """An Input that always masks what is typed and never shows it back."""

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, password=True, id=id, select_on_focus=False)
        self.cursor_blink = False

    def __repr__(self) -> str:  # the value must not end up in a log or a traceback
        return f"SecretField(id={self.id!r}, {len(self.value)} characters)"


class SecretDialog(ModalScreen[str | None]):
    """Ask for a secret; `check(value)` raises ValueError with one sentence when it is not acceptable.
    With `confirm`, a second masked field takes it again, and the two must match (a new password
    mistyped once, unseen, would lock the account out)."""

    DEFAULT_CSS = """
    SecretDialog { align: center middle; }
    SecretDialog > Vertical { width: 70; max-width: 95%; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    SecretDialog #secret-title { text-style: bold; margin-bottom: 1; }
    SecretDialog #secret-error { color: $text-error; height: auto; }
    SecretDialog #secret-buttons { height: auto; margin-top: 1; }
    SecretDialog Button { margin-right: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="secret.cancel")]

    def __init__(self, title: str, prompt: str, *, check: Callable[[str], str | None] | None = None, placeholder: str = "", confirm: bool = False) -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._check = check
        self._placeholder = placeholder
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="secret-title", markup=False)
            yield Static(self._prompt, id="secret-prompt", markup=False)
            yield SecretField(placeholder=self._placeholder, id="secret")
            if self._confirm:
                yield Static("Type it again:", id="secret-again-prompt", markup=False)
                yield SecretField(placeholder=self._placeholder, id="secret-again")
            yield Static("", id="secret-error", markup=False)
            with Vertical(id="secret-buttons"):
                yield Button("Use it", id="secret-ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#secret", SecretField).focus()

    def _fields(self) -> list[SecretField]:
        return list(self.query(SecretField))

    def _submit(self) -> None:
        field = self.query_one("#secret", SecretField)
        value = field.value
        error = self.query_one("#secret-error", Static)
        if not value:
            error.update("Nothing typed.")
            field.focus()
            return
        if self._check is not None:
            try:
                cleaned = self._check(value)
            except ValueError as exc:
                # The message says what is wrong, never the value.
                error.update(str(exc))
                field.focus()
                return
            value = cleaned if cleaned is not None else value
        if self._confirm:
            again = self.query_one("#secret-again", SecretField)
            if not again.value:
                error.update("")
                again.focus()
                return
            if again.value != field.value:
                for each in self._fields():
                    each.value = ""
                error.update("The two entries differ: type it twice again.")
                field.focus()
                return
        for each in self._fields():
            each.value = ""
        self.dismiss(value)

    @on(Input.Submitted, "#secret")
    def _submitted(self) -> None:
        self._submit()

    @on(Input.Submitted, "#secret-again")
    def _submitted_again(self) -> None:
        self._submit()

    @on(Button.Pressed, "#secret-ok")
    def _pressed(self) -> None:
        self._submit()

    def action_cancel(self) -> None:
        for each in self._fields():
            each.value = ""
        self.dismiss(None)
