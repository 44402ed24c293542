"""Confirming a recovery before it changes anything.

A plan with destructive steps is confirmed by typing the VM's name (as
`--confirm VM_NAME` does headless); any other plan with a plain yes. The
dialog lists what will change and the warnings, so the decision is made
with them on screen."""

from __future__ import annotations

from collections.abc import Callable

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from widgets.folded_text import FoldedText, plain_layout
from widgets.plain import plain_content
from widgets.scroll_panel import ScrollPanel, fit_in_frame


class _Hint(Static):
    """The line above the name box. When what it says takes another line, the dialog fits its
    body again once the hint has its new size (before that, the frame pushed the buttons'
    bottom edge under its border)."""

    class Resized(Message):
        pass

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.Resized())


class ConfirmDialog(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical { width: 76; max-width: 100%; height: auto; max-height: 100%; border: thick $warning; background: $surface; padding: 0 1; }
    ConfirmDialog #confirm-title { text-style: bold; padding: 0 1; }
    ConfirmDialog #confirm-body { height: auto; padding: 0 1; border-top: solid $panel-lighten-2; }
    ConfirmDialog #confirm-name { margin: 0 1; }
    ConfirmDialog #confirm-hint { color: $text-muted; padding: 0 1; }
    ConfirmDialog #confirm-buttons { height: auto; padding: 0 1; }
    ConfirmDialog Button { margin-right: 2; min-width: 10; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        # The body scrolls wherever the focus is (the name box and the buttons do not use these keys).
        Binding("up", "scroll_body('scroll_up')", "Up", show=False, id="confirm.scroll_up"),
        Binding("down", "scroll_body('scroll_down')", "Down", show=False, id="confirm.scroll_down"),
        Binding("pageup", "scroll_body('page_up')", "Page up", show=False, id="confirm.page_up"),
        Binding("pagedown", "scroll_body('page_down')", "Page down", show=False, id="confirm.page_down"),
    ]
    # Lines the dialog keeps around its body when the screen is short: the frame never pushes the buttons out.
    MIN_BODY_LINES = 3

    def __init__(
        self,
        title: str,
        lines: list[str],
        *,
        type_name: str | None = None,
        action: str = "Run",
        cancel_first: bool = False,
        typed_what: str | None = None,
        fold: Callable[[str, int], str] | None = None,
    ) -> None:
        """cancel_first: Cancel has the focus, so an Enter pressed out of habit changes nothing.
        typed_what: what the text to type is and what it allows (default: the VM's name, for destructive steps).
        fold: lays the body out for a width (text, width) -> text, where it holds commands the
        operator copies (backend.shellcmd.fold_text), instead of Textual's wrap."""
        super().__init__()
        self._fold = fold
        self._typed_what = typed_what
        self._title = title
        self._lines = lines
        self.type_name = type_name
        self._action = action
        self._cancel_first = cancel_first

    def compose(self) -> ComposeResult:
        with Vertical():
            # Plain text, never markup: step titles carry [brackets] and VM names anything.
            yield Static(self._title, id="confirm-title", markup=False)
            with ScrollPanel(id="confirm-body", name="more", reach=None):
                if self._fold is not None:
                    fold, text = self._fold, "\n".join(self._lines)
                    yield FoldedText(plain_layout(lambda width: fold(text, width)), id="confirm-lines")
                else:
                    yield Static("\n".join(self._lines), id="confirm-lines", markup=False)
            if self.type_name:
                yield _Hint(f"Type {self._what} to {self._allows}:", id="confirm-hint", markup=False)
                yield Input(placeholder=self.type_name, id="confirm-name", select_on_focus=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(plain_content(self._action), id="confirm-ok", variant="error" if self.type_name else "primary", disabled=bool(self.type_name))
                yield Button("Cancel", id="confirm-cancel")

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._fit)

    @on(_Hint.Resized)
    def _hint_resized(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The body takes what the screen leaves after the title, the name box and the buttons."""
        fit_in_frame(self.query_one("#confirm-body", ScrollPanel), self.query_one(Vertical), self.size.height, self.MIN_BODY_LINES)

    def action_scroll_body(self, how: str) -> None:
        getattr(self.query_one("#confirm-body", ScrollPanel), f"action_{how}")()

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
            hint.update(f"{typed!r} does not match: type {self._what} exactly, or Escape to cancel.")
        else:
            hint.update(f"Type {self._what} to {self._allows}, or Escape to cancel.")

    @property
    def _what(self) -> str:
        return f"'{self.type_name}'" if self._typed_what else f"the VM's name ({self.type_name})"

    @property
    def _allows(self) -> str:
        return self._typed_what or "allow the destructive steps"

    @on(Button.Pressed, "#confirm-ok")
    def _ok(self) -> None:
        if self.typed_ok:
            self.dismiss(True)

    @on(Button.Pressed, "#confirm-cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
