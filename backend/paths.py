"""Where aztriage keeps its files: the user's data, config, state, cache and log
directories (platformdirs, so XDG_* variables are honoured). Directories are
0700 and files 0600: the journal and config may describe production estates."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "aztriage"


def _ensure(path: str) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkdir's mode covers the last directory only; the log dir sits in state/aztriage/log,
    # so every aztriage directory on the way is made private as well.
    for d in (p, *(q for q in p.parents if q.name == APP)):
        try:
            os.chmod(d, 0o700)
        except OSError:
            pass
    return p


def data_dir() -> Path:
    return _ensure(platformdirs.user_data_dir(APP))


def config_dir() -> Path:
    return _ensure(platformdirs.user_config_dir(APP))


def state_dir() -> Path:
    return _ensure(platformdirs.user_state_dir(APP))


def cache_dir() -> Path:
    return _ensure(platformdirs.user_cache_dir(APP))


def log_dir() -> Path:
    return _ensure(platformdirs.user_log_dir(APP))


def private_file(path: Path) -> Path:
    """Create (if needed) a file only the user can read and write."""
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path
