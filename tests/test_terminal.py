"""The console in a plain terminal, as over SSH: `aztriage --demo` under tmux
at 80x24 with TERM=xterm-256color and TERM=screen (16 colours), and with
NO_COLOR. Keys go in with send-keys (switch panes, filter, open a VM, back,
quit); what the operator would read comes back from capture-pane."""

from __future__ import annotations

import time
from pathlib import Path

from tests.tmux_support import Tmux, colours, start_console

ROOT = Path(__file__).resolve().parent.parent

# Colours without a hue: the grey ramp and the greys of the 256-colour cube, black, white, greys.
GREY_256 = {0, 7, 8, 15, 16, 59, 102, 145, 188, 231, *range(232, 256)}
GREY_16 = {30, 37, 90, 97, 40, 47, 100, 107}


def is_grey(colour: str) -> bool:
    _where, _, spec = colour.partition(":")
    parts = [int(p) for p in spec.split(";")]
    if parts[:2] in ([38, 5], [48, 5]):
        return parts[2] in GREY_256
    if parts[:2] in ([38, 2], [48, 2]):
        return parts[2] == parts[3] == parts[4]
    return parts[0] in GREY_16


def start(term: Tmux, tmp_path: Path, **env: str) -> None:
    start_console(term, tmp_path, **env)
    # Loaded (not only the rows of the lists: the instance views too): the rows of the demo
    # estate with their states and verdicts in words.
    term.wait_for("erp-prod-eus-01", "UNAVAILABLE", "DEALLOCATED", "NOT READY", "INCIDENT", "NAME", "row 1/30", "DEMO", timeout=60, absent=("loading…",))


def walk(term: Tmux) -> None:
    """Panes, filter, detail, back, quit: what an operator does first."""
    screen = term.screen()
    lines = screen.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    assert "1 Inventory" in lines[0] and "DEMO" in lines[0]
    assert any(line.startswith(" ! erp-prod-eus-01") for line in lines)  # the attention marker, not only a colour

    term.keys("2")
    term.wait_for("Resource Health", "UNPLANNED")
    term.keys("1")
    term.wait_for("POWER", "HEALTH", absent=("Resource Health",))

    term.keys("/")
    term.wait_for("filter: name, group")
    time.sleep(0.5)  # the box takes focus on the frame after it is shown
    term.type("erp-prod")
    term.wait_for("1 match /erp-prod")
    term.keys("Enter")  # keep the filter, back to the table
    time.sleep(0.5)  # the table takes focus on the next frame
    term.keys("Enter")  # open the VM under the cursor
    # The VM detail opens on its verdict; the overview below it is a page down.
    term.wait_for("VM erp-prod-eus-01 · esc back", "Verdict", "INCIDENT", "Next: Wait for Azure's mitigation")
    term.keys("PageDown")
    term.wait_for("VM erp-prod-eus-01 · esc back", "rg-erp-prod", "eastus")
    term.keys("Escape")
    term.wait_for("1 match /erp-prod", "erp-prod-eus-01", absent=("esc back", "web-prod-01"))

    term.keys("q")
    assert term.wait_exit() == 0


def test_xterm_256color_at_80x24(term, tmp_path):
    start(term, tmp_path, TERM="xterm-256color")
    seen = colours(term.screen_with_escapes())
    # The control for the next tests: in 256 colours the screen does use hues.
    assert any(c.startswith("fg:38;5;") and not is_grey(c) for c in seen), seen
    walk(term)


def test_screen_in_16_colours_at_80x24(term, tmp_path):
    start(term, tmp_path, TERM="screen", TEXTUAL_COLOR_SYSTEM="standard")
    seen = colours(term.screen_with_escapes())
    assert seen, "no colour at all: the escapes were not captured"
    assert not [c for c in seen if ";5;" in c or ";2;" in c], seen  # only the 16 ANSI colours
    walk(term)


def test_no_color_is_greys_only_and_every_state_reads_in_words(term, tmp_path):
    # start() waits for DEALLOCATED, UNAVAILABLE and NOT READY on the inventory.
    start(term, tmp_path, TERM="xterm-256color", NO_COLOR="1")
    seen = colours(term.screen_with_escapes())
    assert seen and all(is_grey(c) for c in seen), sorted(c for c in seen if not is_grey(c))
    term.keys("2")
    term.wait_for("Resource Health", "UNPLANNED", "DEGRADED", "ACTIVE")
    assert all(is_grey(c) for c in colours(term.screen_with_escapes()))
    term.keys("q")
    assert term.wait_exit() == 0


def test_presenter_mode_fits_80x24(term, tmp_path):
    start_console(term, tmp_path, "--present")
    screen = term.wait_for("erp-prod-eus-01", "done: 1 Inventory", timeout=60)
    assert len(screen.splitlines()) <= 24
    term.keys("2")
    screen = term.wait_for("done: 1 Inventory › 2 Health")
    term.keys("P")
    term.wait_for("Resource Health", absent=("done: ",))
    term.keys("q")
    assert term.wait_exit() == 0
