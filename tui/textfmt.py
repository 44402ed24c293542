"""Plain-text tables for the CLI: fitted to the terminal, whole when piped.

The width text is fitted to, in this order: `--width N`; the COLUMNS environment
variable; the terminal's width (at least 80, at most 200) when standard output is a
terminal. Output to a pipe or a file is never cut: `aztriage health | grep erp` sees
every character of every cell."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence

MIN_WIDTH, MAX_WIDTH = 80, 200
_width: int | None = None  # --width, set once by the command line


def set_width(width: int | None) -> None:
    global _width
    _width = width


def output_width() -> int | None:
    """Columns to fit text to, or None: no limit (standard output is not a terminal)."""
    if _width:
        return _width
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not sys.stdout.isatty():
        return None
    return max(MIN_WIDTH, min(shutil.get_terminal_size((MIN_WIDTH, 24)).columns, MAX_WIDTH))


def fill(text: str, *, initial_indent: str = "", subsequent_indent: str = "") -> str:
    """textwrap.fill to the output width; one line, whole, when there is no limit."""
    width = output_width()
    if width is None:
        return initial_indent + text
    return textwrap.fill(text, width=width, initial_indent=initial_indent, subsequent_indent=subsequent_indent)


def ellipsize(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


_ONE_LINE = {ord("\t"): " ", ord("\n"): " ", ord("\r"): " "}


def one_line(value: object) -> str:
    """``value`` as text on one line (newline, tab and CR as spaces)."""
    text = str(value)
    return text if text.isprintable() else text.translate(_ONE_LINE)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    shrink: Sequence[int] = (),
    optional: Sequence[int] = (),
) -> str:
    """Columns sized to content. When too wide, `optional` columns are dropped
    (last listed first) while the rest would need truncating, then the
    `shrink` columns give way."""
    width = width or output_width()
    if width is None:
        width = 1 << 30  # a pipe: nothing is cut
    # A cell is one line: prose from Azure or the tenant (a summary) keeps its newlines and tabs
    # in the models, which would break the row or jump to a tab stop here.
    rows = [[one_line(c) for c in r] for r in rows]
    natural = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    keep = list(range(len(headers)))
    for col in reversed(list(optional)):
        if sum(natural[i] for i in keep) + 2 * (len(keep) - 1) <= width:
            break
        keep.remove(col)
    if len(keep) < len(headers):
        index = {old: new for new, old in enumerate(keep)}
        headers = [headers[i] for i in keep]
        rows = [[r[i] for i in keep] for r in rows]
        shrink = [index[i] for i in shrink if i in index]
    cols = len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(str(cell)))
    total = sum(widths) + 2 * (cols - 1)
    # The `shrink` columns give way first, widest first; then every column, down to 3 characters.
    for order, floor_of in ((list(shrink), lambda c: max(4, len(headers[c]))), (list(range(cols)), lambda c: 3)):
        while total > width and order:
            i = max(order, key=lambda c: widths[c])
            if widths[i] <= floor_of(i):
                order.remove(i)
                continue
            widths[i] -= 1
            total -= 1
    lines = ["  ".join(ellipsize(h, widths[i]).ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(ellipsize(str(c), widths[i]).ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)
