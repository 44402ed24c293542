"""Helpers shared by the recovery tests: an emulator of their own (fast clock,
guest listeners), plans and runs against it, and its counters."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import backend.emulator.guest  # noqa: F401  (the emulators started here run their guests' RDP/SSH listeners)
from tests.support import emulator_control, start_emulator

# Fast enough that a redeploy (300 s in Azure) takes a tenth of a second.
ACCELERATION = 3000


def own_emulator(acceleration: float = ACCELERATION):
    return start_emulator("demo", acceleration=acceleration)


def reset(emu) -> None:
    emulator_control(emu, "POST", "/_emulator/reset")


def writes(emu) -> int:
    return emulator_control(emu, "GET", "/_emulator/stats")["writes"]


def operations(emu) -> list[dict[str, Any]]:
    return emulator_control(emu, "GET", "/_emulator/operations")


def operation_counts(emu) -> Counter:
    """(kind, resource id) -> how many operations were started on it."""
    return Counter((op["kind"], op["resource_id"].lower()) for op in operations(emu))


def resources(emu, rtype: str) -> list[dict[str, Any]]:
    return emulator_control(emu, "GET", f"/_emulator/resources?type={rtype}")["resources"]


def vm_doc(emu, name: str) -> dict[str, Any]:
    dump = emulator_control(emu, "GET", "/_emulator/resources?type=Microsoft.Compute/virtualMachines")
    for doc in dump["resources"]:
        if doc["name"] == name:
            view = dump["instanceViews"].get(doc["id"]) or {}
            return {"doc": doc, "view": view}
    raise KeyError(name)


def power(emu, name: str) -> str:
    for status in vm_doc(emu, name)["view"].get("statuses") or ():
        if status["code"].startswith("PowerState/"):
            return status["code"].split("/", 1)[1]
    return "unknown"


def guest_ports(emu, vm_id: str) -> dict[str, str]:
    guests = emulator_control(emu, "GET", "/_emulator/guest")
    for key, facts in (guests.get("vms") or {}).items():
        if key.lower() == vm_id.lower():
            return dict(facts.get("ports") or {})
    return {}


def cli_env(home: Path, emu) -> dict[str, str]:
    import os

    env = dict(os.environ)
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        env[var] = str(home / sub)
    env.pop("AZTRIAGE_RECOVERY_KILL_AT", None)
    return env


def cli_connection(emu) -> list[str]:
    """The demo on the test's running emulator: its guests answer where its port map says."""
    return ["--demo", "--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--auth", "none"]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def arm_request(emu, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request on the emulator's ARM surface, as another operator or tool would send it."""
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=emu.ca_file)
    data = json.dumps(body).encode() if body is not None else None
    sep = "&" if "?" in path else "?"
    req = urllib.request.Request(
        f"{emu.endpoint}{path}{sep}api-version=2020-05-01",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": "Bearer test-token"},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def put_lock(emu, scope: str, name: str, level: str = "ReadOnly") -> None:
    status, _ = arm_request(emu, "PUT", f"{scope}/providers/Microsoft.Authorization/locks/{name}", {"properties": {"level": level}})
    assert status in (200, 201), status


def journal_path(home: Path) -> Path:
    """The journal of the `aztriage` processes run with `cli_env(home, ...)`."""
    return home / "data" / "aztriage" / "journal.sqlite3"


def kill_when_accepted(proc: subprocess.Popen, home: Path, step: str, timeout: float) -> None:
    """kill -9 the `recover` process `proc` as soon as its journal holds the long-running
    operation of step `step` as accepted by Azure; fails if that never happened."""
    token = None
    deadline = time.monotonic() + timeout
    while token is None and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with sqlite3.connect(journal_path(home), timeout=1) as db:
                row = db.execute("SELECT outputs FROM steps WHERE key=?", (step,)).fetchone()
        except sqlite3.Error:
            continue
        if row:
            token = json.loads(row[0]).get("operations", {}).get(step) or None
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert token, f"the {step} was never journaled as accepted"


def operation_on(emu, kind: str, vm_name: str) -> dict[str, Any]:
    """The one operation of `kind` the emulator has seen on the VM."""
    vm_id = vm_doc(emu, vm_name)["doc"]["id"].lower()
    (op,) = [o for o in operations(emu) if o["kind"] == kind and o["resource_id"].lower() == vm_id]
    return op
