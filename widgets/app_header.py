"""The one-line header: app name, pane tabs, who and where (or DEMO), the
READ-ONLY marker and when the data was last refreshed. It shrinks to fit 80
columns by dropping words, never the READ-ONLY marker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from widgets.component import component_classes


@dataclass(frozen=True)
class HeaderState:
    panes: tuple[tuple[str, ...], ...] = ()  # (key, id, title[, short title])
    where: str = ""  # "DEMO" or "identity @ cloud"
    read_only: bool = False
    status: str = ""  # "↻ 03:00:00 UTC", "refreshing…", "connecting…"
    status_tone: str = ""  # "", "busy", "error"


class AppHeader(Widget):
    DEFAULT_CSS = """
    AppHeader { dock: top; height: 1; background: $panel; color: $text; }
    AppHeader > .app-header--brand { background: $primary; color: $text; text-style: bold; }
    AppHeader > .app-header--tab-active { background: $accent; color: $text; text-style: bold; }
    AppHeader > .app-header--tab { color: $text-muted; }
    AppHeader > .app-header--read-only { background: $error; color: $text; text-style: bold; }
    AppHeader > .app-header--where { color: $text; text-style: bold; }
    AppHeader > .app-header--busy { color: $text-warning; }
    AppHeader > .app-header--error { color: $text-error; text-style: bold; }
    AppHeader > .app-header--status { color: $text-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes(DEFAULT_CSS)

    state: reactive[HeaderState] = reactive(HeaderState, always_update=True)

    def __init__(self, active_pane: str, *, state_attribute: str = "header_state", **kwargs) -> None:
        super().__init__(**kwargs)
        self.active_pane = active_pane
        self._state_attribute = state_attribute

    def on_mount(self) -> None:
        # The app owns one HeaderState; every screen's header mirrors it.
        if hasattr(self.app, self._state_attribute):
            self.watch(self.app, self._state_attribute, self._mirror)

    def _mirror(self, state: HeaderState) -> None:
        self.state = state

    def _style(self, name: str):
        return self.get_component_rich_style(f"app-header--{name}", partial=True)

    # Ways to fit a narrow terminal, tried in order: (brand, tab titles: "full"/"short"/"", long clock, where).
    # Every pane keeps a name down to 80 columns (short ones: "Conn", "Recov"); only narrower loses them.
    FITS = (
        (True, "full", True, True),
        (False, "full", True, True),
        (False, "full", False, True),
        (False, "short", False, True),
        (False, "short", False, False),
        (False, "compact", False, True),
        (False, "compact", False, False),
        (False, "", False, True),
        (False, "", False, False),
    )

    def _left(self, brand: bool, titles: str) -> Text:
        text = Text()
        if brand:
            text.append(" aztriage ", style=self._style("brand"))
        for key, pane_id, title, *rest in self.state.panes:
            name = (rest[0] if rest else title) if titles in ("short", "compact") else title
            if pane_id == self.active_pane:
                text.append(f" {key} {name if titles == 'compact' else title} ", style=self._style("tab-active"))
            elif titles == "compact":
                text.append(f"{key} {name} ", style=self._style("tab"))
            elif titles:
                text.append(f" {key} {name} ", style=self._style("tab"))
            else:
                text.append(f" {key} ", style=self._style("tab"))
        return text

    def _right(self, long_clock: bool, where: bool) -> Text:
        s = self.state
        text = Text()
        if s.where and where:
            text.append(f" {s.where} ", style=self._style("where"))
        if s.read_only:
            text.append(" ")
            text.append(" READ-ONLY ", style=self._style("read-only"))
        if s.status:
            tone = {"busy": "busy", "error": "error"}.get(s.status_tone, "status")
            status = s.status if long_clock else s.status.replace(" UTC", "Z")
            text.append(f" {status} ", style=self._style(tone))
        return text

    def render(self) -> Text:
        width = self.size.width
        for brand, titles, long_clock, where in self.FITS:
            left = self._left(brand, titles)
            right = self._right(long_clock, where)
            gap = width - left.cell_len - right.cell_len
            if gap >= 1:
                return Text.assemble(left, " " * gap, right)
        line = Text.assemble(left, " ", right)
        line.truncate(width)
        return line
