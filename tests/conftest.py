"""Shared fixtures: a private home for every test session, and the emulator.

Tests drive the real adapter against the real emulator over HTTPS: no mocks
of the Azure SDK. Helpers the tests share are in tests/support.py (and the
other *_support.py modules); fixtures are here and in the plugin modules
listed below, so no test module imports a fixture, nothing imports this file,
and importing it does no work."""

from __future__ import annotations

import os
import tempfile

import pytest

# The helper modules' asserts explain themselves like the tests' own (registered before they are imported).
pytest.register_assert_rewrite(
    "tests.support",
    "tests.recovery_support",
    "tests.rescue_support",
    "tests.kill_points",
    "tests.tui_support",
    "tests.browser_support",
    "tests.tmux_support",
    "tests.fork_cli",
)

from tests.support import demo_settings, emulator_control, start_emulator  # noqa: E402

pytest_plugins = ["tests.rescue_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    # Every file aztriage writes (journal, config, logs, last-known IPs) lands in a
    # throwaway home for this test run, never in the developer's. xdist workers inherit
    # the controller's environment, so the whole run shares one home.
    home = os.environ.get("AZTRIAGE_TEST_HOME") or tempfile.mkdtemp(prefix="aztriage-test-home-")
    os.environ["AZTRIAGE_TEST_HOME"] = home
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        os.environ[var] = os.path.join(home, sub)
    os.environ.pop("AZURE_CLIENT_ID", None)
    # Consoles the tests spawn (tmux, serve, CLI) do not probe in the background unless a test asks.
    os.environ.setdefault("AZTRIAGE_AUTO_PROBE", "false")
    # Every --demo command of the suite starts from the built estate (they share one home); the tests
    # of the demo's saved state (test_demo_state.py) turn it back on.
    os.environ.setdefault("AZTRIAGE_DEMO_STATE", "fresh")
    _snapshots_in_the_top_level_folder()


@pytest.fixture(scope="session")
def test_home() -> str:
    return os.environ["AZTRIAGE_TEST_HOME"]


@pytest.fixture(scope="session")
def emulator():
    """The demo estate, shared by the tests of one worker. Tests that inject
    faults or change state reset it afterwards (see `fresh_emulator`)."""
    emu = start_emulator("demo")
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def hostile_emulator():
    """The hostile estate (backend/emulator/estates/hostile.py): payloads of every class of
    issue 14 in every field others write. Read-only: no test changes it."""
    emu = start_emulator("hostile")
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def graph_emulator():
    """The demo estate with a Resource Graph quota no test spends (tests that measure the
    quota start their own), for the tests that only read through Resource Graph."""
    emu = start_emulator("demo", graph_quota=(10_000, 1.0))
    yield emu
    emu.stop()


@pytest.fixture
def fresh_emulator(emulator):
    """The shared emulator, reset to its initial estate after the test."""
    yield emulator
    emulator_control(emulator, "POST", "/_emulator/reset")


@pytest.fixture
async def backend(emulator):
    from backend.azure.backend import AzureBackend

    b = AzureBackend(demo_settings(emulator), retry_total=3)
    yield b
    await b.close()


@pytest.fixture
def term(tmp_path):
    """A private tmux server with an 80x24 pane (tests/tmux_support.py), killed after the test."""
    from tests.tmux_support import Tmux

    t = Tmux(tmp_path)
    yield t
    t.kill()


# --- snapshot tests (pytest-textual-snapshot) ----------------------------------------
# SVGs live in the top-level snapshots/<test module>/ folder. Neither syrupy 4.8 nor the
# plugin has an option for the folder; snap_compare looks SVGImageExtension up in its
# module when it runs, so a subclass that overrides dirname is put in its place.


def _snapshots_in_the_top_level_folder() -> None:
    import pytest_textual_snapshot as textual_snapshot

    snapshot_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "snapshots")

    class TopLevelSVGExtension(textual_snapshot.SVGImageExtension):
        @classmethod
        def dirname(cls, *, test_location) -> str:
            return os.path.join(snapshot_dir, test_location.basename)

    textual_snapshot.SVGImageExtension = TopLevelSVGExtension
