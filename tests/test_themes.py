"""Themes: Textual's own plus a high-contrast one, chosen with `t` or from the
command palette ("view: theme …"), and remembered in the config file: only
the `theme = …` line changes, the file stays 0600, and a crash cannot leave
half a file."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest
from textual.command import CommandList, CommandPalette

from backend.config import Config, ConfigError, load_config
from backend.config_store import edited_text, save_setting
from tests.support import FIXED_NOW, demo_settings
from tests.tui_support import wait_for, wait_loaded
from tui.themes import HIGH_CONTRAST, HIGH_CONTRAST_THEME, theme_names

OPERATOR_FILE = """\
# my aztriage settings
subscriptions = ["sub-a"]   # production
refresh_interval = 30
theme = "nord"

[keys]
refresh = "f5"
"""


# --- writing the config file ---------------------------------------------------------


def test_the_theme_line_is_replaced_and_everything_else_kept(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(OPERATOR_FILE)
    os.chmod(path, 0o644)
    assert save_setting("theme", HIGH_CONTRAST, path) == path
    text = path.read_text()
    assert text == OPERATOR_FILE.replace('theme = "nord"', f'theme = "{HIGH_CONTRAST}"')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(path, environ={})
    assert config.theme == HIGH_CONTRAST and config.refresh_interval == 30 and config.keys == {"refresh": "f5"}
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary file left behind


def test_a_missing_theme_goes_before_the_first_table(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('refresh_interval = 30\n[keys]\nrefresh = "f5"\n')
    save_setting("theme", "dracula", path)
    assert path.read_text() == 'refresh_interval = 30\ntheme = "dracula"\n\n[keys]\nrefresh = "f5"\n'
    assert tomllib.loads(path.read_text())["keys"] == {"refresh": "f5"}


def test_a_missing_file_is_created_private(tmp_path):
    path = tmp_path / "new" / "config.toml"
    save_setting("theme", "gruvbox", path)
    assert path.read_text() == 'theme = "gruvbox"\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_theme_key_inside_a_table_is_not_the_top_level_one():
    text = '[keys]\ntheme = "x"\n'
    assert edited_text(text, "theme", "nord") == 'theme = "nord"\n\n[keys]\ntheme = "x"\n'


@pytest.mark.parametrize(
    "text, words",
    [
        ("theme = = 3\n", "not valid TOML"),
        ('theme = [\n  "nord",\n]\n', "set theme"),
    ],
)
def test_a_file_it_cannot_edit_safely_is_left_alone(tmp_path, text, words):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        save_setting("theme", "nord", path)
    assert words in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == text


def test_a_symlinked_config_stays_a_link(tmp_path):
    real = tmp_path / "dotfiles" / "aztriage.toml"
    real.parent.mkdir()
    real.write_text("refresh_interval = 30\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    save_setting("theme", "nord", link)
    assert link.is_symlink() and 'theme = "nord"' in real.read_text()


# --- the high-contrast theme -----------------------------------------------------------


def _luminance(hex_color: str) -> float:
    channels = [int(hex_color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_high_contrast_text_meets_wcag_aaa_on_every_background():
    t = HIGH_CONTRAST_THEME
    texts = [t.foreground, t.warning, t.success] + [
        t.variables[k] for k in ("text-muted", "text-primary", "text-error", "text-warning", "text-success", "text-accent", "footer-key-foreground")
    ]
    for background in (t.background, t.surface, t.panel, t.boost):
        for color in texts:
            assert contrast(color, background) >= 7.0, (color, background)
    cursor = (t.variables["block-cursor-foreground"], t.variables["block-cursor-background"])
    assert contrast(*cursor) >= 7.0
    # Primary and accent: white text on them (the header's tabs) and them on black (borders).
    for color in (t.primary, t.accent):
        assert contrast(color, "#FFFFFF") >= 4.5 and contrast(color, t.background) >= 4.5, color


def test_every_builtin_theme_and_the_high_contrast_one_are_offered():
    names = theme_names()
    assert HIGH_CONTRAST in names and "textual-dark" in names and "nord" in names


def test_a_config_naming_an_unknown_theme_is_refused_in_one_line():
    from tui.app import check_config

    check_config(Config(theme=HIGH_CONTRAST))
    with pytest.raises(ConfigError) as err:
        check_config(Config(theme="no-such-theme"))
    assert HIGH_CONTRAST in str(err.value) and "\n" not in str(err.value)


# --- choosing one in the console ---------------------------------------------------------


def _app(emulator, theme: str = "textual-dark"):
    from tui.app import AztriageApp

    return AztriageApp(demo_settings(emulator), config=Config(refresh_interval=0, theme=theme, auto_probe=False), clock=lambda: FIXED_NOW)


async def test_t_picks_a_theme_and_the_next_start_opens_with_it(emulator, tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(OPERATOR_FILE.replace('theme = "nord"\n', ""))
    monkeypatch.setenv("AZTRIAGE_CONFIG", str(path))
    app = _app(emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the theme picker")
        await pilot.press(*"high-contrast")
        hits = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: hits.option_count == 1 and HIGH_CONTRAST in str(hits.get_option_at_index(0).prompt), what="the theme in the list")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.theme == HIGH_CONTRAST, what="the theme")
        await pilot.pause()
        assert app.current_theme.background.upper() == "#000000"
    config = load_config(environ={"AZTRIAGE_CONFIG": str(path)})
    assert config.theme == HIGH_CONTRAST and config.subscriptions == ("sub-a",) and config.keys == {"refresh": "f5"}
    assert "# my aztriage settings\n" in path.read_text()

    again = _app(emulator, theme=config.theme)
    async with again.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert again.theme == HIGH_CONTRAST


async def test_the_palette_switches_theme_by_name_and_remembers_it(emulator, tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("AZTRIAGE_CONFIG", str(path))
    app = _app(emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        commands = {name: callback for name, _help, callback in app.palette_commands()}
        assert {f"view: theme {name}" for name in theme_names()} <= set(commands)
        commands["view: theme solarized-light"]()
        await pilot.pause()
        assert app.theme == "solarized-light"
    assert load_config(environ={"AZTRIAGE_CONFIG": str(path)}).theme == "solarized-light"


async def test_a_theme_that_cannot_be_remembered_still_applies_and_says_why(emulator, tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text("theme = = broken\n")
    monkeypatch.setenv("AZTRIAGE_CONFIG", str(path))
    app = _app(emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        app.theme = "nord"
        await pilot.pause()
        assert app.theme == "nord"
        messages = [n.message for n in app._notifications]
        assert any("not remembered" in m and "not valid TOML" in m for m in messages)
    assert path.read_text() == "theme = = broken\n"


def test_inventory_in_the_high_contrast_theme(snap_compare, emulator):
    async def run_before(pilot) -> None:
        await wait_loaded(pilot)
        await pilot.pause()

    assert snap_compare(_app(emulator, theme=HIGH_CONTRAST), terminal_size=(100, 30), run_before=run_before)
