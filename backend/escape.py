r"""Text written into a document format, escaped for that format: Markdown, CSV, file names.

Models hold only safe strings (``backend.safetext``: no control, bidi or invisible
character), but a safe string can still be *syntax* in the document it is written into:
a tenant's tag ``a | b`` adds a column to a Markdown table, ``<img src=x onerror=...>``
is raw HTML to a Markdown renderer, ``[x](javascript:...)`` is a link, and a CSV cell
``=HYPERLINK(...)`` is a formula a spreadsheet runs (OWASP "CSV injection"). Every
writer of such a document puts each piece of data through one of these:

- ``md_inline``: a value inside a Markdown line (table cell, bullet, heading, emphasis).
  Each character that can open Markdown syntax is backslash-escaped (CommonMark: a
  backslash-escaped ASCII punctuation character is always literal text): ``\ ` * _ [ ] < >
  | ~ &`` anywhere (``_`` only where it could delimit emphasis, so ``Standard_B2s`` stays
  readable), and ``# + - =`` or ``1.`` (an ordered list item) at the start. No HTML, link, image, emphasis, code
  span or table cell boundary can come from data; a newline becomes a space, so data
  cannot start a line (a heading, a list, a quote).
- ``md_code``: a value shown as an inline code span (a command to paste): the fence is one
  backtick longer than any run of backticks inside.
- ``csv_cell``: a cell that begins with ``=``, ``+``, ``-``, ``@``, tab or CR (after any
  leading spaces) gets a leading apostrophe, which spreadsheets show as text and never
  evaluate; the csv module's quoting does the rest.
- ``safe_filename``: a file-name part from data (a VM name): letters, digits, ``-_.``;
  anything else is ``_``, and it never starts with a dot (no ``..``, no hidden file).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CSV_FORMULA_STARTERS", "csv_cell", "md_code", "md_inline", "safe_filename"]

# Markdown syntax (CommonMark and GFM's tables and strikethrough) that data could open: anywhere
# in a line (an ``_`` inside a word cannot delimit emphasis), or at its start (heading, list
# item, setext underline). ``!`` and ``(`` only matter after an unescaped ``[``.
_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|^[#+\-=]")
_MD_LIST_NUMBER = re.compile(r"^(\d+)([.)])(?=\s|$)")
_NEWLINES = re.compile(r"[\r\n]+")


def md_inline(value: Any) -> str:
    """``value`` as literal text inside one Markdown line (``None`` and "" are ``-``)."""
    if value is None or value == "":
        return "-"
    text = _NEWLINES.sub(" ", str(value))
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    return _MD_LIST_NUMBER.sub(r"\1\\\2", text)


def md_code(value: Any) -> str:
    """``value`` as one inline code span, whatever backticks it holds."""
    text = _NEWLINES.sub(" ", str(value))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# OWASP: a cell whose first character is one of these is read as a formula (or, for tab and
# CR, is trimmed to one that is) by Excel, LibreOffice Calc or Google Sheets.
CSV_FORMULA_STARTERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text and never evaluates."""
    text = "" if value is None else str(value)
    if text.lstrip(" ").startswith(CSV_FORMULA_STARTERS):
        return "'" + text
    return text


def safe_filename(value: str, fallback: str = "vm") -> str:
    """A file-name part from data: no path separator, no ``..``, no hidden file."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in value).lstrip(".")
    return safe[:100] or fallback
