"""A VM's serial console log: scrollable, searchable, the last boot highlighted.

Drawn through the line API (a ScrollView), so a log of many thousand lines
scrolls as fast as a short one. Lines of the last boot carry a bar in the
margin and a tint; the evidence lines of a diagnosis are marked; search
matches are highlighted and the current one shown reversed. The text itself
says what the colours say (a "▌" bar, a "!" for evidence), so it reads in
monochrome too.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from widgets.component import component_classes
from widgets.scroll_panel import scroll_bindings

GUTTER = 2


class SerialLogView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    SerialLogView { background: $surface; scrollbar-size-vertical: 1; }
    SerialLogView > .serial-log--old { color: $text-muted; }
    SerialLogView > .serial-log--last { color: $text; background: $boost; }
    SerialLogView > .serial-log--bar { color: $accent; }
    SerialLogView > .serial-log--evidence { color: $text-error; text-style: bold; }
    SerialLogView > .serial-log--match { background: $warning 40%; }
    SerialLogView > .serial-log--current { background: $warning; color: $background; text-style: bold; }
    SerialLogView > .serial-log--empty { color: $text-muted; text-style: italic; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes(DEFAULT_CSS)

    BINDINGS: ClassVar[list[BindingType]] = [
        *scroll_bindings("log"),
        Binding("left,h", "scroll_left", "Left", show=False, id="log.left"),
        Binding("right,l", "scroll_right", "Right", show=False, id="log.right"),
    ]

    def __init__(self, *, empty_text: str = "No serial log yet.", **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: list[str] = []
        self.last_start = 0
        self.last_end = 0
        self.evidence: set[int] = set()  # 0-based line indexes
        self.term = ""
        self.matches: list[int] = []
        self.current = -1
        self.empty_text = empty_text
        self._width = 0
        self._follow = False
        self._spans_cache: tuple[str, dict[int, list[tuple[int, int]]]] | None = None

    # --- content ------------------------------------------------------------------------

    def set_log(self, lines: list[str], last_start: int = 0, last_end: int | None = None, evidence: set[int] | None = None, *, follow: bool = True) -> None:
        """Show these lines; `follow` scrolls to where the last boot went wrong (its first evidence line), else to the end."""
        # A log keeps its tabs (backend/safetext): drawn raw, a TAB would jump to the terminal's own
        # tab stop and leave old cells behind, so they are expanded to the 8-column stops here.
        self.lines = [line.expandtabs() if "\t" in line else line for line in lines]
        self._spans_cache = None
        self.last_start = last_start
        self.last_end = len(self.lines) if last_end is None else last_end
        self.evidence = set(evidence or ())
        self._width = max((len(line) for line in self.lines), default=0) + GUTTER
        self.virtual_size = Size(self._width, len(self.lines))
        self._search()
        self.refresh()
        self._follow = follow
        if follow:
            # Now when the widget has a size, again once the page around it is laid out, and on
            # every resize until the operator moves (the verdict above may still change height).
            if self.size.height:
                self.show_where_it_stopped()
            self.call_after_refresh(self.show_where_it_stopped)

    def on_resize(self) -> None:
        if self._follow:
            self.show_where_it_stopped()

    def _stop_following(self) -> None:
        self._follow = False

    # Every key and wheel turn that moves the log stops it following: each of these is the base
    # class's after _stop_following (_stops_following, below the class).
    MOVES: ClassVar[tuple[str, ...]] = (
        "action_scroll_up",
        "action_scroll_down",
        "action_page_up",
        "action_page_down",
        "action_scroll_home",
        "action_scroll_end",
        "_on_mouse_scroll_down",
        "_on_mouse_scroll_up",
    )

    def show_where_it_stopped(self) -> None:
        if self.evidence:
            height = max(1, self.scrollable_content_region.height)
            first = min(self.evidence)
            # The evidence line a third down, the end of the log below it when it fits.
            self.scroll_to(0, max(0, min(first - height // 3, len(self.lines) - height)), animate=False)
        else:
            self.scroll_end(animate=False)

    def set_empty_text(self, text: str) -> None:
        self.empty_text = text
        self.refresh()

    def show_last_boot(self) -> None:
        """Scroll so the last boot's first line is at the top (its end stays reachable below)."""
        self._stop_following()
        self.scroll_to(0, self.last_start, animate=False)

    def scroll_to_line(self, index: int) -> None:
        self._stop_following()
        height = max(1, self.scrollable_content_region.height)
        if not (self.scroll_offset.y <= index < self.scroll_offset.y + height):
            self.scroll_to(self.scroll_offset.x, max(0, index - height // 3), animate=False)

    # --- search ---------------------------------------------------------------------------

    def search(self, term: str) -> int:
        """Highlight every line holding `term` (case-insensitive); go to the first one at or after the view."""
        self.term = term
        self._search()
        if self.matches:
            top = self.scroll_offset.y
            self.current = next((i for i, n in enumerate(self.matches) if n >= top), 0)
            self.scroll_to_line(self.matches[self.current])
        self.refresh()
        return len(self.matches)

    def _search(self) -> None:
        needle = self.term.lower()
        self.matches = [i for i, line in enumerate(self.lines) if needle and needle in line.lower()]
        self.current = 0 if self.matches else -1

    def next_match(self, step: int = 1) -> int | None:
        """Move to the next (step 1) or previous (-1) match; its line index, or None."""
        if not self.matches:
            return None
        self.current = (self.current + step) % len(self.matches)
        self.scroll_to_line(self.matches[self.current])
        self.refresh()
        return self.matches[self.current]

    @property
    def current_line(self) -> int | None:
        return self.matches[self.current] if self.matches and 0 <= self.current < len(self.matches) else None

    # --- drawing ------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """One screen line, built from the visible slice of its log line only.

        A guest decides how long its lines are: padding every line to the longest one and
        cropping afterwards cost 0.4 s per scroll key with one 1 MiB line. Columns here are
        characters (the virtual width is the longest line's length), so the slice is
        ``line[scroll_x - GUTTER : scroll_x - GUTTER + width]`` whatever the line's length;
        a wide character may take two cells, and the strip is cut to the width in cells."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if not self.lines:
            if y == 0:
                style = self.get_component_rich_style("serial-log--empty")
                return Strip([Segment(self.empty_text[:width], style)]).extend_cell_length(width)
            return Strip.blank(width, self.rich_style)
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        line = self.lines[index]
        in_last = self.last_start <= index < self.last_end
        base = self.get_component_rich_style("serial-log--last" if in_last else "serial-log--old")
        if index in self.evidence:
            gutter = Segment("! ", self.get_component_rich_style("serial-log--evidence"))
            text_style = base + self.get_component_rich_style("serial-log--evidence")
        elif in_last:
            gutter = Segment("▌ ", base + self.get_component_rich_style("serial-log--bar"))
            text_style = base
        else:
            gutter = Segment("  ", base)
            text_style = base
        # The gutter's part that is in view, then the line's characters that are.
        segments = [Segment(gutter.text[scroll_x:], gutter.style)] if scroll_x < GUTTER else []
        start = max(0, scroll_x - GUTTER)
        end = start + width - (GUTTER - scroll_x if scroll_x < GUTTER else 0)
        segments += self._highlight(line, index, text_style, start, end)
        return Strip(segments).crop_extend(0, width, base if in_last else self.rich_style)

    def _highlight(self, line: str, index: int, style: Style, start: int = 0, end: int | None = None) -> list[Segment]:
        """``line[start:end]`` as segments, search matches marked (a match cut by the window's edge too)."""
        end = len(line) if end is None else min(end, len(line))
        if start >= end:
            return []
        if not self.term or index not in self._match_set():
            return [Segment(line[start:end], style)]
        mark = self.get_component_rich_style("serial-log--current" if index == self.current_line else "serial-log--match")
        spans = self._spans(index)
        out: list[Segment] = []
        at_char = start
        for span_start, span_end in spans[max(0, bisect.bisect_right(spans, (start, start)) - 1) :]:
            if span_start >= end:
                break
            match_start, match_end = max(span_start, start), min(span_end, end)
            if match_end <= match_start:
                continue
            if match_start > at_char:
                out.append(Segment(line[at_char:match_start], style))
            out.append(Segment(line[match_start:match_end], style + mark))
            at_char = match_end
        if at_char < end:
            out.append(Segment(line[at_char:end], style))
        return out

    def _spans(self, index: int) -> list[tuple[int, int]]:
        """Where the search term is in one line (left to right, not overlapping), found once per term."""
        cache = self._spans_cache
        if cache is None or cache[0] != self.term:
            cache = self._spans_cache = (self.term, {})
        spans = cache[1].get(index)
        if spans is None:
            needle = self.term.lower()
            low = self.lines[index].lower()
            spans = []
            at = low.find(needle)
            while at >= 0:
                spans.append((at, at + len(needle)))
                at = low.find(needle, at + len(needle))
            cache[1][index] = spans
        return spans

    def _match_set(self) -> set[int]:
        cached = getattr(self, "_matches_cache", None)
        if cached is None or cached[0] is not self.matches:
            cached = (self.matches, set(self.matches))
            self._matches_cache = cached
        return cached[1]


def _stops_following(name: str) -> Callable[..., None]:
    """SerialLogView's `name`: the log stops following, then the base class moves it."""

    def move(self: SerialLogView, *event: Any) -> None:
        self._stop_following()
        getattr(super(SerialLogView, self), name)(*event)

    move.__name__ = move.__qualname__ = name
    return move


for _name in SerialLogView.MOVES:
    setattr(SerialLogView, _name, _stops_following(_name))
del _name
