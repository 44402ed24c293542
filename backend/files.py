"""Writing a file so that a reader, or a crash, sees the old file or the new one and
never half of one; every file aztriage writes for the operator goes through here
(config, last-known addresses, exports, reports, screenshots, .rdp files)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private_atomically(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text as UTF-8, written as given: no newline translation):
    a 0600 temporary file in the same directory (created 0700 when missing), fsynced,
    renamed over it. On any failure the temporary file is removed and the error raised."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
