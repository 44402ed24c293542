"""The serial-log view draws only what is visible (issue 14, item 9).

A guest decides how long its log lines are. The view used to pad every visible line to
the longest line's width and crop afterwards (0.4 s per scroll key with one 1 MiB line);
it now builds each screen line from the slice in view. These tests hold the slice to
what the whole line, drawn and cropped, shows: the same characters, the gutter, the
search marks (a match cut by the window's edge too), wherever the view is scrolled. How
fast it is, is measured by benchmarks/redos.py.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from widgets.serial_log import GUTTER, SerialLogView


class LogApp(App):
    def compose(self) -> ComposeResult:
        yield SerialLogView()


def expected_text(view: SerialLogView, index: int, scroll_x: int, width: int) -> str:
    """The reference: gutter and whole line, padded to the longest line, then cropped."""
    gutter = "! " if index in view.evidence else "▌ " if view.last_start <= index < view.last_end else "  "
    whole = (gutter + view.lines[index]).ljust(max(width + scroll_x, view._width))
    return whole[scroll_x : scroll_x + width]


def marked(view: SerialLogView, strip) -> str:
    """The characters of a drawn line that carry the search highlight."""
    mark = view.get_component_rich_style("serial-log--match").bgcolor
    current = view.get_component_rich_style("serial-log--current").bgcolor
    return "".join(seg.text if seg.style and seg.style.bgcolor in (mark, current) else " " * len(seg.text) for seg in strip)


async def test_a_one_mebibyte_line_is_drawn_from_its_visible_slice():
    rng = random.Random(9)
    long_line = "".join(rng.choice("abcdefghij ␛[]") for _ in range(1024 * 1024))
    lines = ["[    0.000000] Linux version 6.8.0", long_line, "short", "Kernel panic - not syncing: VFS"]
    app = LogApp()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(SerialLogView)
        view.set_log(lines, 0, None, {3}, follow=False)
        await pilot.pause()
        width = view.scrollable_content_region.width
        for scroll_x in (0, 1, 2, 3, 5000, 1024 * 1024 - 200, view.max_scroll_x):
            view.scroll_to(scroll_x, 0, animate=False)
            await pilot.pause()
            assert view.scroll_offset.x == scroll_x
            for y, index in enumerate(range(len(lines))):
                strip = view.render_line(y)
                assert strip.cell_length == width
                assert strip.text == expected_text(view, index, scroll_x, width), (scroll_x, index)


@given(
    lines=st.lists(st.text(alphabet="abcAB ␛x", max_size=40), min_size=1, max_size=6),
    term=st.text(alphabet="abAB", min_size=1, max_size=4),
    scroll_x=st.integers(0, 45),
)
@settings(max_examples=60, deadline=None)
def test_search_marks_stay_on_the_matches_wherever_the_view_is_scrolled(lines, term, scroll_x):
    import asyncio

    async def run() -> None:
        app = LogApp()
        async with app.run_test(size=(20, 8)) as pilot:
            view = app.query_one(SerialLogView)
            view.set_log(lines, 0, len(lines), set(), follow=False)
            view.search(term)
            view.scroll_to(scroll_x, 0, animate=False)
            await pilot.pause()
            x = view.scroll_offset.x
            width = view.scrollable_content_region.width
            for index, line in enumerate(lines[: view.scrollable_content_region.height]):
                strip = view.render_line(index - view.scroll_offset.y)
                assert strip.text == expected_text(view, index, x, width)
                # Reference marks: every occurrence (case-insensitive, left to right, not overlapping) of the term.
                whole = [" "] * (GUTTER + len(line))
                low, at = line.lower(), 0
                while (at := low.find(term.lower(), at)) >= 0:
                    for i in range(at, at + len(term)):
                        whole[GUTTER + i] = line[i]
                    at += len(term)
                want = "".join(whole).ljust(x + width)[x : x + width]
                assert marked(view, strip).ljust(width) == want, (line, term, x)

    asyncio.run(run())
