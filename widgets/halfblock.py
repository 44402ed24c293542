"""An image drawn with half-block characters: two pixels per cell.

Each cell is "▀" with the upper pixel as its foreground colour and the lower
pixel as its background, so any terminal with 24-bit (or 256) colour shows
a picture: plain SSH, tmux, a screen share, a browser terminal. No graphics
protocol, no terminal query. A cell is about twice as tall as it is wide,
so two pixels stacked in one cell are square: the aspect ratio holds.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

UPPER_HALF = "▀"


def fit(image_size: tuple[int, int], max_columns: int, max_rows: int) -> tuple[int, int]:
    """(columns, rows) of cells that show the whole image, aspect kept, inside the box."""
    width, height = image_size
    if width <= 0 or height <= 0 or max_columns <= 0 or max_rows <= 0:
        return 0, 0
    scale = min(max_columns / width, (max_rows * 2) / height)
    columns = max(1, min(max_columns, round(width * scale)))
    rows = max(1, min(max_rows, round(height * scale / 2)))
    return columns, rows


def halfblock_lines(image: Any, columns: int, rows: int) -> list[list[Segment]]:
    """The image (a Pillow image) scaled to columns x (rows * 2) pixels, as lines of segments."""
    from PIL import Image

    if columns <= 0 or rows <= 0:
        return []
    # BOX averages the pixels a cell covers: text on a console stays a readable texture.
    small = image.convert("RGB").resize((columns, rows * 2), Image.Resampling.BOX)
    pixels = small.load()
    styles: dict[tuple, Style] = {}
    out: list[list[Segment]] = []
    for row in range(rows):
        line: list[Segment] = []
        run_style: Style | None = None
        run = 0
        for col in range(columns):
            top = pixels[col, row * 2]
            bottom = pixels[col, row * 2 + 1]
            key = (top, bottom)
            style = styles.get(key)
            if style is None:
                style = styles[key] = Style(color=f"rgb({top[0]},{top[1]},{top[2]})", bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})")
            if style is run_style:
                run += 1
                continue
            if run_style is not None:
                line.append(Segment(UPPER_HALF * run, run_style))
            run_style, run = style, 1
        if run_style is not None:
            line.append(Segment(UPPER_HALF * run, run_style))
        out.append(line)
    return out


class HalfBlockImage:
    """A Rich renderable: the image fitted into the width it is given and at most `max_rows` rows."""

    def __init__(self, image: Any, max_rows: int | None = None) -> None:
        self.image = image
        self.max_rows = max_rows

    def size_for(self, max_columns: int, max_rows: int | None) -> tuple[int, int]:
        rows = max_rows if max_rows is not None else self.max_rows
        if rows is None:
            rows = max(1, round(self.image.height * max_columns / self.image.width / 2))
        return fit(self.image.size, max_columns, rows)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        limit = self.max_rows if self.max_rows is not None else options.height
        columns, rows = self.size_for(options.max_width, limit)
        for line in halfblock_lines(self.image, columns, rows):
            yield from line
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        columns, _ = self.size_for(options.max_width, self.max_rows if self.max_rows is not None else options.height)
        return Measurement(columns, columns)
