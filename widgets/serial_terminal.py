"""A serial console's screen: the guest's bytes through a VT102 emulator (pyte),
drawn cell by cell as plain text with styles.

The guest's bytes are untrusted (a guest can print any escape sequence). They
never reach the operator's terminal: pyte interprets them into a grid of cells
(a character and its colours; 8-bit C1 controls are shown as ``�``, not obeyed),
and each cell is drawn as a ``Segment`` of plain
text with a Rich ``Style``. A cell whose text is a control, a format character
(bidi, zero-width) or anything not one or two columns wide is drawn as ``�``.
Titles, clipboard writes, hyperlinks and device-status queries that pyte parses
are dropped: nothing is answered or passed on.

Keys go the other way as the bytes an xterm would send (``key_bytes``). The
widget stops every key it turns into bytes, so the app's and the screen's
bindings do not see them; the screen decides what leaves (Ctrl+]).
"""

from __future__ import annotations

import codecs
import unicodedata
from collections import deque
from collections.abc import Iterable

import pyte
from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

SCROLLBACK_LINES = 5000
DECCKM = 1 << 5  # private mode 1 (application cursor keys), as pyte stores private modes
REPLACEMENT = "\ufffd"
# 8-bit C1 controls (U+0080-U+009F) arrive UTF-8 encoded; as VTE does, they are not obeyed but shown
# as U+FFFD: an 8-bit OSC or DCS would otherwise swallow everything the guest prints after it.
_C1_SHOWN = {cp: REPLACEMENT for cp in range(0x80, 0xA0)}
FORBIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

# Keys without a character, as xterm sends them (normal cursor mode; application mode below).
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6, "f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}
_SS3_F = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_MODIFIER = {"shift": 2, "alt": 3, "shift+alt": 4, "ctrl": 5, "shift+ctrl": 6, "ctrl+alt": 7, "shift+ctrl+alt": 8}
_NAMED = {
    "enter": b"\r",
    "tab": b"\t",
    "shift+tab": b"\x1b[Z",
    "backspace": b"\x7f",
    "ctrl+h": b"\x08",
    "escape": b"\x1b",
    "ctrl+space": b"\x00",
    "ctrl+@": b"\x00",
    "ctrl+left_square_bracket": b"\x1b",
    "ctrl+backslash": b"\x1c",
    "ctrl+circumflex_accent": b"\x1e",
    "ctrl+underscore": b"\x1f",
}


def key_bytes(key: str, character: str | None, *, application_cursor: bool = False) -> bytes | None:
    """The bytes a terminal sends for a Textual key, or None for a key that sends nothing."""
    if key in _NAMED:
        return _NAMED[key]
    modifiers, _, base = key.rpartition("+")
    mod = _MODIFIER.get(modifiers) if modifiers else None
    if modifiers and mod is None:
        return None
    if base in _CURSOR:
        if mod:
            return f"\x1b[1;{mod}{_CURSOR[base]}".encode()
        return ("\x1bO" if application_cursor else "\x1b[").encode() + _CURSOR[base].encode()
    if base in _SS3_F:
        return f"\x1b[1;{mod}{_SS3_F[base]}".encode() if mod else f"\x1bO{_SS3_F[base]}".encode()
    if base in _TILDE:
        return f"\x1b[{_TILDE[base]};{mod}~".encode() if mod else f"\x1b[{_TILDE[base]}~".encode()
    if modifiers == "ctrl" and len(base) == 1 and base.isalpha():
        return bytes([ord(base.lower()) - ord("a") + 1])
    if character:
        data = character.encode("utf-8", errors="replace")
        if modifiers == "alt" and not character.startswith("\x1b"):
            return b"\x1b" + data
        return data
    return None


def safe_cell(data: str) -> str:
    """What one cell shows: its text when that is printable and one or two columns wide."""
    if not data:
        return data
    if data.isprintable() and data.isascii():
        return data
    for ch in data:
        if unicodedata.category(ch) in FORBIDDEN:
            return REPLACEMENT
    width = cell_len(data)
    return data if width in (1, 2) else REPLACEMENT


def _colour(name: str) -> Color | None:
    if name == "default":
        return None
    if len(name) == 6:
        try:
            int(name, 16)
        except ValueError:
            return None
        return Color.parse("#" + name)
    if name.startswith("bright"):
        name = "bright_" + name[len("bright") :]
    try:
        return Color.parse(name)
    except Exception:  # a name pyte knows and Rich does not: the default colour
        return None


