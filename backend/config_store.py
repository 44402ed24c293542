"""Writing one top-level setting back to the operator's config file (the
theme picked in the console), without disturbing anything else in it.

The file is edited as text, not regenerated: comments, order and every other
key stay as the operator wrote them. Only the line `key = …` at the top level
(before the first [table]) is replaced, or added before the first table when
there is none. The result is parsed again and must equal the old settings
with just that key changed; otherwise nothing is written. The new file is
written next to the old one with mode 0600 and renamed over it, so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from backend.config import ConfigError, config_path
from backend.files import write_private_atomically

_TABLE_HEADER = re.compile(r"^\s*\[")


def _key_line(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf"^\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*=")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string without non-ASCII escapes is a valid TOML basic string.
        return json.dumps(value, ensure_ascii=True)
    raise TypeError(f"cannot write {type(value).__name__} as a config value")


def edited_text(text: str, key: str, value: Any) -> str:
    """`text` with the top-level `key` set to `value` (pure; raises ConfigError when it cannot)."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file is not valid TOML ({exc}); {key} was not saved") from None
    line = f"{key} = {_toml_value(value)}"
    lines = text.splitlines(keepends=True)
    pattern = _key_line(key)
    first_table = next((i for i, raw in enumerate(lines) if _TABLE_HEADER.match(raw)), len(lines))
    found = next((i for i in range(first_table) if pattern.match(lines[i])), None)
    if found is not None:
        ending = "\n" if lines[found].endswith("\n") else ""
        lines[found] = line + ending
    else:
        insert_at = first_table
        if insert_at > 0 and not lines[insert_at - 1].endswith("\n"):
            lines[insert_at - 1] += "\n"
        new = [line + "\n"]
        if insert_at < len(lines):
            new.append("\n")
        lines[insert_at:insert_at] = new
    result = "".join(lines)
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        after = None
    if after != {**before, key: value}:
        raise ConfigError(f"the config file's layout keeps aztriage from changing {key} safely; set {key} = {_toml_value(value)} by hand")
    return result


def save_setting(key: str, value: Any, path: Path | str | None = None) -> Path:
    """Set one top-level key in the config file (created if missing); returns the file written.

    Raises ConfigError (one line) when the file cannot be read, parsed, edited safely or written."""
    file = Path(path) if path is not None else config_path()
    if file.is_symlink():
        file = file.resolve()  # keep the operator's link; change the file it points to
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigError(f"config file {file} cannot be read: {exc.strerror}; {key} was not saved") from None
    try:
        new_text = edited_text(text, key, value)
    except ConfigError as exc:
        raise ConfigError(f"config file {file}: {exc}") from None
    try:
        write_private_atomically(file, new_text)
    except OSError as exc:
        raise ConfigError(f"config file {file} cannot be written: {exc.strerror}; {key} was not saved") from None
    return file
