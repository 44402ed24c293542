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
from textual.widgets import Button, Input, Static

from widgets.text_prompt import TextPrompt


class SecretField(Input):
    """An Input that always masks what is typed and never shows it back."""

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, password=True, id=id, select_on_focus=False)
        self.cursor_blink = False

    def __repr__(self) -> str:  # the value must not end up in a log or a traceback
        return f"SecretField(id={self.id!r}, {len(self.value)} characters)"


class SecretDialog(TextPrompt):
    """Ask for a secret, in TextPrompt's frame; `check(value)` raises ValueError with one sentence when it is not acceptable.
    With `confirm`, a second masked field takes it again, and the two must match (a new password
    mistyped once, unseen, would lock the account out)."""

    DEFAULT_CSS = """
    SecretDialog #secret-title { text-style: bold; margin-bottom: 1; }
    SecretDialog #secret-error { color: $text-error; height: auto; }
    SecretDialog #secret-buttons { height: auto; margin-top: 1; }
    SecretDialog Button { margin-right: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="secret.cancel")]
    IDS = ("secret-title", "secret-prompt", "secret-error")

    def __init__(self, title: str, prompt: str, *, check: Callable[[str], str | None] | None = None, placeholder: str = "", confirm: bool = False) -> None:
        super().__init__(title, prompt, check=check, placeholder=placeholder)
        self._confirm = confirm

    def compose_field(self) -> ComposeResult:
        yield SecretField(placeholder=self._placeholder, id="secret")
        if self._confirm:
            yield Static("Type it again:", id="secret-again-prompt", markup=False)
            yield SecretField(placeholder=self._placeholder, id="secret-again")

    def compose_buttons(self) -> ComposeResult:
        with Vertical(id="secret-buttons"):
            yield Button("Use it", id="secret-ok", variant="primary")

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
        checked = self.checked(value)  # a refusal says what is wrong, never the value
        if checked is None:
            field.focus()
            return
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
        self.dismiss(checked)

    @on(Input.Submitted, "#secret")
    def _submitted_secret(self) -> None:
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
