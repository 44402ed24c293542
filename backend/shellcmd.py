"""Commands the operator pastes, built so data can never become code.

aztriage suggests commands (repairs on a rescue VM) that contain facts read from
places other people control: a guest's serial log, a probed host, the tenant.
Such a fact goes into a command only as one quoted word, built here:

- ``sh(...)`` joins words for bash. Plain strings are quoted with ``shlex.quote``
  (one word whatever they hold); ``OP`` tokens (``&&``, ``||``, ``|``, a
  redirection) are written as they are and are only ever constants of ours.
  The result is a ``ShellCommand``: the text, and the words bash will see
  (``.words``), which tests compare with what ``shlex.split`` finds.
- ``ps_quote`` quotes one PowerShell argument (single quotes, ``'`` doubled).
- ``comment`` makes text safe after ``#``: one line, no control characters.

Facts are also checked against the exact shape they must have before they are
used (backend/bootdiag.py): quoting keeps the shell safe, the shape check
keeps the command meaningful (and sed/grep patterns literal).
"""

from __future__ import annotations

import re
import shlex
from typing import Self


class Op(str):
    """Shell syntax of ours (``&&``, ``|``, ``2>/dev/null``): written unquoted."""


AND = Op("&&")
OR = Op("||")
PIPE = Op("|")


class ShellCommand(str):
    """One line for bash, with the words it was built from (for tests and audits)."""

    words: tuple[str, ...]

    def __new__(cls, text: str, words: tuple[str, ...]) -> Self:
        made = super().__new__(cls, text)
        made.words = words
        return made


_UNSAFE_IN_COMMENT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def comment(text: str) -> str:
    """Text that stays a comment after ``#``: one line, no control characters."""
    return _UNSAFE_IN_COMMENT.sub(" ", text).strip()


def sh(*parts: str, note: str = "") -> ShellCommand:
    """A bash command line: every plain part is one quoted word, ``Op`` parts are syntax."""
    text_parts: list[str] = []
    words: list[str] = []
    for part in parts:
        if isinstance(part, Op):
            text_parts.append(str(part))
            words.extend(shlex.split(str(part)))
        else:
            text_parts.append(shlex.quote(part))
            words.append(part)
    text = " ".join(text_parts)
    if note:
        text += "   # " + comment(note)
    return ShellCommand(text, tuple(words))


def literal(text: str) -> ShellCommand:
    """A constant command line of ours (no data in it), with the words bash sees."""
    return ShellCommand(text, tuple(shlex.split(text, comments=True)))


_PS_QUOTES = re.compile("['\u2018\u2019\u201a\u201b]")  # PowerShell takes all four as a single quote


def ps_quote(word: str) -> str:
    """One PowerShell argument: single-quoted (no expansion), ``'`` doubled."""
    return "'" + _PS_QUOTES.sub(lambda m: m.group(0) * 2, word) + "'"


def sed_literal(text: str) -> str:
    """`text` as a literal in a sed basic regular expression delimited by ``|``."""
    return re.sub(r"([.\[\]*^$\\|])", r"\\\1", text)


# --- folding for a narrow screen -------------------------------------------------------------------
#
# A command the operator copies from an 80-column screen must paste back as the same command.
# A terminal copies what it shows, line by line, so a command that does not fit is folded the way
# a shell reads it back: between words with a line continuation, a word longer than a line inside
# itself only where the shell joins it again, and its comment goes on lines of its own above it,
# each starting with `#` (a comment's second line pasted alone would be run as a command).

POSIX = "posix"
POWERSHELL = "powershell"
_CONTINUE = {POSIX: "\\", POWERSHELL: "`"}
_SEPARATORS = "/?&#"  # an ARM id's, a URL's, a Linux path's
_PS_BARE = re.compile(r"[A-Za-z0-9/._:@=,+-]+")  # nothing PowerShell reads specially in an argument
_WINDOWS_SEPARATORS = "\\/|,;"  # a registry or Windows path's, a firewall rule's fields


