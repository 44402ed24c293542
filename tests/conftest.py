"""Shared fixtures: a private home for every test session, and the emulator.

Tests drive the real adapter against the real emulator over HTTPS: no mocks
of the Azure SDK."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone

import pytest

# Every file aztriage writes (journal, config, logs, last-known IPs) lands in a
# throwaway home for this test process, never in the developer's.
# Set once per process: test modules import helpers from tests.conftest, which runs this
# module a second time under another name, and both must agree on the home.
_HOME = os.environ.get("AZTRIAGE_TEST_HOME") or tempfile.mkdtemp(prefix="aztriage-test-home-")
os.environ["AZTRIAGE_TEST_HOME"] = _HOME
for _var, _sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
    os.environ[_var] = os.path.join(_HOME, _sub)
os.environ.pop("AZURE_CLIENT_ID", None)

FIXED_NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def test_home() -> str:
    return _HOME


def start_emulator(spec: str = "demo", **kwargs):
    from backend.emulator.estates import load_estate
    from backend.emulator.server import EmulatorThread

    estate = load_estate(spec, now=kwargs.pop("now", FIXED_NOW), subscriptions=kwargs.pop("subscriptions", None), seed=kwargs.pop("seed", 0))
    return EmulatorThread(estate, **kwargs).start()


@pytest.fixture(scope="session")
def emulator():
    """The demo estate, shared by the tests of one worker. Tests that inject
    faults or change state reset it afterwards (see `fresh_emulator`)."""
    emu = start_emulator("demo")
    yield emu
    emu.stop()


@pytest.fixture
def fresh_emulator(emulator):
    """The shared emulator, reset to its initial estate after the test."""
    yield emulator
    emulator_control(emulator, "POST", "/_emulator/reset")


def emulator_control(emu, method: str, path: str, body=None):
    """Call an /_emulator/ control route (plain urllib, trusting the emulator's CA only)."""
    import json
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=emu.ca_file)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(emu.endpoint + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def arm_call(emu, method: str, path: str, body=None) -> tuple[int, dict]:
    """(status, JSON body) of an ARM call to the emulator, error bodies included."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=emu.ca_file)
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(emu.endpoint + path, data=data if method != "GET" else None, method=method,
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer test"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    return status, (json.loads(raw) if raw else {})


def demo_settings(emu, **overrides):
    from backend.demo import settings_for
    from backend.settings import ConnectionSettings

    return settings_for(emu, ConnectionSettings(**overrides))


@pytest.fixture
async def backend(emulator):
    from backend.azure.backend import AzureBackend

    b = AzureBackend(demo_settings(emulator), retry_total=3)
    yield b
    await b.close()


# --- snapshot tests (pytest-textual-snapshot) ----------------------------------------
# SVGs live in the top-level snapshots/<test module>/ folder. Neither syrupy 4.8 nor the
# plugin has an option for the folder; snap_compare looks SVGImageExtension up in its
# module when it runs, so a subclass that overrides dirname is put in its place.
import pytest_textual_snapshot as _textual_snapshot  # noqa: E402

SNAPSHOT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "snapshots")


class TopLevelSVGExtension(_textual_snapshot.SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location) -> str:
        return os.path.join(SNAPSHOT_DIR, test_location.basename)


_textual_snapshot.SVGImageExtension = TopLevelSVGExtension