class GuestScreen(pyte.Screen):
    """pyte's screen with a scrollback of plain text (for search) and nothing answered back."""

    def __init__(self, columns: int, lines: int, scrollback: int = SCROLLBACK_LINES) -> None:
        super().__init__(columns, lines)
        self.scrollback: deque[str] = deque(maxlen=scrollback)

    def line_text(self, y: int) -> str:
        row = self.buffer[y]
        return "".join(safe_cell(row[x].data) for x in range(self.columns)).rstrip()

    def index(self) -> None:
        top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0:
            self.scrollback.append(self.line_text(0))
        super().index()

    def write_process_input(self, data: str) -> None:
        """Device status and attribute reports are not answered: the guest learns nothing from the operator's side."""

    def set_title(self, param: str) -> None:
        """The guest's window title is not shown anywhere."""

    def set_icon_name(self, param: str) -> None:
        """Nor its icon name."""


class SerialTerminal(Widget, can_focus=True):
    """The guest's screen. ``feed`` takes its bytes; keys are posted as ``SerialTerminal.Typed``."""

    # The app gives this widget its own priority keys too (Ctrl+Q goes to the guest, not quit).
    TAKES_EVERY_KEY = True

    DEFAULT_CSS = """
    SerialTerminal { width: 1fr; height: 1fr; background: $background; color: $foreground; }
    """

    class Typed(Message):
        """The operator pressed a key that sends these bytes to the guest."""

        def __init__(self, data: bytes) -> None:
            super().__init__()
            self.data = data

    class Resized(Message):
        """The terminal's size changed (columns, lines)."""

        def __init__(self, columns: int, lines: int) -> None:
            super().__init__()
            self.columns = columns
            self.lines = lines

    def __init__(self, *, columns: int = 80, lines: int = 24, id: str | None = None) -> None:
        super().__init__(id=id)
        self.screen_model = GuestScreen(columns, lines)
        self._stream = pyte.Stream(self.screen_model)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._styles: dict[tuple, Style] = {}
        self.bytes_in = 0

    # --- the guest's side -------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self._stream.feed(self._decoder.decode(data).translate(_C1_SHOWN))
        self.refresh()

    def text(self) -> str:
        """The screen as plain text, one line per row (what the operator reads)."""
        return "\n".join(self.screen_model.line_text(y) for y in range(self.screen_model.lines))

    def scrollback_lines(self) -> list[str]:
        """Every line kept: those scrolled off the top, then the screen."""
        return [*self.screen_model.scrollback, *(self.screen_model.line_text(y) for y in range(self.screen_model.lines))]

    @property
    def application_cursor(self) -> bool:
        return DECCKM in self.screen_model.mode

    # --- size -------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        columns, lines = max(event.size.width, 2), max(event.size.height, 2)
        model = self.screen_model
        if (columns, lines) != (model.columns, model.lines):
            model.resize(lines=lines, columns=columns)
            self.post_message(self.Resized(columns, lines))
        self.refresh()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.screen_model.columns

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.screen_model.lines

    # --- keys -------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        if event.key == "ctrl+right_square_bracket":
            return  # the screen's binding: leave
        data = key_bytes(event.key, event.character, application_cursor=self.application_cursor)
        if data is None:
            return
        event.stop()
        event.prevent_default()
        self.post_message(self.Typed(data))

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text:
            self.post_message(self.Typed(event.text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8", errors="replace")))

    # --- drawing ----------------------------------------------------------------------

    def _style(self, char: pyte.screens.Char, cursor: bool) -> Style:
        key = (char.fg, char.bg, char.bold, char.italics, char.underscore, char.strikethrough, char.reverse != cursor)
        style = self._styles.get(key)
        if style is None:
            style = Style(
                color=_colour(char.fg),
                bgcolor=_colour(char.bg),
                bold=char.bold or None,
                italic=char.italics or None,
                underline=char.underscore or None,
                strike=char.strikethrough or None,
                reverse=(char.reverse != cursor) or None,
            )
            self._styles[key] = style
        return style

    def _segments(self, y: int) -> Iterable[Segment]:
        model = self.screen_model
        row = model.buffer[y]
        cursor_x = model.cursor.x if (y == model.cursor.y and self.has_focus and not model.cursor.hidden) else -1
        base = self.rich_style
        run_text: list[str] = []
        run_style: Style | None = None
        x = 0
        while x < model.columns:
            char = row[x]
            text = safe_cell(char.data)
            if text == "":  # the stub after a wide character
                x += 1
                continue
            if cell_len(text) == 2 and x + 1 >= model.columns:
                text = REPLACEMENT
            style = self._style(char, x == cursor_x)
            if style is not run_style and run_text:
                yield Segment("".join(run_text), base + run_style if run_style else base)
                run_text = []
            run_style = style
            run_text.append(text)
            x += cell_len(text)
        if run_text:
            yield Segment("".join(run_text), base + run_style if run_style else base)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= self.screen_model.lines:
            return Strip.blank(width, self.rich_style)
        return Strip(list(self._segments(y))).adjust_cell_length(width, self.rich_style)
