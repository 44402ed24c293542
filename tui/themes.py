"""The console's themes: Textual's built-in ones plus a high-contrast theme
for projectors, screen shares and tired eyes.

A theme picked in the console (`t`, or "view: theme …" in the command
palette) is written back to the config file as `theme = "…"` (see
backend/config_store.py), so the next start opens with it.
"""

from __future__ import annotations

from textual.theme import BUILTIN_THEMES, Theme

HIGH_CONTRAST = "aztriage-high-contrast"

# Pure black and white with saturated signal colours: text on the backgrounds
# has a contrast ratio of at least 7:1 (WCAG AAA) and muted text stays light.
# Primary and accent are both a background under white text (the header's
# tabs) and a border on black, so they sit in the middle: 4.5:1 either way.
HIGH_CONTRAST_THEME = Theme(
    name=HIGH_CONTRAST,
    primary="#1070E8",
    secondary="#0078C8",
    accent="#B030F0",
    warning="#FFB000",
    error="#FF5050",
    success="#00FF66",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    boost="#262626",
    dark=True,
    luminosity_spread=0.1,
    text_alpha=1.0,
    variables={
        "text-muted": "#D8D8D8",
        "text-disabled": "#B0B0B0",
        "text-primary": "#FFFF00",
        "text-accent": "#FFFF00",
        "text-warning": "#FFB000",
        "text-error": "#FF9C9C",
        "text-success": "#00FF66",
        "block-cursor-background": "#FFFF00",
        "block-cursor-foreground": "#000000",
        "block-cursor-text-style": "bold",
        "block-cursor-blurred-background": "#5A5A00",
        "block-cursor-blurred-foreground": "#FFFFFF",
        "footer-key-foreground": "#FFFF00",
        "footer-description-foreground": "#FFFFFF",
        "footer-background": "#000000",
        "input-cursor-background": "#FFFF00",
        "input-cursor-foreground": "#000000",
        "input-selection-background": "#FFFF00 40%",
        "border": "#FFFF00",
        "border-blurred": "#B0B0B0",
        "scrollbar": "#B0B0B0",
        "scrollbar-hover": "#FFFFFF",
        "scrollbar-active": "#FFFF00",
    },
)

THEMES: tuple[Theme, ...] = (HIGH_CONTRAST_THEME,)


def theme_names() -> list[str]:
    """Every theme the console can show, sorted."""
    return sorted({*BUILTIN_THEMES, *(t.name for t in THEMES)})


def register_themes(app) -> None:
    for theme in THEMES:
        app.register_theme(theme)
