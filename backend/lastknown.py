"""The last public IP and FQDN resolution seen for every VM, and what changed.

An operator's stale ``.rdp`` file or a stale DNS record points at the address
a VM had last time; this store remembers that address so a change can be
reported ("IP changed from A to B"). One JSON file under the user's data
directory, mode 0600, replaced atomically (a crash never leaves half a file).
Keyed by the ARM endpoint and the VM's lower-cased id, so the demo's VMs
never mix with a real estate's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from backend.files import write_private_atomically
from backend.gcpause import gc_paused
from backend.models import Vm

log = logging.getLogger("aztriage.lastknown")

FILE_NAME = "last-known-endpoints.json"
VERSION = 1


@dataclass(frozen=True)
class EndpointChange:
    vm_id: str
    vm_name: str
    what: str  # "public IP" or "FQDN <name>"
    old: tuple[str, ...]
    new: tuple[str, ...]
    seen_at: str | None  # when the old value was recorded (ISO)

    def describe(self) -> str:
        old = ", ".join(self.old) or "none"
        new = ", ".join(self.new) or "none"
        when = f" (last seen {self.seen_at[:16].replace('T', ' ')} UTC)" if self.seen_at else ""
        return f"{self.what} changed from {old} to {new}{when}"


@dataclass(frozen=True)
class Snapshot:
    """What one VM looked like: its public IPs and how its FQDNs resolved."""

    public_ips: tuple[str, ...]
    resolved: tuple[tuple[str, tuple[str, ...]], ...]  # (fqdn, addresses), sorted

    def to_json(self, now: str) -> dict[str, Any]:
        return {"public_ips": list(self.public_ips), "resolved": {k: list(v) for k, v in self.resolved}, "seen_at": now}


def resolution_table(resolved: Mapping[str, Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
    """Lower-case FQDN -> its addresses, sorted: what ``snapshot`` looks a VM's names up in."""
    return {k.lower(): tuple(sorted(v)) for k, v in (resolved or {}).items()}


def snapshot(vm: Vm, resolved: Mapping[str, Iterable[str]] | None = None, *, table: Mapping[str, tuple[str, ...]] | None = None) -> Snapshot:
    """``table`` (from ``resolution_table``) instead of ``resolved`` when many VMs are
    snapshotted against the same resolutions: made once, not once per VM (a background
    probe of 10,000 VMs spent 2 s of the console's event loop remaking it)."""
    fqdns = sorted({p.fqdn.lower() for nic in vm.nics for p in nic.public_ips if p.fqdn})
    if table is None:
        table = resolution_table(resolved)
    return Snapshot(
        public_ips=tuple(sorted(vm.public_ips)),
        resolved=tuple((f, table[f]) for f in fqdns if f in table),
    )


def default_path() -> Path:
    from backend.paths import data_dir

    return data_dir() / FILE_NAME


