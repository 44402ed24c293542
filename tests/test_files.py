"""Every file aztriage writes for the operator is replaced atomically and private (backend/files.py)."""

from __future__ import annotations

import os
import stat

import pytest

from backend.files import write_private_atomically
from backend.probe import write_rdp_file


def test_a_write_is_private_and_replaces_the_old_file(tmp_path):
    path = tmp_path / "new-dir" / "report.md"
    write_private_atomically(path, "first\n")
    write_private_atomically(path, b"second\r\n")
    assert path.read_bytes() == b"second\r\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["report.md"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text("theme = 'nord'\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_private_atomically(path, "theme = 'dracula'\n")
    assert path.read_text() == "theme = 'nord'\n"
    assert os.listdir(tmp_path) == ["config.toml"]


def test_an_rdp_file_keeps_its_crlf_lines_and_is_private(tmp_path):
    path = write_rdp_file(tmp_path, "web/01", "203.0.113.7", 50022, "azureuser")
    assert path.name == "web_01.rdp"
    text = path.read_bytes()
    assert b"full address:s:203.0.113.7:50022\r\n" in text and b"username:s:azureuser\r\n" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
