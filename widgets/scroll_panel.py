"""A panel of text that scrolls by keyboard to everything it holds, and says so.

A pane's detail panel (the Connectivity evidence, the Recovery plan's step) can hold
more than an 80x24 terminal leaves it. It takes the focus (tab), scrolls with
up/down/PgUp/PgDn/home/end, and while part of its text is out of view its top border
says how many lines are hidden and how to reach them: nothing decisive sits below a
fold that looks like the end."""

from __future__ import annotations

from textual import events
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget

from widgets.plain import plain_content

# The keys that move through text, a table or a list, the same everywhere (up/down or k/j,
# PgUp/PgDn, home/end or g/G; space is Connectivity's mark), by the name their binding ids end with.
MOVE_KEYS = {
    "up": ("up,k", "Up"),
    "down": ("down,j", "Down"),
    "page_up": ("pageup", "Page up"),
    "page_down": ("pagedown", "Page down"),
    "top": ("home,g", "Top"),
    "bottom": ("end,G", "Bottom"),
}
MOVE_KEYS |= {"first": MOVE_KEYS["top"], "last": MOVE_KEYS["bottom"]}  # a table's and a list's names for them


def move_bindings(prefix: str, **actions: str) -> list[BindingType]:
    """The moving keys of one widget: `actions` gives, in order, each binding's name (a key of
    MOVE_KEYS, which says its keys) and the widget's action; `prefix` starts the ids (``table.up``)."""
    return [Binding(MOVE_KEYS[name][0], action, MOVE_KEYS[name][1], show=False, id=f"{prefix}.{name}") for name, action in actions.items()]


def scroll_bindings(prefix: str) -> list[BindingType]:
    """The moving keys of a panel or a log that scrolls text (``panel.up``)."""
    return move_bindings(prefix, up="scroll_up", down="scroll_down", page_up="page_up", page_down="page_down", top="scroll_home", bottom="scroll_end")


def fit_in_frame(body: ScrollPanel, frame: Widget, screen_height: int, minimum: int = 3, maximum: int | None = None) -> None:
    """A dialog's body takes what the screen leaves after the frame's other parts (title, name box,
    buttons): the buttons are never pushed off an 80x24 screen, the body scrolls instead."""
    around = frame.styles.gutter.height + sum(child.outer_size.height for child in frame.children if child is not body and child.display)
    room = max(minimum, screen_height - around)
    if maximum is not None:
        room = min(room, maximum)
    if body.styles.max_height is None or body.styles.max_height.value != room:
        body.styles.max_height = room


class ScrollPanel(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    ScrollPanel { height: auto; scrollbar-size-vertical: 1; border-subtitle-align: left; }
    ScrollPanel:focus { border-title-style: bold; border-subtitle-style: bold; }
    ScrollPanel > Static { height: auto; width: 1fr; }
    """

    BINDINGS = scroll_bindings("panel")

    SCROLL_KEYS = "↑↓ PgUp PgDn scroll"

    def __init__(self, *, id: str | None = None, name: str = "details", reach: str | None = "tab") -> None:
        """name: what the border calls it; reach: the key that brings the focus here (None: the
        screen scrolls this panel with the arrow keys wherever the focus is, as a dialog does)."""
        super().__init__(id=id)
        self.panel_name = name
        self.reach = reach

    @property
    def hidden_below(self) -> int:
        return max(0, round(self.max_scroll_y - self.scroll_y))

    @property
    def hidden_above(self) -> int:
        return max(0, round(self.scroll_y))

    def hint(self) -> str:
        """What the top border says: empty when everything is in view."""
        below, above = self.hidden_below, self.hidden_above
        if not below and not above:
            return ""
        parts = []
        if above:
            parts.append(f"▲ {above} above")
        if below:
            parts.append(f"▼ {below} more line{'s' if below != 1 else ''}")
        if self.reach is None:
            how = self.SCROLL_KEYS
        else:
            how = f"{self.SCROLL_KEYS}, shift+tab back" if self.has_focus else f"{self.reach}: scroll"
        return f"{self.panel_name}: {' · '.join(parts)} ({how})"

    def show_hint(self) -> None:
        # On whichever edge has a border: a panel below a table has its top one, one above a table its bottom one.
        self.border_title = plain_content(self.hint())
        self.border_subtitle = plain_content(self.hint())

    def on_resize(self, event: events.Resize) -> None:
        self.show_hint()

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        # New content changes what is hidden without always sending this panel a Resize (the
        # title stayed empty over a plan step with lines below the fold): every size change
        # passes here, the hint is redrawn once the change is laid out.
        changed = super()._size_updated(size, virtual_size, container_size, layout)
        if changed:
            self.call_after_refresh(self.show_hint)
        return changed

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.show_hint()

    def on_focus(self) -> None:
        self.show_hint()

    def on_blur(self) -> None:
        self.show_hint()
