"""Presenter mode's panel at the foot of every page: the "why" of what is on
screen (the wizard step, the diagnosis) in a large bordered block, and a
breadcrumb of what the operator has done so far, newest on the right.

Hidden unless the app carries the `-present` class (tui/presenter.tcss). It
shows what it is given; tui/presenter.py decides what that is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

SEPARATOR = " › "
TRAIL_LABEL = " done: "


@dataclass(frozen=True)
class Focus:
    """What the audience should read: a heading, the reason in one or two sentences, supporting lines."""

    title: str
    why: str
    lines: tuple[str, ...] = ()


def focus_text(focus: Focus) -> Text:
    text = Text()
    text.append(focus.title, style="bold")
    text.append("\n")
    text.append(focus.why or "-", style="bold")
    for line in focus.lines:
        text.append(f"\n  • {line}")
    return text


def trail_line(items: Sequence[str], width: int) -> Text:
    """The breadcrumb cut to `width` cells, keeping the newest steps (on the right)."""
    if not items:
        return Text(TRAIL_LABEL + "nothing yet", style="italic")
    text = Text(TRAIL_LABEL, style="bold")
    body = SEPARATOR.join(items)
    room = max(1, width - len(TRAIL_LABEL))
    if len(body) > room:
        body = "…" + body[-(room - 1) :] if room > 1 else "…"
    text.append(body)
    return text


class Breadcrumb(Widget):
    """One line: what has been done, the newest last; older steps fall off the left edge."""

    items: reactive[tuple[str, ...]] = reactive((), always_update=False)

    def render(self) -> Text:
        return trail_line(self.items, self.size.width)


class PresenterPanel(Vertical):
    def compose(self) -> ComposeResult:
        why = Static("", id="presenter-why", markup=False)
        why.border_title = "WHY"
        yield why
        yield Breadcrumb(id="presenter-trail")

    def show(self, focus: Focus | None, trail: Sequence[str]) -> bool:
        """Show `focus` and `trail`; False when the panel's own lines are not mounted yet (a page
        being composed), so the caller shows them again on its next tick."""
        try:
            why = self.query_one("#presenter-why", Static)
            breadcrumb = self.query_one(Breadcrumb)
        except NoMatches:
            return False
        if focus is None:
            why.display = False
        else:
            why.update(focus_text(focus))
            why.display = True
        breadcrumb.items = tuple(trail)
        return True
