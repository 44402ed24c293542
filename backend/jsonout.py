"""JSON for people and scripts: what ``json.dumps(obj, indent=2, default=str)`` writes,
made by orjson (a 10,000-VM inventory: about 0.1 s instead of about 3 s).

The text is the standard library's in content: two-space indentation, anything orjson
does not know (and datetimes and dataclasses, as before) written as ``str(value)``,
non-string keys as strings, and every non-ASCII character escaped as ``\\uXXXX`` the way
``ensure_ascii`` does, so a hostile name can put no raw control or bidi character on a
terminal that prints the output.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import orjson

_NATIVE = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS
_OPTIONS = _NATIVE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def _json_escapes(error: UnicodeError) -> tuple[str, int]:
    """An encoding error handler: the characters ASCII cannot encode, escaped as ``ensure_ascii`` does."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "".join(map(_escape, error.object[error.start : error.end])), error.end


# The encoder finds the non-ASCII characters in C and hands each run to the handler. A
# regular expression looked at every character in Python's: over the 48 MB of 10,000 VMs,
# about 0.45 s where this takes 0.1 s when a single character is not ASCII, and 0.8 s where
# this takes 0.5 s when every VM's name holds three.
_JSON_ESCAPES = "aztriage.json-escapes"
codecs.register_error(_JSON_ESCAPES, _json_escapes)


def _default(value: Any) -> str:
    return str(value)


def dumps_bytes(obj: Any, *, native: bool = False) -> bytes:
    """Indented JSON as ASCII bytes (no trailing newline). ``native``: dataclasses and
    datetimes inside are written by orjson as ``backend.models.to_jsonable`` makes them
    (fields in order, ISO 8601), not as ``str()``."""
    try:
        out = orjson.dumps(obj, default=_default, option=_NATIVE if native else _OPTIONS)
    except orjson.JSONEncodeError:  # what orjson refuses (an integer past 64 bits, ...): the slow way
        from backend.models import to_jsonable

        return json.dumps(to_jsonable(obj) if native else obj, indent=2, default=str).encode("ascii")
    if out.isascii():
        return out
    # Non-ASCII can only be inside strings: escaping it there keeps the JSON valid.
    return out.decode("utf-8").encode("ascii", _JSON_ESCAPES)


def dumps(obj: Any, *, native: bool = False) -> str:
    return dumps_bytes(obj, native=native).decode("ascii")


def write_listing(write: Callable[[bytes | memoryview], object], doc: dict[str, Any], items: Iterable[Any], *, native: bool = False, batch: int = 100) -> None:
    """Write to ``write`` the bytes of ``dumps_bytes(doc, native=native)`` where the list under
    ``doc``'s first key (empty in ``doc``) holds ``items``, a batch at a time: neither every
    item nor the whole text is held at once. For 10,000 VMs that is about 48 MB of text and
    more of dicts that the process would touch for the first time (some 30,000 page faults,
    about 0.1 s of CPU); a batch's memory is used again by the next.

    A batch is written as the document ``{KEY: batch}``, whose items are indented as the
    whole document's are: the text between its brackets is the whole document's text of
    those items."""
    key = next(iter(doc))
    if doc[key] != []:
        raise ValueError(f"the first key of the document, {key!r}, must hold an empty list")
    rest = dumps_bytes(doc, native=native)
    opening = b"{\n  " + dumps_bytes(key) + b": ["
    if not rest.startswith(opening + b"]"):  # a key that is not a string, ...
        raise ValueError(f"{key!r} does not open the document's text")
    rest = rest[len(opening) + 1 :]  # after the list: ",\n  ...}" or "\n}"
    pending = iter(items)
    chunk = list(islice(pending, batch))
    if not chunk:
        write(opening + b"]" + rest)
        return
    closing = b"\n  ]\n}"
    separator = opening
    while chunk:
        text = dumps_bytes({key: chunk}, native=native)  # '{\n  "KEY": [\n    {\n      ...\n    },\n    ...\n  ]\n}'
        write(separator)
        write(memoryview(text)[len(opening) : -len(closing)])
        separator = b","
        chunk = list(islice(pending, batch))
    write(b"\n  ]" + rest)
