"""Demo mode: the local ARM emulator in a background thread, and connection
settings that point the real adapter at it."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from backend.settings import ConnectionSettings

# Long-running operations in the demo are polled this often (the emulator's clock runs fast).
DEMO_POLLING_INTERVAL = 0.1


def start_emulator(estate: str = "demo", *, subscriptions: int | None = None, seed: int = 0, now: datetime | None = None, **kwargs):
    """Build the estate and start an emulator thread; returns the running EmulatorThread."""
    from backend.emulator.estates import load_estate
    from backend.emulator.server import EmulatorThread

    doc = load_estate(estate, subscriptions=subscriptions, seed=seed, now=now)
    return EmulatorThread(doc, **kwargs).start()


def settings_for(emulator, base: ConnectionSettings | None = None) -> ConnectionSettings:
    base = base or ConnectionSettings()
    return dataclasses.replace(
        base,
        arm_endpoint=emulator.endpoint,
        ca_file=emulator.ca_file,
        auth="none",
        demo=True,
        polling_interval=DEMO_POLLING_INTERVAL if base.polling_interval is None else base.polling_interval,
    )


# --- the demo's state between commands ------------------------------------------------------------
# Each `aztriage ... --demo` command starts its own emulator; the demo estate's state is saved when a
# command ends and read when the next starts, so a flow that spans commands (a rescue that exits 3,
# then `recover --resume RUN_ID --operator-done`) works in the demo as it does against Azure.
# `aztriage emulator reset-demo` forgets it. AZTRIAGE_DEMO_STATE=fresh starts every command afresh.

DEMO_STATE_FILE = "demo-estate.json"


def demo_state_path():
    from backend.paths import data_dir

    return data_dir() / DEMO_STATE_FILE


def keeps_state(estate: str, seed: int) -> bool:
    import os

    return estate == "demo" and seed == 0 and os.environ.get("AZTRIAGE_DEMO_STATE", "").lower() != "fresh"


def start_kept_demo(seed: int = 0, **kwargs):
    """The demo estate as the last command left it (the built estate when none was saved, or the
    saved one cannot be read); returns the running EmulatorThread."""
    import json

    from backend.emulator.server import EmulatorThread

    path = demo_state_path()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or not doc.get("resources"):
        return start_emulator("demo", seed=seed, **kwargs)
    return EmulatorThread(doc, **kwargs).start()


def save_demo_state(emulator) -> None:
    """Write the estate as it stands (operations under way finished) for the next command."""
    import json

    from backend.files import write_private_atomically

    doc = emulator.call(emulator.store.export_estate)
    write_private_atomically(demo_state_path(), json.dumps(doc))


def reset_demo_state() -> bool:
    """Forget the saved demo state; True when there was one."""
    path = demo_state_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
