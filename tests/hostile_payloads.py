"""Hostile text for the tests: the payload classes and a check over what a program wrote to
a terminal.

The payloads have one source, the hostile estate (``backend/emulator/estates/hostile.py``):
it lives in the emulator because the emulator may not import tests; the tests import it, and
every test that needs hostile data runs against that estate (``start_emulator("hostile")``,
the ``hostile_emulator`` fixture) rather than building its own. Re-exported here:

- ``CLASSES``: class name -> generator of payloads of that class (``payload(cls, rng)``);
  ``CONTROL_CLASSES``: the ones a terminal obeys; ``RICH_MARKUP``: markup payloads, shown
  as they are written when they are not parsed.
- ``EVERY_CODE_POINT``: every C0, DEL, C1, bidi and invisible code point by name.

Here: ``terminal_violations(text)``, what in a terminal output stream did not come from the
program's own escape sequences; empty when the stream is safe.
"""

from __future__ import annotations

import re
import unicodedata

from backend.emulator.estates.hostile import BIDI, CLASSES, CONTROL_CLASSES, EVERY_CODE_POINT, INVISIBLE, RICH_MARKUP, hostile_line, payload

__all__ = ["CLASSES", "CONTROL_CLASSES", "EVERY_CODE_POINT", "FORBIDDEN_CODE_POINTS", "RICH_MARKUP", "hostile_line", "payload", "terminal_violations"]

DEL = 0x7F
# What a payload must never make a terminal do, as code points of the stream (C0 and DEL are
# checked apart: the program's own sequences start with ESC).
FORBIDDEN_CODE_POINTS = frozenset([*range(0x80, 0xA0), *map(ord, BIDI), *map(ord, INVISIBLE)])

# A program's own escape sequences: CSI (parameters, intermediates, one final byte) and the
# two-byte ESC sequences (save/restore cursor, keypad modes, charset selection).
_OWN_SEQUENCE = re.compile(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|\x1b[78=>]|\x1b[()][0-9A-Za-z]")


def terminal_violations(text: str, allowed: re.Pattern[str] | None = None) -> list[str]:
    """Everything in a decoded terminal output stream that a data payload could have put
    there: any ESC that does not start a CSI or a two-byte sequence (so every OSC -- title,
    hyperlink, clipboard -- DCS, APC, PM, SOS), every C0 but LF (a terminal's line discipline
    writes LF as CR LF: that pair is a newline; a lone CR returns to the line's start and a TAB
    jumps to a tab stop), DEL, C1, bidi and invisible characters. ``allowed`` removes more of
    the program's own sequences first (Textual's OSC 22 pointer shape). Each item says what and where."""
    rest = _OWN_SEQUENCE.sub("", text).replace("\r\n", "\n")
    if allowed is not None:
        rest = allowed.sub("", rest)
    out = []
    for at, ch in enumerate(rest):
        cp = ord(ch)
        if ch == "\x1b" or cp == DEL or (cp < 0x20 and ch != "\n") or cp in FORBIDDEN_CODE_POINTS or unicodedata.category(ch) in ("Cf", "Cs", "Zl", "Zp"):
            out.append(f"U+{cp:04X} near {rest[max(0, at - 30) : at + 30]!r}")
    return out
