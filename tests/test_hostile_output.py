"""Nothing an attacker writes reaches the operator's terminal raw, through any command.

The hostile estate (backend/emulator/estates/hostile.py) puts payloads of every class
(CSI, OSC 0/8/52, DCS, C1, BEL, BS, CR, DEL, NUL, other C0, bidi, zero-width, line
separators, Rich markup, Markdown/HTML, CSV formulas) in every field that carries
text from the tenant, Azure, the guest or a probed peer. Every sub-command the parser
knows runs against it in every --format the parser offers; what it writes to stdout
and stderr must hold no byte 0x00-0x1f other than newline and tab, no DEL, no C1, no
bidi, zero-width or other format character (Unicode Cc, Cf, Zl, Zp): the classes a
terminal obeys, checked as classes, not as the payload strings.
"""

from __future__ import annotations

import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from backend.emulator.estates import hostile
from tests.recovery_support import cli_connection, cli_env
from tests.support import start_emulator

REPO = Path(__file__).resolve().parents[1]
AZTRIAGE = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]

# Every sub-command, with the argument lists that make it show the hostile estate's text.
# A command the parser knows and this table does not fails test_every_command_is_covered.
COMMANDS: dict[str, list[list[str]]] = {
    "inventory": [[]],
    "health": [[]],
    "check": [[], ["--list-rules"]],
    "report": [["--vm", "api-dev-01", "--vm", "files-shared-01", "--vm", "iis-test-01"]],
    "probe": [["--all", "--timeout", "1", "--attempts", "1"]],
    "bootlog": [["--vm", "api-dev-01"], ["--vm", "pg-dev-01"], ["--vm", "iis-test-01"]],
    "recover": [
        ["--vm", "api-dev-01", "--scenario", "rescue", "--dry-run"],
        ["--vm", "web-prod-01", "--scenario", "restart", "--dry-run"],
        ["--vm", "jump-prod-01", "--scenario", "fix-nsg", "--dry-run"],
        ["--vm", "jump-prod-01", "--scenario", "fix-nsg", "--disable-rule", "--dry-run"],
    ],
    "timeline": [["--vm", "jump-prod-01", "--since", "30d"], ["--vm", "dev-spot-01", "--since", "90d"]],
    # A VM from Resource Graph by name and by address (no tenant prose in its columns).
    "find": [["api-dev-01"], ["127.10.3.13"]],
    # Not Available VMs, active events and maintenance from Resource Graph (health text in it).
    "broken": [[]],
    "runs": [[]],
    "keys": [[]],
    # Long-running servers: what they print besides their data is covered here (help); what
    # they serve is the console (tests of serve and of the console's output stream).
    "serve": [["--help"]],
    # Full screen: what its screen writes for the hostile guest's bytes is checked on a pty in
    # tests/test_serial_console_view.py; here its help and its refusals (one line on stderr).
    "console": [["--help"], ["--vm", "dev-spot-01"]],
    "emulator": [["serve", "--help"]],
}

# (command, argument list) whose output shows text from the estate: it must show some of it
# made visible (so the check above is not passing on output that never saw a payload).
SHOWS_HOSTILE_TEXT = {"broken", "inventory", "health", "check", "report", "probe", "bootlog", "timeline"}


def _parser_commands() -> dict[str, object]:
    import argparse

    from tui.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the parser has no sub-commands")


def _formats() -> list[str]:
    from tui.cli import global_options

    (fmt,) = [a for a in global_options()._actions if "--format" in a.option_strings]
    return list(fmt.choices)


FORMATS = _formats()


def terminal_commands(data: bytes) -> list[str]:
    """Every byte or code point in ``data`` that a terminal would obey or hide: C0 other
    than newline and tab, DEL, C1, and every character of Unicode categories Cc, Cf (bidi,
    zero-width), Zl and Zp. Output that is not UTF-8 is itself a finding."""
    found = [f"byte 0x{b:02x}" for b in set(data) if (b < 0x20 and b not in (0x09, 0x0A)) or b == 0x7F]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [*found, f"not UTF-8: {exc}"]
    found += [
        f"U+{ord(ch):04X} ({unicodedata.category(ch)})"
        for ch in set(text)
        if ch not in "\n\t" and (0x80 <= ord(ch) <= 0x9F or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"))
    ]
    return sorted(found)


@pytest.mark.parametrize("cls", hostile.CONTROL_CLASSES)
def test_the_check_finds_every_control_class_raw(cls):
    rng = random.Random(cls)
    for _ in range(20):
        raw = hostile.payload(cls, rng)
        assert terminal_commands(("ok " + raw + " ok\n").encode()), f"{cls}: {raw!r} would pass unseen"


def test_every_command_is_covered():
    assert set(_parser_commands()) == set(COMMANDS), "a sub-command without a hostile-output test: add it to COMMANDS"


@pytest.fixture(scope="module")
def emu():
    e = start_emulator("hostile")
    yield e
    e.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile-home")


def _run(emu, home: Path, argv: list[str]) -> subprocess.CompletedProcess:
    env = cli_env(home, emu)
    env["AZTRIAGE_REACH_TIMEOUT"] = "2"
    env["COLUMNS"] = "200"
    return subprocess.run([*AZTRIAGE, *argv, *cli_connection(emu)], cwd=REPO, env=env, capture_output=True, timeout=300, check=False)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("command", "variant"), [(c, i) for c, vs in COMMANDS.items() for i in range(len(vs))])
def test_no_terminal_control_reaches_the_terminal(emu, home, command, variant, fmt):
    args = COMMANDS[command][variant]
    argv = ["--format", fmt, command, *args]
    proc = _run(emu, home, argv)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode in (0, 1, 2, 3), proc.stderr.decode(errors="replace")
    assert terminal_commands(proc.stdout) == [], f"stdout of {' '.join(argv)}"
    assert terminal_commands(proc.stderr) == [], f"stderr of {' '.join(argv)}"
    if proc.returncode == 2:  # a format this command does not offer: one clear line
        assert proc.stdout == b"" and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert b"--format" in proc.stderr
    elif command in SHOWS_HOSTILE_TEXT and "--list-rules" not in args:
        out = proc.stdout.decode()
        # The sanitizer's visible forms: Control Pictures (ESC -> U+241B) and <U+XXXX>.
        assert "\u241b" in out or "<U+" in out or "\\u241b" in out, f"{' '.join(argv)} showed none of the estate's hostile text"
