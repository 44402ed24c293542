"""Fixtures of the recreate and rescue scenario modules (a pytest plugin named in
conftest.py): an emulator of each module's own, the estate it starts from, and
a rig (the real adapter and a fresh journal) per test on the reset emulator."""

from __future__ import annotations

import itertools

import pytest

from tests.recovery_support import own_emulator, reset
from tests.rescue_support import estate, fresh_rig


@pytest.fixture(scope="module")
def emu():
    """Module scope: each test module that uses it gets an emulator of its own."""
    e = own_emulator()
    yield e
    e.stop()


@pytest.fixture
def recovery_journal(emu, tmp_path, monkeypatch):
    """The Recovery pane's journal in this test's own folder, on the reset emulator;
    the console's other files (exports, last-known addresses) in a data home of its own."""
    from tui.screens.recovery import RecoveryScreen

    reset(emu)
    path = tmp_path / "journal.sqlite3"
    monkeypatch.setattr(RecoveryScreen, "journal_path", path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return path


@pytest.fixture
def home(tmp_path, emu):
    """The home of this test's `aztriage` processes (tests.recovery_support.cli_env), on the reset emulator."""
    reset(emu)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def before(emu):
    reset(emu)
    return estate(emu)


@pytest.fixture
def rigs(emu, before, tmp_path, monkeypatch):
    """Makes rigs: `async with rigs() as rig:`, each on the reset emulator with a new journal."""
    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "3")
    made = itertools.count(1)
    return lambda: fresh_rig(emu, tmp_path / f"journal-{next(made)}.sqlite3")


@pytest.fixture
async def rig(rigs):
    async with rigs() as r:
        yield r


@pytest.fixture
async def reset_backend(emu):
    """The real adapter (one retry) on this module's emulator, reset first."""
    from backend.azure.backend import AzureBackend
    from tests.support import demo_settings

    reset(emu)
    b = AzureBackend(demo_settings(emu), retry_total=1)
    yield b
    await b.close()