class LastKnownStore:
    def __init__(self, path: Path | str | None = None, *, scope: str = "default"):
        self.path = Path(path) if path else default_path()
        self.scope = scope

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as fh:
                doc = orjson.loads(fh.read())
        except FileNotFoundError:
            return {"version": VERSION, "scopes": {}}
        except (OSError, ValueError):
            # A damaged file must not stop a probe; it is rewritten on the next record.
            log.warning("ignoring unreadable %s", self.path, exc_info=True)
            return {"version": VERSION, "scopes": {}}
        if not isinstance(doc, dict) or not isinstance(doc.get("scopes"), dict):
            return {"version": VERSION, "scopes": {}}
        return doc

    def entries(self) -> dict[str, dict[str, Any]]:
        return dict(self._read()["scopes"].get(self.scope, {}))

    def get(self, vm_id: str) -> dict[str, Any] | None:
        return self.entries().get(vm_id.lower())

    def compare(self, vm: Vm, resolved: Mapping[str, Iterable[str]] | None = None) -> list[EndpointChange]:
        return self._changes(vm, snapshot(vm, resolved), self.get(vm.id))

    @staticmethod
    def _changes(vm: Vm, now: Snapshot, before: dict[str, Any] | None) -> list[EndpointChange]:
        if not before:
            return []
        out: list[EndpointChange] = []
        seen_at = before.get("seen_at")
        old_ips = tuple(sorted(before.get("public_ips") or ()))
        # A VM that lost its address (deallocated with a dynamic IP) has not "changed" yet:
        # the change shows once it has a new one.
        if old_ips and now.public_ips and old_ips != now.public_ips:
            out.append(EndpointChange(vm.id, vm.name, "public IP", old_ips, now.public_ips, seen_at))
        old_resolved = {k: tuple(sorted(v)) for k, v in (before.get("resolved") or {}).items()}
        for fqdn, addresses in now.resolved:
            old = old_resolved.get(fqdn)
            if old and addresses and old != addresses:
                out.append(EndpointChange(vm.id, vm.name, f"FQDN {fqdn}", old, addresses, seen_at))
        return out

    def record(self, vms: Iterable[Vm], resolved: Mapping[str, Iterable[str]] | None = None, *, now: datetime | None = None) -> dict[str, list[EndpointChange]]:
        """Compare every VM with its record, then store what is seen now. Returns the changes by VM id.
        Safe to call from a worker thread (the console's background probe does: at 10,000 VMs the
        comparison and the file's fsync held its event loop 70-85 ms): one read-compare-write at a
        time in this process. The collector is paused meanwhile: the file's tree (10,000 entries)
        has no reference cycles, and in a worker thread its allocations set off collections of
        the console's whole young heap, up to 140 ms with the loop waiting for the GIL."""
        with _WRITING, gc_paused():
            return self._record(vms, resolved, now)

    def _record(self, vms: Iterable[Vm], resolved: Mapping[str, Iterable[str]] | None, now: datetime | None) -> dict[str, list[EndpointChange]]:
        stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        doc = self._read()
        scope = doc["scopes"].setdefault(self.scope, {})
        changes: dict[str, list[EndpointChange]] = {}
        table = resolution_table(resolved)
        for vm in vms:
            snap = snapshot(vm, table=table)
            key = vm.id.lower()
            found = self._changes(vm, snap, scope.get(key))
            if found:
                changes[vm.id] = found
            if not snap.public_ips and not snap.resolved:
                continue  # keep the last address a stopped VM had
            entry = snap.to_json(stamp)
            if found:
                # Remember what it was, so the change stays explainable after this run.
                entry["previous"] = {c.what: list(c.old) for c in found}
            elif scope.get(key, {}).get("previous") and scope[key].get("public_ips") == entry["public_ips"]:
                entry["previous"] = scope[key]["previous"]
            scope[key] = entry
        self._write(doc)
        return changes

    def seed(self, vm_id: str, public_ips: Iterable[str], *, seen_at: datetime | None = None, overwrite: bool = False) -> None:
        """Record an address for a VM (the demo's "last time"); an existing record wins unless `overwrite`."""
        with _WRITING:
            self._seed(vm_id, public_ips, seen_at=seen_at, overwrite=overwrite)

    def _seed(self, vm_id: str, public_ips: Iterable[str], *, seen_at: datetime | None, overwrite: bool) -> None:
        doc = self._read()
        scope = doc["scopes"].setdefault(self.scope, {})
        key = vm_id.lower()
        if key in scope and not overwrite:
            return
        stamp = (seen_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        scope[key] = {"public_ips": sorted(public_ips), "resolved": {}, "seen_at": stamp}
        self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        doc["version"] = VERSION
        # orjson: the background probe of a 10,000-VM estate writes this file after every load,
        # on the console's event loop (json.dumps with indentation took 0.1-0.3 s of it).
        write_private_atomically(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


_WRITING = threading.Lock()  # record and seed read, change and write the file: one at a time


def scope_for(settings: Any) -> str:
    """One scope per ARM endpoint (the demo's emulator port changes every run, so it gets one fixed scope)."""
    if getattr(settings, "demo", False):
        return "demo"
    return getattr(settings, "endpoint", "default")
