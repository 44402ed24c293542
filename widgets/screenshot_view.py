"""The console screenshot of a VM, drawn in the terminal.

Two ways to draw it:

- a graphics protocol (the Kitty terminal graphics protocol, or Sixel)
  through textual-image, where the terminal speaks one: the real pixels;
- half-block characters (widgets/halfblock.py) everywhere else: plain SSH,
  tmux, a screen share, a browser terminal.

Which one is decided once, before the console takes the terminal
(``prepare_graphics()``, called by tui/app.py): asking a terminal what it
supports means writing an escape sequence and reading its answer, which is
impossible once Textual reads the keyboard. ``AZTRIAGE_IMAGES`` chooses:
``auto`` (the default: a graphics protocol only when the terminal says it is
one that has it, e.g. kitty, WezTerm, foot, and then answers the query),
``halfblock``, ``tgp`` or ``sixel``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from rich.align import Align
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Container
from textual.widget import Widget
from textual.widgets import Static

from widgets.halfblock import HalfBlockImage

log = logging.getLogger("aztriage.images")

IMAGES_ENV = "AZTRIAGE_IMAGES"
HALFBLOCK = "halfblock"

# Terminals that have a graphics protocol (by what they put in the environment).
_TGP_TERMS = ("xterm-kitty", "xterm-ghostty")
_SIXEL_PROGRAMS = ("wezterm", "mlterm", "contour", "konsole")
_SIXEL_TERMS = ("foot", "mlterm", "contour", "yaft")

_mode = HALFBLOCK
_graphics_class: Any = None


def terminal_hint(env: Mapping[str, str]) -> str | None:
    """'tgp' or 'sixel' when the environment names a terminal that has it; else None."""
    term = env.get("TERM", "").lower()
    program = env.get("TERM_PROGRAM", "").lower()
    if term in _TGP_TERMS or env.get("KITTY_WINDOW_ID") or program == "ghostty":
        return "tgp"
    if program in _SIXEL_PROGRAMS or env.get("WEZTERM_EXECUTABLE") or env.get("KONSOLE_VERSION") or any(term.startswith(t) for t in _SIXEL_TERMS):
        return "sixel"
    return None


def prepare_graphics(env: Mapping[str, str] | None = None, stdout: Any = None) -> str:
    """Decide how screenshots are drawn; call before the app starts. Returns the mode."""
    env = os.environ if env is None else env
    stdout = sys.__stdout__ if stdout is None else stdout
    choice = (env.get(IMAGES_ENV) or "auto").strip().lower()
    if choice in (HALFBLOCK, "off", "none", "no"):
        return use_mode(HALFBLOCK)
    if stdout is None or not stdout.isatty():
        return use_mode(HALFBLOCK)
    if choice == "auto" and terminal_hint(env) is None:
        return use_mode(HALFBLOCK)
    try:
        # Importing textual-image queries the terminal (it must happen before Textual starts).
        import textual_image.renderable as renderables
        import textual_image.widget as image_widgets
    except Exception:  # a terminal that answers oddly must not keep the console from starting
        log.warning("textual-image could not be loaded; screenshots use half blocks", exc_info=True)
        return use_mode(HALFBLOCK)
    if choice == "tgp":
        return use_mode("tgp", image_widgets.TGPImage)
    if choice == "sixel":
        return use_mode("sixel", image_widgets.SixelImage)
    if renderables.Image is renderables.TGPImage:
        return use_mode("tgp", image_widgets.TGPImage)
    if renderables.Image is renderables.SixelImage:
        return use_mode("sixel", image_widgets.SixelImage)
    return use_mode(HALFBLOCK)  # the terminal did not confirm a protocol


def use_mode(mode: str, widget_class: Any = None) -> str:
    """Set the drawing mode (tests use it to pick one)."""
    global _mode, _graphics_class
    if mode != HALFBLOCK and widget_class is None:
        raise ValueError(f"mode {mode} needs a textual-image widget class")
    _mode, _graphics_class = mode, widget_class
    return mode


def current_mode() -> str:
    return _mode


class HalfBlockView(Widget):
    """The image in half blocks, fitted into the widget and centred."""

    DEFAULT_CSS = "HalfBlockView { height: 1fr; width: 1fr; }"

    def __init__(self, image: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image

    def render(self) -> RenderResult:
        return Align.center(HalfBlockImage(self.image, max_rows=max(1, self.content_size.height)), vertical="middle")


class ScreenshotView(Container, can_focus=True):
    """Shows one screenshot (a Pillow image), or a line saying why there is none."""

    DEFAULT_CSS = """
    ScreenshotView { height: 1fr; width: 1fr; }
    ScreenshotView > #screenshot-message { height: auto; padding: 1 2; color: $text-muted; }
    ScreenshotView > .graphics { width: auto; height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image: Any = None
        self.mode = current_mode()

    def compose(self) -> ComposeResult:
        yield Static("No screenshot yet.", id="screenshot-message", markup=False)

    async def show_image(self, image: Any, caption: str = "") -> None:
        self.image = image
        self.mode = current_mode()
        await self.remove_children()
        if image is None:
            await self.mount(Static(caption or "No screenshot.", id="screenshot-message", markup=False))
            return
        if self.mode != HALFBLOCK and _graphics_class is not None:
            widget = _graphics_class(image, classes="graphics")
        else:
            widget = HalfBlockView(image, id="halfblock")
        await self.mount(widget)
        if caption:
            await self.mount(Static(Text(caption, style="dim"), id="screenshot-message", markup=False))

    async def show_message(self, text: str) -> None:
        self.image = None
        await self.remove_children()
        await self.mount(Static(text, id="screenshot-message", markup=False))
