"""Releasing what a finished run kept: `aztriage runs --release RUN_ID`.

A run keeps its safety nets (the snapshot of the OS disk) until the operator
says they are no longer needed. Releasing deletes only what the run itself
created and its ledger lists as deletable, after checking each one again in
Azure:

- a snapshot: when it carries this run's tag;
- a disk copy: when it carries this run's tag and is attached to no VM (a
  copy swapped in as a VM's OS disk is that VM's disk: never deleted);
- a resource group the run made: when it carries this run's tag and holds
  nothing the ledger does not list (never a group that existed before).

Never deleted: a customer's disk (the original OS disk a rescue swapped out
stays, detached, for the operator to delete by hand), a recreated VM, or
anything not in the ledger. Unfinished runs are refused: resume or abandon
them first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.adapter import BackendError
from backend.recovery import journal as J
from backend.recovery.journal import Journal, RunRecord

DELETE, KEEP = "delete", "keep"
RUN_TAG = "aztriage-run"


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


def _in_group(resource_id: str, group_id: str) -> bool:
    return resource_id.lower().startswith(group_id.lower().rstrip("/") + "/")


def release_plan(journal: Journal, run_id: str) -> tuple[RunRecord, list[ReleaseItem]]:
    """What releasing this run would delete and what stays (nothing is read from Azure yet)."""
    run = journal.get_run(run_id)
    if run is None:
        raise ReleaseRefused(f"there is no run {run_id} in the journal")
    if run.unfinished:
        raise ReleaseRefused(f"run {run_id} is {run.status}: resume it (aztriage recover --resume {run_id}) or abandon it (aztriage runs --abandon {run_id}) first")
    live = [r for r in run.resources if r.state not in J.LEDGER_GONE]
    groups = [r.resource_id for r in live if r.kind == "resource-group"]
    items: list[ReleaseItem] = []
    for res in live:
        if res.kind == "snapshot":
            items.append(ReleaseItem(res.resource_id, res.kind, DELETE, "a snapshot this run took"))
        elif res.kind == "disk-copy" and res.state == "in-use":
            items.append(ReleaseItem(res.resource_id, res.kind, KEEP, "it is a VM's OS disk now: never deleted by aztriage"))
        elif res.kind == "disk-copy":
            items.append(ReleaseItem(res.resource_id, res.kind, DELETE, "a disk copy this run made, not in use"))
        elif res.kind == "resource-group":
            items.append(ReleaseItem(res.resource_id, res.kind, DELETE, "a resource group this run made, with what the ledger lists in it"))
        elif any(_in_group(res.resource_id, g) for g in groups):
            items.append(ReleaseItem(res.resource_id, res.kind, DELETE, "deleted with its resource group"))
        else:
            items.append(ReleaseItem(res.resource_id, res.kind, KEEP, "yours: aztriage never deletes it"))
    for step in run.steps:
        original = step.outputs.get("original_os_disk") if step.outputs else None
        if original:
            items.append(ReleaseItem(original, "original-os-disk", KEEP, "the VM's original OS disk, detached: a customer disk, never deleted by aztriage (delete it yourself once the VM is good)"))
    return run, items


OnItem = Callable[[ReleaseItem, str, bool], None]  # item, what happened, ok


async def release(backend: Any, journal: Journal, run_id: str, *, on_item: OnItem | None = None) -> list[tuple[ReleaseItem, str, bool]]:
    """Delete what `release_plan` marks delete, each checked again in Azure first;
    returns (item, what happened, ok) for every item."""
    from backend.azure import rescue_ops
    from backend.models import ResourceId
    from backend.recovery.runner import run_target

    run, items = release_plan(journal, run_id)
    if run.target and run.target != run_target(backend.settings):
        raise ReleaseRefused(f"run {run_id} acted on {run.target}, not on {run_target(backend.settings)}: release it with the same connection")
    ledger = {r.resource_id.lower() for r in run.resources}
    out: list[tuple[ReleaseItem, str, bool]] = []

    def done(item: ReleaseItem, text: str, ok: bool, *, released: bool = False) -> None:
        if released:
            journal.release_resource(run_id, item.resource_id)
        out.append((item, text, ok))
        if on_item is not None:
            on_item(item, text, ok)

    def ours(doc: dict[str, Any]) -> bool:
        return ((doc.get("tags") or {}).get(RUN_TAG) or "") == run_id

    order = {"snapshot": 0, "disk-copy": 1, "resource-group": 2}
    for item in sorted(items, key=lambda i: order.get(i.kind, 3)):
        if item.action == KEEP:
            done(item, f"kept: {item.reason}", True)
            continue
        try:
            if item.kind == "snapshot":
                doc = await backend.get_snapshot(item.resource_id)
                if doc is None:
                    done(item, "already gone", True, released=True)
                elif not ours(doc):
                    done(item, f"kept: it does not carry {RUN_TAG}={run_id}", False)
                else:
                    await rescue_ops.delete_snapshot(backend, item.resource_id)
                    done(item, "deleted", True, released=True)
            elif item.kind == "disk-copy":
                doc = await backend.get_disk_document(item.resource_id)
                if doc is None:
                    done(item, "already gone", True, released=True)
                elif doc.get("managedBy"):
                    done(item, f"kept: attached to {doc['managedBy'].rsplit('/', 1)[-1]}", False)
                elif not ours(doc):
                    done(item, f"kept: it does not carry {RUN_TAG}={run_id}", False)
                else:
                    await rescue_ops.delete_disk(backend, item.resource_id)
                    done(item, "deleted", True, released=True)
            elif item.kind == "resource-group":
                rid = ResourceId.parse(item.resource_id)
                doc = await rescue_ops.get_group(backend, rid.subscription_id, rid.resource_group)
                if doc is None:
                    done(item, "already gone", True, released=True)
                elif not ours(doc):
                    done(item, f"kept: the group does not carry {RUN_TAG}={run_id}, so this run did not make it", False)
                else:
                    held = await rescue_ops.group_resources(backend, rid.subscription_id, rid.resource_group)
                    strangers = [r.get("name") or "" for r in held if (r.get("id") or "").lower() not in ledger]
                    if strangers:
                        done(item, f"kept: it holds {', '.join(strangers)}, which this run did not create", False)
                    else:
                        await rescue_ops.delete_group(backend, rid.subscription_id, rid.resource_group)
                        done(item, "deleted with everything in it", True, released=True)
            else:
                # Inside a group: released when the group goes (or went).
                group = next((i for i in items if i.kind == "resource-group" and _in_group(item.resource_id, i.resource_id)), None)
                gone = group is not None and any(o[0] is group and o[2] for o in out)
                done(item, "deleted with its group" if gone else "kept: its group was kept", gone, released=gone)
        except BackendError as exc:
            done(item, f"failed: {exc}", False)
    return out
