"""Long-running operations on an accelerated clock.

An operation is created with a nominal Azure duration; it ends at
``started + duration / acceleration``. Its effect is applied by the store when
that time has passed (lazily at the start of each request and on a background
tick), never because somebody polled it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Nominal Azure durations, in seconds.
DURATIONS: dict[str, float] = {
    "start": 30,
    "restart": 40,
    "poweroff": 30,
    "deallocate": 60,
    "redeploy": 300,
    "reapply": 30,
    "performmaintenance": 300,
    "runcommand": 40,
    "vm.put": 90,
    "vm.patch": 90,
    "vm.delete": 60,
    "disk.put": 20,
    "disk.patch": 20,
    "disk.delete": 20,
    "snapshot.put": 20,
    "snapshot.patch": 20,
    "snapshot.delete": 20,
    "extension.put": 30,
    "extension.patch": 30,
    "extension.delete": 30,
    "rg.delete": 60,
    "securityrule": 20,
    # Azure: a connection reset re-negotiates its tunnels in about a minute; a gateway reset reboots
    # its active instance and fails over to the standby (a few minutes); a public IP write is quick.
    "connection.reset": 60,
    "gateway.reset": 300,
    "publicip.put": 15,
    # A NIC write (an IP configuration's public IP, its NSG) is long-running too, and quick.
    "nic.put": 10,
    # So is an NSG's CreateOrUpdate (upgrade-public-ip creates one for a Standard IP).
    "nsg.put": 15,
    # Azure Backup: the trigger operation ends once the job is queued (the job itself runs on, backend/emulator/backup.py);
    # a restore point of every disk is an instant snapshot set.
    "backup.trigger": 20,
    "restorepoint.put": 60,
    "restorepoint.delete": 30,
}
DEFAULT_DURATION = 30.0

TERMINAL = ("Succeeded", "Failed", "Canceled")


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ARM-style ISO 8601 UTC timestamp."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_operation_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Operation:
    id: str
    method: str
    path: str
    kind: str  # start, restart, ..., create, update, delete
    resource_id: str
    subscription: str
    namespace: str
    location: str
    started: float
    ends: float
    status: str = "InProgress"
    end_time: float | None = None
    error: dict | None = None
    result: Any = None  # body returned by the Location URL once Succeeded (runCommand output)
    forced: str | None = None  # "Failed" / "Canceled" from a fault
    forced_error: dict | None = None
    group: str | None = None  # operations in the same group preempt each other
    on_success: Callable[[Operation], None] | None = field(default=None, repr=False)
    on_failure: Callable[[Operation], None] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def status_body(self) -> dict:
        """Body of the Azure-AsyncOperation URL."""
        body: dict[str, Any] = {"name": self.id, "status": self.status, "startTime": iso(self.started)}
        if self.done:
            body["endTime"] = iso(self.end_time)
        if self.error and self.status != "Succeeded":
            body["error"] = self.error
        if self.status == "Succeeded" and self.result is not None:
            body["properties"] = {"output": self.result}
        return body

    def record(self) -> dict:
        """The shape of GET /_emulator/operations entries."""
        out = {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
            "resource_id": self.resource_id,
            "status": self.status,
            "started": self.started,
            "ends": self.ends,
        }
        if self.end_time is not None:
            out["end_time"] = self.end_time
        if self.error:
            out["error"] = self.error
        return out
