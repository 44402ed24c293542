"""Releasing what a run kept: `aztriage runs --release RUN_ID`.

A run keeps its safety nets until the operator says they are no longer
needed: its ledger marks them "keep" (kept until released). Releasing
deletes those and nothing else, each checked again in Azure first:

- a snapshot the run took, when it still carries the run's tag;
- a disk copy the run made, when it carries the run's tag and is attached
  to no VM (a copy swapped in as a VM's OS disk is marked "in-use": that
  VM's disk, never deleted);
- a temporary NSG rule fix-nsg made, when its description still names the
  run (one whose create was cut short is looked for too);
- a move's original disk (move-to-zone, move-to-set: "moved-disk"), when it is
  attached to no VM and the copy that replaced it is attached to one: the
  moved VM runs on the copy, so the original is no longer the only one;
- a restore point the run took (restore-point), when its collection is still
  the run's VM's; then the restore point collection, when the run created it
  and it holds no other restore point (a later run's restore points keep it).

Never deleted: a customer's disk (the original OS disk a rescue swapped out
stays, detached, for the operator to delete by hand), a recreated VM, the
rescue VM and its group (the run's own cleanup deletes those, after checking
the group holds nothing else), or anything not in the ledger. Unfinished
runs are refused: resume or abandon them first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.adapter import RecoveryBackend
from backend.errors import BackendError
from backend.recovery import journal as J
from backend.recovery.context import StepFailed
from backend.recovery.journal import Journal, RunRecord

DELETE, KEEP = "delete", "keep"
RUN_TAG = "aztriage-run"
RELEASABLE = ("snapshot", "disk-copy", "security-rule", "moved-disk", "restore-point", "restore-point-collection")


class ReleaseRefused(Exception):
    """The release cannot be done; one sentence for the operator."""


@dataclass(frozen=True)
class ReleaseItem:
    resource_id: str
    kind: str
    action: str  # delete / keep
    reason: str

    @property
    def name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "kind": self.kind, "action": self.action, "reason": self.reason}


def release_plan(journal: Journal, run_id: str) -> tuple[RunRecord, list[ReleaseItem]]:
    """What releasing this run would delete and what stays (nothing is read from Azure yet)."""
    run = journal.ended_run(run_id, ReleaseRefused)
    items: list[ReleaseItem] = []
    for res in run.resources:
        if res.state in J.LEDGER_GONE:
            continue
        if res.kind == "security-rule" and res.state in ("keep", "creating", "failed", "created"):
            items.append(ReleaseItem(res.resource_id, res.kind, DELETE, "a temporary NSG rule this run made"))
        elif res.state == "keep" and res.kind in RELEASABLE:
            items.append(ReleaseItem(res.resource_id, res.kind, DELETE, f"a {res.kind.replace('-', ' ')} this run kept until released"))
        elif res.state == "in-use":
            items.append(ReleaseItem(res.resource_id, res.kind, KEEP, "in use by a VM now: never deleted by aztriage"))
        elif res.kind in ("vm",):
            items.append(ReleaseItem(res.resource_id, res.kind, KEEP, "yours: aztriage never deletes it"))
        else:
            items.append(
                ReleaseItem(res.resource_id, res.kind, KEEP, "not kept for release: the run's own cleanup deletes it (resume the run), or delete it yourself")
            )
    # A collection is looked at once the restore points in it are released.
    items.sort(key=lambda item: item.kind == "restore-point-collection")
    for step in run.steps:
        original = (step.outputs or {}).get("original_os_disk")
        if original:
            items.append(
                ReleaseItem(
                    original,
                    "original-os-disk",
                    KEEP,
                    "the VM's original OS disk, detached: a customer disk, never deleted by aztriage (delete it yourself once the VM is good)",
                )
            )
    return run, items


OnItem = Callable[[ReleaseItem, str, bool], None]  # item, what happened, ok


async def release(backend: RecoveryBackend, journal: Journal, run_id: str, *, on_item: OnItem | None = None) -> list[tuple[ReleaseItem, str, bool]]:
    """Delete what `release_plan` marks delete, each checked again in Azure first;
    returns (item, what happened, ok) for every item."""
    from backend.recovery.runner import run_target

    run, items = release_plan(journal, run_id)
    if run.target and run.target != run_target(backend.settings):
        raise ReleaseRefused(f"run {run_id} acted on {run.target}, not on {run_target(backend.settings)}: release it with the same connection")
    out: list[tuple[ReleaseItem, str, bool]] = []

    def done(item: ReleaseItem, text: str, ok: bool, *, released: bool = False) -> None:
        if released:
            journal.release_resource(run_id, item.resource_id)
        out.append((item, text, ok))
        if on_item is not None:
            on_item(item, text, ok)

    for item in items:
        if item.action == KEEP:
            done(item, f"kept: {item.reason}", True)
            continue
        try:
            if item.kind in RELEASERS:
                text, ok, released = await RELEASERS[item.kind](backend, run, item)
                done(item, text, ok, released=released)
                continue
            if item.kind == "security-rule":
                from backend.recovery.scenarios.fix_nsg import delete_own_rule

                text = await delete_own_rule(backend, item.resource_id, run_id)
                done(item, "already gone" if text.endswith("already gone") else "deleted", True, released=True)
                continue
            if item.kind == "snapshot":
                doc = await backend.get_snapshot(item.resource_id)
            else:
                doc = await backend.get_disk_document(item.resource_id)
            if doc is None:
                done(item, "already gone", True, released=True)
            elif ((doc.get("tags") or {}).get(RUN_TAG) or "") != run_id:
                done(item, f"kept: it does not carry {RUN_TAG}={run_id}", False)
            elif doc.get("managedBy"):
                done(item, f"kept: attached to {doc['managedBy'].rsplit('/', 1)[-1]}", False)
            else:
                if item.kind == "snapshot":
                    await backend.delete_snapshot(item.resource_id)
                else:
                    await backend.delete_disk(item.resource_id)
                done(item, "deleted", True, released=True)
        except StepFailed as exc:
            done(item, f"kept: {exc}", False)
        except BackendError as exc:
            done(item, f"failed: {exc}", False)
    return out


def _collection_of(restore_point_id: str) -> str:
    return restore_point_id[: restore_point_id.lower().index("/restorepoints/")]


def _source_of(collection: dict[str, Any] | None) -> str:
    return str((((collection or {}).get("properties") or {}).get("source") or {}).get("id") or "")


async def _release_restore_point(backend: RecoveryBackend, run: RunRecord, item: ReleaseItem) -> tuple[str, bool, bool]:
    """A restore point the run took: deleted while its collection is still the run's VM's."""
    if await backend.get_restore_point(item.resource_id) is None:
        return "already gone", True, True
    source = _source_of(await backend.get_restore_point_collection(_collection_of(item.resource_id)))
    if source.lower() != run.vm_id.lower():
        return f"kept: its collection is of {source.rsplit('/', 1)[-1] or 'another VM'}, not of {run.vm_name}", False, False
    await backend.delete_restore_point(item.resource_id)
    return "deleted", True, True


async def _release_collection(backend: RecoveryBackend, run: RunRecord, item: ReleaseItem) -> tuple[str, bool, bool]:
    """The restore point collection the run created: deleted only when it holds no restore point
    left (deleting a collection deletes every restore point in it)."""
    doc = await backend.get_restore_point_collection(item.resource_id, restore_points=True)
    if doc is None:
        return "already gone", True, True
    if _source_of(doc).lower() != run.vm_id.lower():
        return f"kept: it is the collection of {_source_of(doc).rsplit('/', 1)[-1] or 'another VM'}, not of {run.vm_name}", False, False
    others = [str(p.get("name") or "?") for p in (doc.get("properties") or {}).get("restorePoints") or ()]
    if others:
        listed = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
        return f"kept: it holds {len(others)} restore point{'s' if len(others) != 1 else ''} this run did not take ({listed})", True, False
    await backend.delete_restore_point_collection(item.resource_id)
    return "deleted (it held no other restore point)", True, True


async def _release_original(backend: RecoveryBackend, run: RunRecord, item: ReleaseItem) -> tuple[str, bool, bool]:
    """A move's original disk: deleted only when it is detached and its copy is attached to a VM."""
    moved: dict[str, str] = {}
    for step in run.steps:
        moved.update({k.lower(): v for k, v in ((step.outputs or {}).get("moved") or {}).items()})
    copy_id = moved.get(item.resource_id.lower())
    doc = await backend.get_disk_document(item.resource_id)
    if doc is None:
        return "already gone", True, True
    if doc.get("managedBy"):
        return f"kept: attached to {doc['managedBy'].rsplit('/', 1)[-1]}", False, False
    copy = await backend.get_disk_document(copy_id) if copy_id else None
    if copy_id is None or copy is None or not copy.get("managedBy"):
        return f"kept: its copy {(copy_id or '?').rsplit('/', 1)[-1]} is not attached to a VM, so this may be the only good copy", False, False
    await backend.delete_disk(item.resource_id)
    return f"deleted (the VM runs on its copy {copy_id.rsplit('/', 1)[-1]})", True, True


Releaser = Callable[[RecoveryBackend, RunRecord, ReleaseItem], Awaitable[tuple[str, bool, bool]]]
RELEASERS: dict[str, Releaser] = {
    "moved-disk": _release_original,
    "restore-point": _release_restore_point,
    "restore-point-collection": _release_collection,
}
