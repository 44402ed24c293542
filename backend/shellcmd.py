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
