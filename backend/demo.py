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
