"""Untrusted text made safe to show, once, where models are built.

The guest OS, any host that answers a probe, the tenant and Azure itself write
text that aztriage shows in a terminal (tags, names, health and event text,
agent strings, SSH/RDP answers, serial-log lines, error messages). In a
terminal, some code points are commands, not text: C0 controls (ESC starts
CSI/OSC/DCS sequences that clear the screen, set the window title, write the
clipboard or make hyperlinks; BEL, BS and CR move or overwrite), DEL, the C1
controls U+0080-U+009F (8-bit CSI, OSC, DCS, ST), and characters that change
what a line seems to say without being seen (bidi overrides and isolates,
zero-width characters, line and paragraph separators, lone surrogates).

Every such code point -- every character of Unicode categories Cc, Cf, Cs,
Zl and Zp -- is replaced by a visible stand-in: C0 controls by their Control
Pictures (ESC -> U+241B ``␛``, BEL -> ``␇``), DEL by ``␡``, everything else by
``<U+XXXX>``. An escape sequence thus stays on the screen as text (``␛[2J``,
``␛]52;c;...␇``) and does nothing; cutting it anywhere (column truncation)
cannot produce a control. ``safe_line`` is for single-line fields (nothing
of the kind survives, newline and tab included); ``safe_text`` keeps newline
and tab for multi-line text (CR LF becomes LF, a lone CR is shown).

Documents from outside (ARM JSON, an SDK model) are made safe as a whole by
``safe_json`` where they come in: every string in them, keys included, is a
line, except the values of ``MULTILINE_KEYS`` (summaries, descriptions,
messages), which are text. ``json_is_clean`` tells from the raw bytes of a
JSON answer that no string in it can hold anything to make safe (the common
case: a whole list page is then taken as it is, at the cost of two byte scans).

Clean strings -- nearly all of them -- are returned as they are: one
``str.isprintable()`` (a C loop; it is False for every code point above and
for a few harmless ones such as NO-BREAK SPACE, which then take the slow
path and come back unchanged).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = [
    "FORBIDDEN_CATEGORIES",
    "MULTILINE_KEYS",
    "is_safe_line",
    "is_safe_text",
    "json_is_clean",
    "safe_json",
    "safe_line",
    "safe_opt",
    "safe_text",
    "visible",
]

T = TypeVar("T")

# Cc: C0, DEL, C1. Cf: bidi controls and isolates, zero-width space/joiners, word joiner,
# BOM, Arabic letter mark, tag characters, ... Cs: lone surrogates (they cannot even be
# encoded for the terminal). Zl/Zp: U+2028/U+2029, line breaks for some renderers.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(cp: int) -> str:
    """The stand-in shown for one forbidden code point."""
    if cp < 0x20:
        return chr(0x2400 + cp)  # Control Pictures: ␀ … ␟ (ESC is ␛)
    if cp == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{cp:04X}>"


class _Table(dict):
    """A ``str.translate`` table filled on demand: each code point is classified once."""

    def __init__(self, keep: str) -> None:
        super().__init__()
        self._keep = frozenset(map(ord, keep))

    def __missing__(self, cp: int) -> Any:
        if cp not in self._keep and unicodedata.category(chr(cp)) in FORBIDDEN_CATEGORIES:
            value: Any = visible(cp)
        else:
            value = cp  # unchanged
        self[cp] = value
        return value


_LINE = _Table("")
_TEXT = _Table("\n\t")


def safe_line(value: str) -> str:
    """A single-line field (a name, a tag, a title, a banner): no control of any kind."""
    if value.isprintable():
        return value
    return value.translate(_LINE)


def safe_text(value: str) -> str:
    """Multi-line text (a summary, an update, a log): newline and tab stay, nothing else."""
    if value.isprintable():
        return value
    if "\r" in value:
        value = value.replace("\r\n", "\n")
    return value.translate(_TEXT)


def safe_opt(value: T) -> T:
    """``safe_line`` for a value that may be None or not a string (left as it is)."""
    if value.__class__ is str:
        if value.isprintable():  # type: ignore[attr-defined]
            return value
        return value.translate(_LINE)  # type: ignore[attr-defined]
    return value


def is_safe_line(value: str) -> bool:
    """True when ``value`` holds no forbidden code point (not even newline or tab)."""
    return value.isprintable() or all(unicodedata.category(c) not in FORBIDDEN_CATEGORIES for c in value)


def is_safe_text(value: str) -> bool:
    """True when ``value`` holds no forbidden code point other than newline and tab."""
    return value.isprintable() or all(c in "\n\t" or unicodedata.category(c) not in FORBIDDEN_CATEGORIES for c in value)


# Keys whose string values are prose that may run over several lines (Resource Health and
# Service Health summaries and updates, NSG rule descriptions, operation and run-command
# messages): newline and tab stay there. Every other string of a document is one line.
MULTILINE_KEYS = frozenset({"summary", "description", "detailedStatus", "unavailableSummary", "unavailabilitySummary", "message", "lastOperationMessage"})


def safe_json(doc: Any, key: str | None = None) -> Any:
    """A JSON document (dicts, lists, strings, numbers; any Mapping or SDK model becomes a
    dict) with every string made safe: keys and values are lines, the values of
    ``MULTILINE_KEYS`` are text. Returns a new document; the original is left as it is
    (it may be what aztriage sends back to Azure)."""
    cls = doc.__class__
    if cls is str:
        if doc.isprintable():
            return doc
        return safe_text(doc) if key in MULTILINE_KEYS else doc.translate(_LINE)
    if cls is list or cls is tuple:
        return [safe_json(v, key) for v in doc]
    if cls is not dict and not isinstance(doc, Mapping):
        return doc
    out = {}
    for k, v in doc.items():
        vc = v.__class__
        if vc is str:
            if not v.isprintable():
                v = safe_text(v) if k in MULTILINE_KEYS else v.translate(_LINE)
        elif vc is dict or vc is list or (vc is not int and vc is not float and vc is not bool and v is not None):
            v = safe_json(v, k)
        if k.__class__ is str and not k.isprintable():
            k = k.translate(_LINE)
        out[k] = v
    return out


# JSON escapes that can stand for a control or any other code point; \", \\ and \/ cannot.
_RISKY_ESCAPE = re.compile(rb'\\[^"\\/]')


def json_is_clean(raw: bytes) -> bool:
    """True when no string in this JSON text can hold a control, bidi or invisible
    character: no escape that could write one (JSON writes C0 only as escapes), no DEL,
    and either pure ASCII or, once decoded, printable apart from the whitespace between
    tokens. False only means "walk it" (``safe_json``); it never lets a forbidden
    character through."""
    if b"\x7f" in raw:
        return False
    if b"\\" in raw and _RISKY_ESCAPE.search(raw.replace(b"\\\\", b"")):  # escaped backslashes apart
        return False
    if raw.isascii():
        return True
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable()
