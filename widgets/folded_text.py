"""Text laid out for the width it has, so that ids, addresses and commands are never cut
mid-token: Textual's own wrap cuts a word longer than the line at whatever character
reaches the edge (an ARM id, a GUID, a command split in two).

`FoldedText` lays out its lines itself each time its width changes, with a layout function
that returns the lines (each at most that wide) and which of them only continue the one
before it (a soft break). Text selected in the app (a mouse drag) comes back without the
soft breaks: a value broken to fit is copied in one piece."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual import events
from textual.selection import Selection
from textual.widgets import Static

# (width) -> the lines as Text, and the indexes of the lines that continue the one before them
Layout = Callable[[int], tuple[list[Text], set[int]]]


class FoldedText(Static):
    DEFAULT_CSS = "FoldedText { height: auto; }"

    def __init__(self, layout: Layout, *, id: str | None = None, first_width: int = 68) -> None:
        """first_width: the width laid out for before the widget knows its own (an 80-column dialog's)."""
        self._layout = layout
        self._width = 0
        self._lines: list[str] = []
        self._soft: set[int] = set()
        super().__init__(self._laid_out(first_width), id=id, markup=False)

    def _laid_out(self, width: int) -> Text:
        self._width = width
        lines, self._soft = self._layout(max(8, width))
        self._lines = [line.plain for line in lines]
        return Text("\n").join(lines)

    @property
    def lines(self) -> list[str]:
        """The lines as shown (tests read them)."""
        return list(self._lines)

    def on_resize(self, event: events.Resize) -> None:
        if self.size.width and self.size.width != self._width:
            self.update(self._laid_out(self.size.width))

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        lines = self._lines
        if not lines:
            return None
        start_y, start_x = (selection.start.y, selection.start.x) if selection.start is not None else (0, 0)
        end_y, end_x = (selection.end.y, selection.end.x) if selection.end is not None else (len(lines) - 1, len(lines[-1]))
        end_y = min(end_y, len(lines) - 1)
        out: list[str] = []
        for y in range(start_y, end_y + 1):
            if y > start_y and y not in self._soft:
                out.append("\n")
            out.append(lines[y][start_x if y == start_y else 0 : end_x if y == end_y else len(lines[y])])
        return "".join(out), "\n"


def plain_layout(fold: Callable[[int], str]) -> Layout:
    """A layout of plain lines with no soft breaks (every break is one the reader keeps, as a
    command's continuation is)."""

    def layout(width: int) -> tuple[list[Text], set[int]]:
        return [Text(line) for line in fold(width).split("\n")], set()

    return layout


class FoldedLines:
    """A Rich renderable of lines laid out by `fold` for the width Rich gives it: commands inside
    a larger page (the boot log's repair commands) fold as FoldedText's do."""

    def __init__(self, text: str, fold: Callable[[str, int], str], style: str = "") -> None:
        self.text, self.fold, self.style = text, fold, style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.fold(self.text, max(8, options.max_width)).split("\n"):
            yield Text(line, style=self.style, no_wrap=True, overflow="crop")
