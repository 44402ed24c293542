"""A table that draws only the rows on screen.

Textual's DataTable measures every cell of every row it is given, which for
10,000 VMs takes seconds and blocks the event loop. This widget keeps plain
row data (the text of each cell, a tone, sort keys and a search string),
keeps a filtered and sorted list of row keys, and renders the visible window
through the line API (a ScrollView, as Toolong does). Updating rows by key,
filtering and sorting cost a pass over Python lists, not a relayout.

Tones give colour (component classes in fast_table.tcss); the text itself
carries the meaning (upper case, markers) so the table reads in monochrome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backend.turns import Turns
from widgets.component import component_classes
from widgets.scroll_panel import move_bindings

TONES = ("ok", "warn", "bad", "muted", "accent")
RELEASE_PER_TURN = 1000  # replaced rows freed per turn of the event loop (see FastTable._release)
MANY_ROWS = 2000  # above this, screens make their rows in slices


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    min_width: int = 3
    max_width: int = 32
    shrink: bool = False  # may be cut (with an ellipsis) when the table is wider than the screen
    align_right: bool = False
    priority: int = 0  # when the screen is too narrow, the highest numbers are hidden first


@dataclass(frozen=True, slots=True)
class Row:
    """One row as drawn: cell texts and tones, plus what filtering and sorting need."""

    key: Hashable
    cells: tuple[str, ...]
    tones: tuple[str | None, ...]
    sort_keys: tuple[Any, ...]
    haystack: str  # lower-case text the filter searches
    item: Any = None  # the domain object behind the row


def matches(haystack: str, terms: Sequence[str]) -> bool:
    return all(term in haystack for term in terms)


class TableMessage(Message):
    """A message from a FastTable about itself (its ``control``)."""

    def __init__(self, table: FastTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> FastTable:
        return self.table


class RowMessage(TableMessage):
    """A message from a FastTable about one of its rows (or none): its key and item."""

    def __init__(self, table: FastTable, key: Hashable | None, item: Any) -> None:
        super().__init__(table)
        self.key = key
        self.item = item


class FastTable(ScrollView, can_focus=True):
    """A virtual table: rows by key, filter, sort, cursor; only visible lines are drawn."""

    DEFAULT_CSS = """
    FastTable { background: $surface; scrollbar-size-vertical: 1; }
    FastTable > .fast-table--header { text-style: bold; color: $text; background: $panel; }
    FastTable > .fast-table--header-sorted { text-style: bold underline; color: $accent; background: $panel; }
    FastTable > .fast-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
    FastTable > .fast-table--cursor-blurred { background: $block-cursor-blurred-background; }
    FastTable > .fast-table--ok { color: $text-success; }
    FastTable > .fast-table--warn { color: $text-warning; }
    FastTable > .fast-table--bad { color: $text-error; text-style: bold; }
    FastTable > .fast-table--muted { color: $text-muted; }
    FastTable > .fast-table--accent { color: $text-accent; }
    FastTable > .fast-table--empty { color: $text-muted; text-style: italic; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes(DEFAULT_CSS)

    BINDINGS: ClassVar[list[BindingType]] = [
        *move_bindings("table", up="cursor(-1)", down="cursor(1)", page_up="page(-1)", page_down="page(1)", first="jump(0)", last="jump(-1)"),
        Binding("enter", "select", "Open", id="table.select"),
        Binding("s", "sort_next", "Sort", id="table.sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False, id="table.sort_reverse"),
    ]

    class CursorMoved(RowMessage):
        """The cursor is on another row (or on none)."""

    class Selected(RowMessage):
        """Enter (or a double click) on a row."""

    class SortChanged(TableMessage):
        """The rows are sorted by another column or the other way."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        fixed_columns: int = 1,
        sort_column: str | None = None,
        sort_reverse: bool = False,
        empty_text: str = "Nothing to show.",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: tuple[Column, ...] = tuple(columns)
        self._align_right = tuple(c.align_right for c in self.columns)
        self._column_index = {c.key: i for i, c in enumerate(self.columns)}
        self.fixed_columns = fixed_columns
        self._rows: dict[Hashable, Row] = {}
        self._to_release: list[dict[Hashable, Row]] = []
        self._order: list[Hashable] = []
        self._position_cache: dict[Hashable, int] | None = None
        self._sorted_all: list[Hashable] | None = None  # every key in sort order (cached)
        self._last_filter: tuple[tuple[str, ...], list[Hashable]] = ((), [])
        self._line_cache: dict[tuple, Strip] = {}
        self._styles: dict[str, dict[str | None, Style]] = {}
        self._content_widths: list[int] = [len(c.label) + 2 for c in self.columns]
        self._widths: list[int] = list(self._content_widths)
        self._fitted_for = -1
        self.hidden_columns: tuple[str, ...] = ()
        self._cursor = 0
        self._cursor_key: Hashable | None = None
        # Until the operator (or a pane, for them) puts the cursor on a row, it stays on the
        # top row: a table that fills in or re-sorts keeps showing the worst VM first instead
        # of following whichever row happened to be first in a partial load.
        self._cursor_placed = False
        self._filter_terms: tuple[str, ...] = ()
        self.filter_text = ""
        self.sort_column = sort_column
        self.sort_reverse = sort_reverse
        self.empty_text = empty_text

    # --- data ------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """Rows shown (after the filter)."""
        return len(self._order)

    @property
    def total_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_key(self) -> Hashable | None:
        return self._order[self._cursor] if self._order else None

    @property
    def cursor_item(self) -> Any:
        key = self.cursor_key
        return self._rows[key].item if key is not None else None

    def visible_keys(self) -> list[Hashable]:
        return list(self._order)

    def visible_rows(self) -> list[Row]:
        return [self._rows[k] for k in self._order]

    def get_row(self, key: Hashable) -> Row | None:
        return self._rows.get(key)

    def set_rows(self, rows: Iterable[Row]) -> int:
        """Replace the table's rows by key: unchanged rows stay, the cursor stays on its row.

        Returns how many rows were added, changed or removed."""
        new: dict[Hashable, Row] = {}
        changed = 0
        old = self._rows
        for row in rows:
            new[row.key] = row
            prev = old.get(row.key)
            if prev is None or prev.cells != row.cells or prev.tones != row.tones:
                changed += 1
        changed += sum(1 for key in old if key not in new)
        self._rows = new
        if changed or len(new) != len(old):
            self._measure()
            self._sorted_all = None
            self._line_cache.clear()
        self._reorder()
        self._release(old)
        return changed

    def release_rows(self) -> bool:
        """Let go of every row while the table is not shown (a pane the operator left, on a
        large estate): the cursor's row, the filter and the sort are kept, and the next
        set_rows() puts the cursor back on its row. True if there were rows to let go."""
        if not self._rows:
            return False
        key = self._cursor_key
        old = self._rows
        self._rows = {}
        self._order = []
        self._position_cache = None
        self._sorted_all = None
        self._last_filter = ((), [])
        self._line_cache.clear()
        self._release(old)
        self._cursor_key = key
        return True

    async def set_rows_in_slices(self, rows: Iterable[Row]) -> int:
        """set_rows() for many rows from a worker: the rows are made a few milliseconds at a
        time (backend.turns), the event loop runs between (10,000 rows take a few hundred ms
        of Python)."""
        made: list[Row] = []
        turns = Turns()
        for row in rows:
            made.append(row)
            if turns.due():
                await turns.next()
        return self.set_rows(made)

    def _release(self, rows: dict[Hashable, Row]) -> None:
        """Let go of replaced rows a slice per turn of the event loop: freeing 10,000 rows
        at once, and the inventory only they still hold, takes tens of milliseconds.
        (asyncio's call_soon, not call_later: Textual runs queued callbacks back to back.)"""
        if len(rows) <= RELEASE_PER_TURN or not self.is_mounted:
            return
        self._to_release.append(rows)
        if len(self._to_release) == 1:
            asyncio.get_running_loop().call_soon(self._release_some)

    def _release_some(self) -> None:
        rows = self._to_release[0]
        for _ in range(min(RELEASE_PER_TURN, len(rows))):
            rows.popitem()
        if not rows:
            self._to_release.pop(0)
        if self._to_release:
            asyncio.get_running_loop().call_soon(self._release_some)

    def _measure(self) -> None:
        widths = [len(c.label) + 2 for c in self.columns]  # room for the sort arrow
        for row in self._rows.values():
            for i, text in enumerate(row.cells):
                n = len(text)
                if n > widths[i]:
                    widths[i] = n
        self._content_widths = [min(max(w, c.min_width), max(c.max_width, c.min_width)) for w, c in zip(widths, self.columns)]
        self._fitted_for = -1

    def set_filter(self, text: str) -> None:
        """Show only rows whose search text holds every word of `text` (case-insensitive)."""
        text = text.strip()
        if text == self.filter_text:
            return
        self.filter_text = text
        self._filter_terms = tuple(text.lower().split())
        self._reorder()

    def sort_by(self, column: str | None, reverse: bool | None = None) -> None:
        if column is not None and column not in self._column_index:
            raise ValueError(f"no column {column!r}")
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        self._sorted_all = None
        self._reorder()
        self.post_message(self.SortChanged(self))

    def _sorted_keys(self) -> list[Hashable]:
        if self._sorted_all is None:
            rows = self._rows
            keys = list(rows)
            if self.sort_column is not None:
                i = self._column_index[self.sort_column]
                keys.sort(key=lambda k: rows[k].sort_keys[i], reverse=self.sort_reverse)
            self._sorted_all = keys
            self._last_filter = ((), keys)
        return self._sorted_all

    def _filtered(self, terms: tuple[str, ...]) -> list[Hashable]:
        """Keys matching every term, in sort order. Typing more narrows the last result
        instead of scanning every row again."""
        everything = self._sorted_keys()
        if not terms:
            return everything
        last_terms, last_keys = self._last_filter
        narrower = bool(last_terms) and all(any(old in new for new in terms) for old in last_terms)
        source = last_keys if narrower else everything
        rows = self._rows
        if len(terms) == 1:
            term = terms[0]
            keys = [k for k in source if term in rows[k].haystack]
        else:
            keys = [k for k in source if matches(rows[k].haystack, terms)]
        self._last_filter = (terms, keys)
        return keys

    @property
    def _position(self) -> dict[Hashable, int]:
        if self._position_cache is None:
            self._position_cache = {k: n for n, k in enumerate(self._order)}
        return self._position_cache

    def _reorder(self) -> None:
        previous = self._cursor_key
        remembered = previous if self._cursor_placed else None
        keys = self._filtered(self._filter_terms)
        self._order = keys
        self._position_cache = None
        index = -1
        if remembered is not None:
            # The row under the cursor is usually still near where it was.
            near = self._cursor
            if near < len(keys) and keys[near] == remembered:
                index = near
            elif remembered in self._rows:
                try:
                    index = keys.index(remembered)
                except ValueError:
                    index = -1
        self._cursor = index if index >= 0 else min(self._cursor, max(0, len(keys) - 1))
        self._update_virtual_size()
        self._scroll_cursor_into_view()
        self.refresh()
        self._cursor_changed(force=previous != self.cursor_key)

    # --- cursor ----------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self._order:
            return
        self._cursor_placed = True
        row = max(0, min(row, len(self._order) - 1))
        if row == self._cursor and self._cursor_key == self._order[row]:
            return
        old = self._cursor
        self._cursor = row
        self._refresh_row(old)
        self._refresh_row(row)
        self._scroll_cursor_into_view()
        self._cursor_changed(force=True)

    def move_cursor_to_key(self, key: Hashable) -> bool:
        position = self._position.get(key)
        if position is None:
            return False
        self.move_cursor(position)
        return True

    def _cursor_changed(self, force: bool) -> None:
        key = self.cursor_key
        self._cursor_key = key
        if force:
            self.post_message(self.CursorMoved(self, key, self.cursor_item))

    def _refresh_row(self, row: int) -> None:
        y = row - int(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    @property
    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        if not self._order:
            self.scroll_to(y=0, animate=False, immediate=True)
            return
        top = int(self.scroll_y)
        page = self._page_height
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + page:
            self.scroll_to(y=self._cursor - page + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        page = self._page_height
        self.move_cursor(self._cursor + direction * page)

    def action_jump(self, row: int) -> None:
        self.move_cursor(len(self._order) - 1 if row < 0 else row)

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.Selected(self, key, self._rows[key].item))

    def action_sort_next(self) -> None:
        keys = [c.key for c in self.columns if c.label.strip()]
        if self.sort_column in keys:
            nxt = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        else:
            nxt = keys[0]
        self.sort_by(nxt, reverse=False)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column or self.columns[0].key, reverse=not self.sort_reverse)

    # --- geometry ----------------------------------------------------------------------

    def _fit(self, width: int) -> None:
        """Column widths for this screen width: hide the least important columns, then
        shrink the shrinkable ones; scroll sideways only when that is not enough."""
        if width == self._fitted_for:
            return
        self._fitted_for = width
        widths = list(self._content_widths)
        shown = [True] * len(widths)
        # The narrowest each column may get: shrinkable ones down to their minimum.
        least = [min(w, c.min_width) if c.shrink else w for w, c in zip(widths, self.columns)]

        def total(values: list[int]) -> int:
            return sum(w + 1 for w, s in zip(values, shown) if s) + 1

        by_importance = sorted(range(len(widths)), key=lambda i: (-self.columns[i].priority, -i))
        for i in by_importance:
            if total(least) <= width or self.columns[i].priority == 0:
                break
            shown[i] = False
        excess = total(widths) - width
        shrinkable = [i for i, c in enumerate(self.columns) if c.shrink and shown[i]]
        while excess > 0 and shrinkable:
            i = max(shrinkable, key=lambda n: widths[n] - self.columns[n].min_width)
            if widths[i] <= self.columns[i].min_width:
                break
            widths[i] -= 1
            excess -= 1
        self._widths = [w if s else 0 for w, s in zip(widths, shown)]
        self._line_cache.clear()
        self.hidden_columns = tuple(c.key for c, s in zip(self.columns, shown) if not s)

    def _update_virtual_size(self) -> None:
        self._fit(self.scrollable_content_region.width or self.size.width)
        width = sum(w + 1 for w in self._widths if w) + 1
        self.virtual_size = Size(width, len(self._order) + 1)

    def refit(self) -> None:
        """Fit the columns to the table's width again (rows set before the table had a size
        were fitted to none)."""
        self._fitted_for = -1
        self._update_virtual_size()
        self._line_cache.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._fitted_for = -1
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def _on_focus(self, event: events.Focus) -> None:
        self._refresh_row(self._cursor)

    def _on_blur(self, event: events.Blur) -> None:
        self._refresh_row(self._cursor)

    # --- drawing ---------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._line_cache.clear()

    def _line_styles(self, kind: str) -> dict[str | None, Style]:
        """Full styles of each tone for one kind of line (row, cursor, header), cached."""
        styles = self._styles.get(kind)
        if styles is None:
            base = self.rich_style
            if kind == "header":
                line = base + self.get_component_rich_style("fast-table--header")
                styles = {None: line, "sorted": base + self.get_component_rich_style("fast-table--header-sorted")}
            else:
                line = base
                if kind == "cursor":
                    line = base + self.get_component_rich_style("fast-table--cursor")
                elif kind == "cursor-blurred":
                    line = base + self.get_component_rich_style("fast-table--cursor-blurred")
                styles = {None: line}
                for tone in TONES:
                    tone_style = self.get_component_rich_style(f"fast-table--{tone}", partial=True)
                    if kind == "cursor":
                        # On the cursor bar keep the bar's colours; bold still marks a bad state.
                        tone_style = Style(bold=tone_style.bold)
                    styles[tone] = line + tone_style
            styles["empty"] = base + self.get_component_rich_style("fast-table--empty")
            self._styles[kind] = styles
        return styles

    def _render_cells(self, texts: Sequence[str], tones: Sequence[str | None], styles: dict[str | None, Style]) -> Strip:
        width = self.scrollable_content_region.width or self.size.width
        scroll_x = int(self.scroll_x)
        fixed: list[Segment] = []
        rest: list[Segment] = []
        used = 0
        align_right = self._align_right
        for i, w in enumerate(self._widths):
            if not w:
                continue
            text = texts[i]
            if not text.isprintable():  # prose (a summary) keeps its tabs and newlines: a cell is one line
                text = text.translate(_ONE_LINE)
            if text.isascii():
                if len(text) > w:
                    text = text[: w - 1] + "…"
                elif align_right[i]:
                    text = text.rjust(w)
                else:
                    text = text.ljust(w)
            elif cell_len(text) > w:
                text = set_cell_size(text, max(0, w - 1)) + "…"
            else:
                text = set_cell_size(text, w) if not align_right[i] else " " * (w - cell_len(text)) + text
            (fixed if i < self.fixed_columns else rest).append(Segment(" " + text, styles.get(tones[i], styles[None])))
            used += w + 1
        line_style = styles[None]
        if scroll_x == 0 and used < width:
            segments = fixed + rest
            segments.append(Segment(" " * (width - used), line_style))
            return Strip(segments, width)
        head = Strip(fixed)
        room = max(0, width - head.cell_length)
        tail = Strip(rest).crop_extend(scroll_x, scroll_x + room, line_style)
        return Strip.join([head, tail]).adjust_cell_length(width, line_style)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width or self.size.width
        if y == 0:
            return self._render_header()
        index = int(self.scroll_y) + y - 1
        if not self._order or index >= len(self._order):
            styles = self._line_styles("row")
            if not self._order and y == 1:
                return Strip([Segment(" " + self.empty_text, styles["empty"])]).adjust_cell_length(width, styles[None])
            return Strip.blank(width, styles[None])
        key = self._order[index]
        kind = "row" if index != self._cursor else ("cursor" if self.has_focus else "cursor-blurred")
        cache_key = (key, kind, width, int(self.scroll_x))
        strip = self._line_cache.get(cache_key)
        if strip is None:
            row = self._rows[key]
            strip = self._render_cells(row.cells, row.tones, self._line_styles(kind))
            if len(self._line_cache) > 2000:
                self._line_cache.clear()
            self._line_cache[cache_key] = strip
        return strip

    def _render_header(self) -> Strip:
        labels = []
        tones: list[str | None] = []
        for c in self.columns:
            if c.key == self.sort_column:
                labels.append(c.label + (" ▼" if self.sort_reverse else " ▲"))
                tones.append("sorted")
            else:
                labels.append(c.label)
                tones.append(None)
        return self._render_cells(labels, tones, self._line_styles("header"))

    # --- mouse -----------------------------------------------------------------------

    def column_at(self, x: int) -> str | None:
        """The column under screen column `x` of this widget."""
        position = 0
        scroll_x = int(self.scroll_x)
        for i, width in enumerate(self._widths):
            if width == 0:
                continue
            span = width + 1
            start = position if i < self.fixed_columns else position - scroll_x
            if i >= self.fixed_columns and start < self._fixed_width():
                position += span
                continue
            if start <= x < start + span:
                return self.columns[i].key
            position += span
        return None

    def _fixed_width(self) -> int:
        return sum(w + 1 for w in self._widths[: self.fixed_columns] if w)

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        self.focus()
        if offset.y == 0:
            column = self.column_at(offset.x)
            if column is not None:
                if column == self.sort_column:
                    self.sort_by(column, reverse=not self.sort_reverse)
                else:
                    self.sort_by(column, reverse=False)
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._order):
            self.move_cursor(row)
            if event.chain >= 2:
                self.action_select()


# Whitespace that moves a terminal's cursor, as a space: a TAB written raw jumps to a tab stop
# the screen does not know of and leaves old cells behind (models keep them in multi-line text).
_ONE_LINE = {ord("\t"): " ", ord("\n"): " ", ord("\r"): " "}


def sort_text(text: str) -> tuple[int, str]:
    """Sort key that puts empty cells last."""
    return (0 if text.strip("- ") else 1, text.lower())


RowFactory = Callable[[Any], Row]
