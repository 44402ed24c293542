"""What a VM's disks can be restored from (restore-disk's ``--source``): the snapshots of its disks
and its restore points, newest first. The CLI's plan and the console's Recovery pane both ask
``restore_sources``; each source says which of the VM's disks it holds (``os`` or a LUN, as
``--disk`` takes them) and what a new disk of each is made from (the snapshot itself, or the disk
restore point of that disk in the restore point).

Three reads per subscription, whatever the number of VMs: the subscription's snapshots, its
restore point collections, then each collection of this VM with its restore points
(``$expand=restorePoints``). A snapshot of a disk the VM no longer has, or a restore point none
of whose disks the VM still has, is left out: restore-disk restores a disk from a copy of itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.adapter import RecoveryBackend
from backend.mapping import parse_time
from backend.models import ResourceId, Vm
from backend.safetext import safe_json

SNAPSHOT, RESTORE_POINT = "snapshot", "restore-point"


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.lower().rstrip("/") == b.lower().rstrip("/"))


@dataclass(frozen=True)
class SourceDisk:
    """One disk of the VM a source holds."""

    disk: str  # what --disk takes: "os" or the LUN ("0", "1", ...)
    disk_id: str  # the VM's disk
    disk_name: str
    source_id: str  # what the new disk is made from: the snapshot, or the disk restore point

    @property
    def label(self) -> str:
        return "OS disk" if self.disk == "os" else f"LUN {self.disk}"


@dataclass(frozen=True)
class RestoreSource:
    """A snapshot or a restore point the VM's disks can be restored from (safe text throughout)."""

    kind: str  # SNAPSHOT or RESTORE_POINT
    id: str  # what --source takes
    name: str
    created: datetime | None
    state: str  # provisioning state, lower-case: succeeded, creating, failed, ...
    disks: tuple[SourceDisk, ...]
    consistency: str | None = None  # restore points: ApplicationConsistent, CrashConsistent

    @property
    def ready(self) -> bool:
        """A disk can be made from it now (a restore point still being created, or failed, cannot)."""
        return self.state == "succeeded"

    def disk(self, which: str | int) -> SourceDisk | None:
        """The entry for --disk `which` ("os", a LUN), or None when this source does not hold it."""
        key = str(which).strip().lower().removeprefix("lun")
        return next((d for d in self.disks if d.disk == key), None)

    @property
    def label(self) -> str:
        """One line for a picker: kind, name, when, what it holds, and why it cannot be used yet."""
        parts = [f"{'snapshot' if self.kind == SNAPSHOT else 'restore point'} {self.name}"]
        if self.created is not None:
            parts.append(self.created.strftime("%Y-%m-%d %H:%M UTC"))
        if self.consistency:
            parts.append(self.consistency.removesuffix("Consistent").lower() + "-consistent")
        parts.append(", ".join(d.label for d in self.disks))
        if not self.ready:
            parts.append(self.state or "state unknown")
        return " · ".join(parts)


def _vm_disks(vm: Vm) -> dict[str, tuple[str, str]]:
    """disk id (lower) -> (os or LUN, name) of the VM's managed disks."""
    out = {}
    for d in vm.disks:
        if d.id:
            out[d.id.lower()] = ("os" if d.lun is None else str(d.lun), d.name)
    return out


def _source(kind: str, doc: dict[str, Any], disks: tuple[SourceDisk, ...], consistency: str | None = None) -> RestoreSource:
    """What a snapshot's and a restore point's documents both say: id, name, when made, state."""
    props = doc.get("properties") or {}
    return RestoreSource(
        kind=kind,
        id=str(doc.get("id") or ""),
        name=str(doc.get("name") or ""),
        created=parse_time(props.get("timeCreated")),
        state=str(props.get("provisioningState") or "").lower(),
        disks=disks,
        consistency=consistency,
    )


def snapshot_source(doc: dict[str, Any], vm: Vm) -> RestoreSource | None:
    """A snapshot document as a source of one of `vm`'s disks (None: it is of no disk of the VM)."""
    props = doc.get("properties") or {}
    of = str(((props.get("creationData") or {}).get("sourceResourceId")) or "")
    held = _vm_disks(vm).get(of.lower().rstrip("/"))
    if held is None:
        return None
    return _source(SNAPSHOT, doc, (SourceDisk(held[0], of, held[1], str(doc.get("id") or "")),))


def restore_point_source(doc: dict[str, Any], vm: Vm) -> RestoreSource | None:
    """A restore point document as a source of `vm`'s disks it captured (None: it holds none of them)."""
    props = doc.get("properties") or {}
    storage = ((props.get("sourceMetadata") or {}).get("storageProfile")) or {}
    mine = _vm_disks(vm)
    disks = []
    for entry in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or ())]:
        disk_id = str(((entry.get("managedDisk") or {}).get("id")) or "")
        point = str(((entry.get("diskRestorePoint") or {}).get("id")) or "")
        held = mine.get(disk_id.lower().rstrip("/"))
        if held is not None and point:
            disks.append(SourceDisk(held[0], disk_id, held[1], point))
    if not disks:
        return None
    disks.sort(key=lambda d: (d.disk != "os", int(d.disk) if d.disk.isdigit() else 0))
    return _source(RESTORE_POINT, doc, tuple(disks), consistency=props.get("consistencyMode"))


async def restore_point_documents(backend: RecoveryBackend, vm_id: str) -> list[dict[str, Any]]:
    """Every restore point of every collection whose source is the VM `vm_id`, as ARM sends them."""
    out: list[dict[str, Any]] = []
    for rpc in await backend.list_restore_point_collections(ResourceId.parse(vm_id).subscription_id):
        if not _same(((rpc.get("properties") or {}).get("source") or {}).get("id"), vm_id):
            continue
        full = await backend.get_restore_point_collection(str(rpc.get("id") or ""), restore_points=True)
        out.extend((full or {}).get("properties", {}).get("restorePoints") or ())
    return out


async def restore_sources(backend: RecoveryBackend, vm: Vm) -> list[RestoreSource]:
    """The snapshots of `vm`'s disks and its restore points, newest first (BackendError when
    Azure cannot be read)."""
    out: list[RestoreSource] = []
    for doc in safe_json(await backend.list_snapshots(vm.subscription_id)):
        source = snapshot_source(doc, vm)
        if source is not None:
            out.append(source)
    for doc in safe_json(await restore_point_documents(backend, vm.id)):
        source = restore_point_source(doc, vm)
        if source is not None:
            out.append(source)
    out.sort(key=lambda s: (s.created is None, -(s.created.timestamp() if s.created else 0), s.name))
    return out
