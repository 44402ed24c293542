"""The console's own output stream, on the hostile estate: nothing from the data reaches the
terminal raw (issue 14, "How it is proven").

``aztriage`` runs in a real terminal (tmux, 100x30, TERM=xterm-256color) against the hostile
estate (backend/emulator/estates/hostile.py: payloads of every class in every field others
write, hostile SSH and RDP peers). tmux's ``pipe-pane`` copies every byte the console writes
to a file while an operator's walk goes through every pane and detail view: the inventory and
a VM's detail panel, Resource Health and a Service Health event, a probe and its evidence,
the recovery picker, the checklist, the Boot pane reading every serial log and the serial-log
view scrolled down, right and to its end. Then:

- the byte stream holds no sequence a payload could have put there (``terminal_violations``:
  no OSC, DCS, APC, PM, SOS, no C0 but CR and LF, no DEL, C1, bidi or invisible character,
  and no CSI outside the repertoire Textual's driver and Rich's renderer write), checked as
  classes, not as the payload strings;
- what was on the screen shows the payloads made visible (``␛`` for ESC, ``<U+XXXX>``), so
  the walk did see hostile text; and the Rich markup payloads stand on the screen as they were
  written (their brackets), so no style, link or click action from data was interpreted.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from tests.hostile_payloads import CONTROL_CLASSES, EVERY_CODE_POINT, payload, terminal_violations
from tests.recovery_support import cli_connection
from tests.tmux_support import Tmux

ROOT = Path(__file__).resolve().parent.parent
UNSET = ("COLUMNS", "LINES", "NO_COLOR", "COLORTERM", "TEXTUAL_COLOR_SYSTEM", "TEXTUAL_DRIVER", "TERM_PROGRAM", "AZTRIAGE_THEME", "AZTRIAGE_CONFIG")

# The CSI sequences Textual's Linux driver and Rich's renderer write: SGR, cursor position with
# both coordinates, cursor up, erase in display, private modes set/reset/queried (alternate
# screen, cursor, mouse, bracketed paste, focus, sync output), the kitty keyboard protocol, the
# cursor position query. A CSI outside these came from somewhere else.
OWN_CSI = re.compile(r"\x1b\[(?:[0-9;:]*m|\d+;\d+H|\d*A|2?J|\?\d+[hl]|\?\d+\$p|[<>=]\d*u|6n)")
CSI = re.compile(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
# The OSCs the console writes itself: the mouse pointer's shape (OSC 22, Textual) and the VM
# detail's link to the Azure portal (OSC 8, a Style link built from the VM's resource id).
OWN_OSC = re.compile(r"\x1b\]22;[a-z-]+\x07|\x1b\]8;(?:id=\d+)?;(?:https://portal\.azure\.com/[^\x00-\x1f\x7f-\x9f]*)?\x1b\\")


def foreign_csi(stream: str) -> list[str]:
    return sorted({m.group(0).replace("\x1b", "ESC") for m in CSI.finditer(stream) if not OWN_CSI.fullmatch(m.group(0))})


def test_the_stream_check_sees_every_class_raw():
    import random

    for name, ch in EVERY_CODE_POINT.items():
        if ch not in "\r\n":
            assert terminal_violations(f"ok {ch} ok"), name
    for cls in CONTROL_CLASSES:
        for seed in range(20):
            raw = payload(cls, random.Random(seed))
            if cls == "csi":  # a CSI is told apart by its shape (Textual writes some of these itself)
                continue
            assert terminal_violations(f"ok {raw} ok"), (cls, raw)
    assert foreign_csi("\x1b[2K \x1b[8;1;1t \x1b[H \x1b[3J") == ["ESC[2K", "ESC[3J", "ESC[8;1;1t", "ESC[H"]


@pytest.fixture
def term(tmp_path):
    t = Tmux(tmp_path, width=100, height=30)
    yield t
    t.kill()


def _screens(term: Tmux, seen: list[str]) -> str:
    screen = term.screen()
    seen.append(screen)
    return screen


def _wait(term: Tmux, seen: list[str], *needles: str, timeout: float = 60) -> str:
    screen = term.wait_for(*needles, timeout=timeout)
    seen.append(screen)
    return screen


def _keys(term: Tmux, seen: list[str], *keys: str, pause: float = 0.6) -> None:
    for key in keys:
        term.keys(key)
        time.sleep(pause)
        _screens(term, seen)


def _until(term: Tmux, seen: list[str], key: str, *needles: str, tries: int = 4, timeout: float = 15) -> str:
    """Press ``key`` until the screen shows ``needles`` (a key sent while focus is still moving is lost)."""
    for attempt in range(tries):
        term.keys(key)
        try:
            return _wait(term, seen, *needles, timeout=timeout)
        except AssertionError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def test_no_payload_reaches_the_terminal_from_any_pane(term, tmp_path, hostile_emulator):
    stream_file = tmp_path / "stream.bin"
    env = {
        "TERM": "xterm-256color",
        "AZTRIAGE_CONFIG": str(tmp_path / "none.toml"),
        "AZTRIAGE_AUTO_PROBE": "false",
        "AZTRIAGE_REACH_TIMEOUT": "2",
        **{f"XDG_{kind.upper()}_HOME": str(tmp_path / kind) for kind in ("data", "config", "state", "cache")},
    }
    console = [sys.executable, "-m", "tui.cli", *cli_connection(hostile_emulator)]
    term.start(["sh", "-c", 'sleep 0.5; exec "$@"', "sh", *console], env, unset=UNSET)
    # Every byte the console writes from its first frame on (it starts half a second after the pipe).
    term._run("pipe-pane", "-O", "-t", "main", f"cat >> {stream_file}")
    seen: list[str] = []

    # Inventory, then the detail panel of the VM in trouble (tags, health text, agent strings).
    _wait(term, seen, "erp-prod-eus-01", "row 1/30")
    _until(term, seen, "Enter", "esc back")
    _keys(term, seen, "PageDown", "PageDown", "End", "Escape")
    # Resource Health and Service Health, an event's updates and impacted VMs.
    _until(term, seen, "2", "Resource Health", "Service Health events")
    _keys(term, seen, "Enter", "PageDown", "Escape", "Tab", "Enter", "PageDown", "End", "Escape")
    # Connectivity: probe everything (hostile SSH banners and RDP replies), the evidence of one.
    _until(term, seen, "3", "PORT", "ENDPOINT")
    _until(term, seen, "a", "diagnosed", timeout=30)
    _keys(term, seen, "Enter", "PageDown", "Escape")
    # Recovery: the picker, one VM's scenarios.
    _keys(term, seen, "4", "Enter", "Escape")
    # The checklist: findings with the tenant's names and tags.
    _keys(term, seen, "5")
    _keys(term, seen, "Enter", "Escape")
    # Boot: read every serial log, open one, scroll down, right along the lines, to the end.
    _until(term, seen, "6", "a: read every log")
    _until(term, seen, "a", "logs read", timeout=30)
    _keys(term, seen, "Home")
    _until(term, seen, "Enter", "Serial log", " lines · ")
    _keys(term, seen, "PageDown", "PageDown", "Right", "Right", "Right", "End", "Home")
    _keys(term, seen, "/", pause=1)
    term.type("MARKUP")
    _keys(term, seen, "Enter", "n", "n")
    # Its repair commands (facts from the log, quoted) and its screenshot (drawn from the log).
    _keys(term, seen, "m", "PageDown", "v", "v")  # v: the next view (the log, then the screenshot)
    _keys(term, seen, "Escape", "Escape", "1", "q", pause=1)
    term.wait_exit(timeout=30)
    time.sleep(0.5)

    stream = stream_file.read_bytes().decode("utf-8", errors="strict")
    assert len(stream) > 10_000, "the pipe caught too little of the console's output"
    found = terminal_violations(stream, allowed=OWN_OSC)
    assert found == [], f"{len(found)} raw controls in the stream, e.g.: {found[:8]}"
    assert foreign_csi(stream) == []
    screens = "\n".join(seen)
    # The walk saw hostile text: payloads made visible, in the panes and near the end of a serial
    # log (the lines of every code point, one by one), and a screenshot drawn from that log.
    assert "␛]52;" in screens and "<U+" in screens, "the walk showed none of the estate's payloads made visible"
    assert "bidi-202e: <<U+202E>>" in screens, "the walk did not reach the end of a hostile serial log"
    assert "What to type on the rescue VM" in screens, "the walk did not reach the repair commands"
    assert "screenshot.bmp failed" not in screens, "the screenshot of a hostile log could not be drawn"
    # Markup from data stands as written: its brackets are on the screen.
    assert "[bold red]MARKUP" in screens or "[@click=app.quit]MARKUP" in screens or "[reverse blink]MARKUP" in screens
