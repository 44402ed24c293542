"""Hostile text for the tests: payloads of every class of issue 14, a hostile estate built
from the demo estate, and checks over what a program wrote to a terminal.

Shared by the console tests and the CLI tests. The API:

- ``CLASSES``: class name -> payload string. Terminal sequences (CSI, OSC 0 title, OSC 8
  hyperlink, OSC 52 clipboard, DCS, 8-bit CSI/OSC), one entry per C0 control, DEL and C1
  control (every code point U+0000-U+001F, U+007F, U+0080-U+009F), every bidi control
  (U+202A-U+202E, U+2066-U+2069), zero-width and other invisible characters, and Rich /
  Textual markup (a style, a link to ``file://``, ``@click`` actions).
- ``payload(tag)``: one string holding every class, marked with ``tag`` so a test can find
  where it landed; ``payload_line(tag)`` the same for single-line fields.
- ``MARKUP_STYLE_TEXT`` / ``MARKUP_LINK_TEXT``: the literal text a safe output shows.
- ``hostile_estate(now=None)``: the demo estate with ``payload(...)`` appended to every
  field that carries untrusted text (tags, subscription names, Resource Health and Service
  Health text, NSG rule descriptions, VM agent strings, OS name, serial logs).
- ``terminal_violations(text)``: what in a terminal output stream did not come from the
  program's own escape sequences (any OSC/DCS/APC/PM/SOS, C1, stray C0, bidi, invisible
  characters); empty when the stream is safe.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

C0 = [*range(0x00, 0x20)]
DEL = 0x7F
C1 = [*range(0x80, 0xA0)]
BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
# Zero-width and other invisible format characters: ZWSP, ZWNJ, ZWJ, LRM, RLM, word joiner,
# BOM, Arabic letter mark, soft hyphen; line and paragraph separators.
INVISIBLE = [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF, 0x061C, 0x00AD, 0x2028, 0x2029]

MARKUP_STYLE_TEXT = "[bold red]STYLED[/bold red]"
MARKUP_LINK_TEXT = "[link=file:///tmp/aztriage-pwned]LINKED[/link]"
MARKUP_CLICK_TEXT = "[@click=app.quit]QUIT[/]"
MARKUP_SCREENSHOT_TEXT = "[@click=app.screenshot('pwned.svg','.')]SHOT[/]"

SEQUENCES = {
    "csi-clear": "\x1b[2J\x1b[H",
    "csi-sgr": "\x1b[31;1mRED\x1b[0m",
    "osc0-title": "\x1b]0;pwned-title\x07",
    "osc8-link": "\x1b]8;;file:///etc/passwd\x1b\\OSC8\x1b]8;;\x1b\\",
    "osc52-clipboard": "\x1b]52;c;cm0gLXJmIH4K\x07",
    "dcs": "\x1bP+q544e\x1b\\",
    "c1-csi": "\x9b2J",
    "c1-osc": "\x9d0;c1-title\x9c",
    "bel": "ding\x07",
    "bs": "abc\x08\x08\x08XYZ",
    "cr": "shown\roverwritten",
}
MARKUP = {
    "markup-style": MARKUP_STYLE_TEXT,
    "markup-link": MARKUP_LINK_TEXT,
    "markup-click": MARKUP_CLICK_TEXT,
    "markup-screenshot": MARKUP_SCREENSHOT_TEXT,
    "markup-unbalanced": "[/] [/bold] [",
}

CLASSES: dict[str, str] = {
    **SEQUENCES,
    **{f"c0-{cp:02x}": f"<{chr(cp)}>" for cp in C0},
    "del": f"<{chr(DEL)}>",
    **{f"c1-{cp:02x}": f"<{chr(cp)}>" for cp in C1},
    **{f"bidi-{cp:04x}": f"<{chr(cp)}>" for cp in BIDI},
    **{f"invisible-{cp:04x}": f"<{chr(cp)}>" for cp in INVISIBLE},
    **MARKUP,
}

# What a payload must never make a terminal do, as code points of the stream.
FORBIDDEN_CODE_POINTS = frozenset([*C1, *BIDI, *INVISIBLE])


def payload(tag: str = "") -> str:
    """Every class in one string; the markup comes first so it shows in a narrow column."""
    head = f"{tag} {MARKUP_STYLE_TEXT} {MARKUP_LINK_TEXT} " if tag else f"{MARKUP_STYLE_TEXT} {MARKUP_LINK_TEXT} "
    return head + " ".join(CLASSES.values())


def payload_line(tag: str = "") -> str:
    """``payload`` without newline (some single-line fields are split on it)."""
    return payload(tag).replace("\n", "")


# --- a hostile estate ---------------------------------------------------------------------------

_STATUS_TEXT = ("title", "summary", "reasonType", "detailedStatus")
_EVENT_TEXT = ("title", "summary", "header")


def _append(doc: dict, key: str, tag: str) -> None:
    if isinstance(doc.get(key), str):
        doc[key] = doc[key] + " " + payload(tag)


def hostile_estate(now: datetime | None = None) -> dict:
    """The demo estate with every class of payload in every field that carries untrusted text."""
    from backend.emulator.estates import load_estate

    estate = load_estate("demo", now=now)
    for sub in estate["subscriptions"]:
        _append(sub, "displayName", "sub")
    for doc in [*estate["resources"], *estate.get("resourceGroups", [])]:
        tags = doc.get("tags")
        if isinstance(tags, dict):
            for key in list(tags):
                tags[key] = f"{tags[key]} {payload_line('tag')}"
            tags["note " + payload_line("tagkey")[:40].replace("<", "(")] = payload_line("tagnote")
        props = doc.get("properties") or {}
        for rule in [*(props.get("securityRules") or ()), *(props.get("defaultSecurityRules") or ())]:
            rule_props = rule.setdefault("properties", {})
            rule_props["description"] = (rule_props.get("description") or "") + " " + payload("nsg")
        view = props.get("instanceView") or {}
        for key in ("osName", "osVersion"):
            _append(view, key, "os")
        agent = view.get("vmAgent") or {}
        _append(agent, "vmAgentVersion", "agentversion")
        for status in agent.get("statuses") or ():
            _append(status, "message", "agent")
        for ext in view.get("extensions") or ():
            for status in ext.get("statuses") or ():
                _append(status, "message", "ext")
    for status in estate["availabilityStatuses"]:
        props = status["properties"]
        for key in _STATUS_TEXT:
            _append(props, key, "health")
        if "recentlyResolved" in props:
            _append(props["recentlyResolved"], "unavailableSummary", "resolved")
        for action in props.get("recommendedActions") or ():
            _append(action, "action", "action")
    for event in estate["events"]:
        props = event["properties"]
        for key in _EVENT_TEXT:
            _append(props, key, "event")
        for impact in props.get("impact") or ():
            _append(impact, "impactedService", "service")
            for region in impact.get("impactedRegions") or ():
                for update in region.get("updates") or ():
                    _append(update, "summary", "update")
    for guest in estate["guest"].values():
        log = guest.get("serial_log")
        if isinstance(log, str):
            lines = log.split("\n")
            middle = len(lines) // 2
            hostile = [f"[   1.000000] serial {name}: {text}" for name, text in CLASSES.items() if "\n" not in text]
            guest["serial_log"] = "\n".join([*lines[:middle], *hostile, *lines[middle:], "[  99.000000] serial all: " + payload_line("serial")])
    return estate


# --- the terminal output stream -----------------------------------------------------------------

# A program's own escape sequences: CSI (parameters, intermediates, one final byte) and the
# two-byte ESC sequences (save/restore cursor, keypad modes, charset selection).
_OWN_SEQUENCE = re.compile(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|\x1b[78=>]|\x1b[()][0-9A-Za-z]")


def terminal_violations(text: str) -> list[str]:
    """Everything in a decoded terminal output stream that a data payload could have put
    there: any ESC that does not start a CSI or a two-byte sequence (so every OSC -- title,
    hyperlink, clipboard -- DCS, APC, PM, SOS), C0 other than CR, LF and TAB (which
    drivers use to move), DEL, C1, bidi and invisible characters. Each item says what and where."""
    rest = _OWN_SEQUENCE.sub("", text)
    out = []
    for at, ch in enumerate(rest):
        cp = ord(ch)
        if ch == "\x1b" or cp == DEL or (cp < 0x20 and ch not in "\r\n\t") or cp in FORBIDDEN_CODE_POINTS or unicodedata.category(ch) in ("Cf", "Cs"):
            out.append(f"U+{cp:04X} near {rest[max(0, at - 30) : at + 30]!r}")
    return out
