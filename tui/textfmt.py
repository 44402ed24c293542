"""Plain-text tables for the CLI: fit in the terminal (80 columns by default)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence


def ellipsize(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


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
    width = width or max(80, min(shutil.get_terminal_size((80, 24)).columns, 200))
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
