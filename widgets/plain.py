"""Data is text, never markup.

Rich and Textual parse a ``str`` as markup in many places: a Rich ``Table`` cell, a
``Static``/``Label`` whose ``markup`` is on (the default, also for every later ``update``),
a ``Button`` label, an ``OptionList`` prompt, a border title, a notification. Azure, the
tenant and the guests write text with brackets in it, and ``[link=file:///...]`` or
``[@click=app.quit]`` in such text would become a link or an action. So the console builds
what it shows from plain strings only, through these helpers; ``tests/test_plain_text.py``
checks the source of ``tui/`` and ``widgets/`` for every other way in.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.content import Content


def plain(value: RenderableType | None) -> RenderableType:
    """A ``str`` as a ``Text`` shown as it is (no markup, no emoji codes); anything else unchanged."""
    if value is None:
        return Text("")
    if isinstance(value, str):
        return Text(value)
    return value


def plain_content(value: str) -> Content:
    """A ``str`` as Textual ``Content`` shown as it is (for a Button label, an Option prompt)."""
    return Content(value)


def add_plain_row(table: Table, *cells: RenderableType | None) -> None:
    """``Table.add_row`` with every ``str`` cell shown as it is."""
    table.add_row(*(plain(cell) for cell in cells))
