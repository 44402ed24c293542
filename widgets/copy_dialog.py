"""Copy: the values on screen, whole and selectable, and sent to the clipboard on request.

A terminal copies through OSC 52 only if it (and tmux, and the SSH client) allow it, and
nothing tells the app whether it did. So the dialog shows each value in full, where the
operator can select it with the mouse, sends one to the clipboard with its number key and
says "sent", never "copied", and writes them all to a file in the export folder on `x`.

A value longer than a line (an ARM id, a portal link) is broken only before a `/` (or after a
space), never inside a name, a GUID or an address, and what is selected in the dialog comes back
in one piece (widgets/folded_text.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from backend.shellcmd import break_token
from widgets.folded_text import FoldedText
from widgets.plain import plain_content
from widgets.scroll_panel import ScrollPanel, fit_in_frame

CopyItem = tuple[str, str]  # (what it is, the value)


def clipboard_caveat() -> str:
    """Where OSC 52 is known to be dropped, said before the operator relies on it."""
    if os.environ.get("TMUX"):
        return "In tmux it reaches the clipboard only with `set -g set-clipboard on` (and a terminal that allows it)."
    return "Your terminal decides whether it arrives (some need OSC 52 allowed in their settings)."


class CopyDialog(ModalScreen[None]):
    DEFAULT_CSS = """
    CopyDialog { align: center middle; }
    CopyDialog > Vertical { width: 78; max-width: 100%; height: auto; max-height: 100%; border: thick $accent; background: $surface; padding: 0 1; }
    CopyDialog #copy-title { text-style: bold; padding: 0 1; }
    CopyDialog #copy-body { height: auto; max-height: 14; padding: 0 1; border-top: solid $panel-lighten-2; }
    CopyDialog #copy-body > Static { width: 1fr; }
    CopyDialog #copy-hint { color: $text-muted; padding: 0 1; }
    CopyDialog #copy-buttons { height: auto; padding: 0 1; }
    CopyDialog Button { margin-right: 1; min-width: 8; }
    """

    ALLOW_SELECT = True

    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="copy.close"),
        Binding("1", "send(0)", "Send 1", show=False, id="copy.send_1"),
        Binding("2", "send(1)", "Send 2", show=False, id="copy.send_2"),
        Binding("3", "send(2)", "Send 3", show=False, id="copy.send_3"),
        Binding("x", "export", "Export", id="copy.export"),
    ]

    def __init__(self, title: str, items: list[CopyItem], *, file_stem: str, write: Callable[[str, str, str], Path | None]) -> None:
        """write: the app's export_text (what, extension, text) -> path or None."""
        super().__init__()
        self._title = title
        self.items = items[:3]
        self.file_stem = file_stem
        self._write = write
        self.sent: list[str] = []  # what was handed to the terminal (tests read it)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="copy-title", markup=False)
            with ScrollPanel(id="copy-body", name="values", reach="tab"):
                yield FoldedText(self._layout, id="copy-values")
            yield Static(
                "Select a value above with the mouse: a drag then ctrl+c sends it in one piece, as its number key does, to the "
                f"clipboard by OSC 52. {clipboard_caveat()} Shift+drag, the terminal's own selection in most terminals, copies it as "
                "shown, a line per piece. x writes them all, whole, to the export folder.",
                id="copy-hint",
                markup=False,
            )
            with Horizontal(id="copy-buttons"):
                for number, (label, _value) in enumerate(self.items, start=1):
                    yield Button(plain_content(f"{number} {label}"), id=f"copy-send-{number}")
                yield Button("x file", id="copy-export")
                yield Button("Close", id="copy-close")

    def _layout(self, width: int) -> tuple[list[Text], set[int]]:
        """Each value under its label; one longer than the line in pieces (soft breaks)."""
        lines: list[Text] = []
        soft: set[int] = set()
        for number, (label, value) in enumerate(self.items, start=1):
            lines.append(Text(f"{number}  {label}", style="bold"))
            for i, piece in enumerate(break_token(value, width)):
                if i:
                    soft.add(len(lines))
                lines.append(Text(piece))
        return lines, soft

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        fit_in_frame(self.query_one("#copy-body", ScrollPanel), self.query_one(Vertical), self.size.height, maximum=14)

    def action_send(self, index: int) -> None:
        if index >= len(self.items):
            return
        label, value = self.items[index]
        self.app.copy_to_clipboard(value)
        self.sent.append(value)
        # "Sent", not "copied": nothing tells the app whether the terminal took it.
        self.notify(f"Sent the {label} to the terminal's clipboard (OSC 52). If it does not paste, select it in this dialog.", timeout=6)

    def action_export(self) -> None:
        text = "".join(f"{label}: {value}\n" for label, value in self.items)
        self._write(self.file_stem, "txt", text)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        if button_id.startswith("copy-send-"):
            self.action_send(int(button_id.rsplit("-", 1)[-1]) - 1)
        elif button_id == "copy-export":
            self.action_export()
        elif button_id == "copy-close":
            self.dismiss(None)