def cells(text: str) -> int:
    """Terminal cells the text takes (wide East Asian characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def break_token(token: str, width: int, separators: str = _SEPARATORS) -> list[str]:
    """A token (an id, a URL, a path) in pieces of at most `width` cells, each piece but the first
    starting at one of its separators (/ ? & #) or after a space, so no name, GUID or address inside
    it is cut; a piece with no such place in reach is cut at the width (nothing else fits). The
    pieces put together are the token."""
    width = max(1, width)
    pieces: list[str] = []
    rest = token
    while cells(rest) > width:
        cut = 0
        for i in range(1, len(rest)):
            if cells(rest[:i]) > width:
                break
            if rest[i] in separators or rest[i - 1] == " ":
                cut = i
        if cut == 0:
            cut = 1
            while cut < len(rest) and cells(rest[: cut + 1]) <= width:
                cut += 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    return pieces


def wrap_words(text: str, width: int, indent: str = "") -> list[str]:
    """Prose in lines of at most `width` cells, broken between words; a word longer than a line
    (an id) is broken before a separator (break_token), never inside a name or an address."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        room = width - cells(indent)
        if cells(word) > room:
            if line:
                lines.append(indent + line)
                line = ""
            *whole, last = break_token(word, room)
            lines += [indent + piece for piece in whole]
            line = last
            continue
        if line and cells(line) + 1 + cells(word) > room:
            lines.append(indent + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line or not lines:
        lines.append(indent + line)
    return lines


def _scan(command: str, shell: str) -> tuple[list[tuple[str, list[str]]], str]:
    """The command's words (each with the quote state before every character: "", "'" or '"')
    and its trailing comment ("" if none), read as the shell reads them."""
    escape = "\\" if shell == POSIX else "`"
    words: list[tuple[str, list[str]]] = []
    text, states = "", list[str]()
    quote = ""
    i = 0
    while i < len(command):
        ch = command[i]
        if not quote and ch.isspace():
            if text:
                words.append((text, states))
                text, states = "", list[str]()
            i += 1
            continue
        if not quote and ch == "#" and not text:
            return words, command[i:]
        states.append(quote)
        text += ch
        if ch == escape and quote != "'" and i + 1 < len(command):
            i += 1
            states.append(quote)
            text += command[i]
        elif quote == "" and ch in "'\"":
            quote = ch
        elif ch == quote:
            quote = ""
        i += 1
    if text:
        words.append((text, states))
    return words, ""


def _split_word(word: str, states: list[str], width: int, shell: str) -> list[str] | None:
    """A word longer than a line, in lines the shell joins back into the one word; None when the
    shell has no way to (an unquoted PowerShell word)."""
    if shell == POSIX:
        # bash removes a backslash-newline anywhere outside single quotes, and the next line
        # goes on with the same word: so that line starts at column 0. Inside single quotes the
        # quote is closed before it and opened again after it.
        lines: list[str] = []
        start = 0
        while cells(word[start:]) > width:
            room = width - 2  # the continuation, and a closing quote
            piece = break_token(word[start:], room)[0]
            end = start + len(piece)
            while end > start + 1 and (word[end - 1] == "\\" and states[end - 1] != "'"):
                end -= 1  # never between an escape and what it escapes
            if states[end] == "'" and word[end - 1] != "'":
                lines.append(word[start:end] + "'\\")
                word = word[:end] + "'" + word[end:]
                states = states[:end] + ["'"] + states[end:]
            else:
                lines.append(word[start:end] + "\\")
            start = end
        lines.append(word[start:])
        return lines
    if _PS_BARE.fullmatch(word):
        word = "'" + word + "'"  # a bare word PowerShell passes as it is: the same as quoted
    quote = word[0]
    if quote not in "'\"" or len(word) < 2 or word[-1] != quote:
        return None
    # PowerShell: a quoted argument becomes a parenthesised sum of quoted pieces, a line break
    # after each +.
    inner = word[1:-1]
    pieces: list[str] = []
    rest = inner
    room = max(4, width - 6)
    while cells(rest) > room:
        cut = len(break_token(rest, room, _WINDOWS_SEPARATORS)[0])
        # Never between the two quotes of a doubled '' (or after an escaping backtick).
        while cut > 1 and (rest[cut - 1] == "`" or (quote == "'" and rest[cut - 1] == "'" and rest[cut : cut + 1] == "'")):
            cut -= 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    out = [("(" if i == 0 else "") + quote + piece + quote + (" +" if i < len(pieces) - 1 else ")") for i, piece in enumerate(pieces)]
    return out


def fold_command(line: str, width: int, shell: str = POSIX) -> list[str]:
    """One command line in lines of at most `width` cells that the shell reads back as the same
    command: its comment first, on `#` lines of its own; then the command, broken between words
    with a continuation (` \\` for bash, `` ` `` for PowerShell), continuation lines indented."""
    indent = line[: len(line) - len(line.lstrip())]
    words, note = _scan(line.strip(), shell)
    out: list[str] = []
    if note:
        out += wrap_words(note.lstrip("#").strip(), width, indent + "# ")
    if not words:
        return out or [line]
    more = indent + "  "
    mark = " " + _CONTINUE[shell]
    lines: list[str] = []
    current = indent
    for n, (word, states) in enumerate(words):
        lead = current if current.strip() else ""
        candidate = f"{current} {word}" if lead else current + word
        last = n == len(words) - 1
        if cells(candidate) + (0 if last else cells(mark)) <= width:
            current = candidate
            continue
        if current.strip():
            lines.append(current + mark)
            current = more
            candidate = current + word
            if cells(candidate) + (0 if last else cells(mark)) <= width:
                current = candidate
                continue
        split = _split_word(word, states, width - cells(current), shell)
        if split is None:
            current = current + word  # a PowerShell word no shell can fold: left whole, longer than the line
            continue
        if shell == POSIX:
            lines.append(current + split[0])
            lines += split[1:-1]
            current = split[-1]  # the word goes on at column 0: bash joins it back
        else:
            lines.append(current + split[0])
            lines += [more + "  " + piece for piece in split[1:-1]]
            current = more + "  " + split[-1]
    lines.append(current)
    return out + lines


def fold_text(text: str, width: int, shell: str = POSIX) -> str:
    """Instructions for a screen `width` cells wide: prose (a line that does not start with a
    space) wrapped between words, each command (an indented line) folded by fold_command."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            out.append("")
        elif line[:1].isspace():
            out += fold_command(line, width, shell)
        else:
            out += wrap_words(line, width)
    return "\n".join(out)
