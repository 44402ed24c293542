"""snapshot-disks: a snapshot of every managed disk of the VM, the runbook's
"copy VHD" safety net before anything risky. Snapshots are recorded in the
run's ledger before they are created, and kept: aztriage never deletes them.
The one exception is this run's own failure: a snapshot whose create ended
Failed or Canceled (ARM leaves it there in that state) is deleted and taken
again when the run resumes, and only when the run's ledger lists it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from backend.models import Disk, ResourceId, Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.scenarios._disks import LEFT_FAILED, exists_by, made_by_this_run, provisioning_state, tracked_create, wait_gone
from backend.recovery.steps import preflight_step

MAX_NAME = 80


def _eligible(vm: Vm) -> tuple[list[Disk], list[str]]:
    disks, skipped = [], []
    for disk in vm.disks:
        if not disk.managed or not disk.id:
            skipped.append(f"{disk.name} is an unmanaged VHD: snapshot its page blob in the storage account instead")
        elif disk.ephemeral:
            skipped.append(f"{disk.name} is an ephemeral OS disk on the host: it cannot be snapshotted")
        else:
            disks.append(disk)
    return disks, skipped


def unavailable(vm: Vm) -> str | None:
    disks, skipped = _eligible(vm)
    if not disks:
        return "no managed disk to snapshot: " + "; ".join(skipped)
    return None


def snapshot_name(disk_name: str, stamp: str) -> str:
    """<disk>-snap-<UTC yyyymmddHHMMSS>: valid, at most 80 characters, no fractions."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", disk_name).rstrip(".-")
    suffix = f"-snap-{stamp}"
    return base[: MAX_NAME - len(suffix)].rstrip(".-") + suffix


def _source(doc: dict[str, Any] | None) -> str:
    return (((doc or {}).get("properties") or {}).get("creationData") or {}).get("sourceResourceId") or ""


def snapshot_step(facts: VmFacts, disk: Disk, stamp: str, role: str) -> Step:
    vm = facts.vm
    rid = ResourceId.parse(disk.id or "")
    name = snapshot_name(disk.name, stamp)
    snapshot_id = f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}/providers/Microsoft.Compute/snapshots/{name}"
    location = (
        next((d.get("location") for d in facts.documents.get("disks") or () if (d.get("id") or "").lower() == (disk.id or "").lower()), None) or vm.location
    )

    note = f"snapshot of {role} disk {disk.name} of {vm.name}"

    async def precondition(ctx: StepContext) -> Check:
        existing = await ctx.backend.get_snapshot(snapshot_id)
        if existing is not None:
            if _source(existing).lower() != (disk.id or "").lower():
                return blocked(f"a snapshot named {name} already exists and is not of {disk.name}")
            state = provisioning_state(existing)
            if state in LEFT_FAILED or state == "deleting":
                if made_by_this_run(ctx, snapshot_id, existing):
                    return ready(f"snapshot {name} was left {state} by an earlier attempt of this run: it is deleted and taken again")
                return blocked(
                    f"a snapshot named {name} of {disk.name} exists in provisioning state {state} and was not made by this run: "
                    "delete it yourself, then resume the run"
                )
            return already_done(f"snapshot {name} of {disk.name} already exists")
        return ready(f"no snapshot named {name} yet")

    async def clear_failed(ctx: StepContext) -> str:
        """Remove the snapshot an earlier attempt of this run left Failed or Canceled.

        ARM would also accept a PUT over a failed resource (and the emulator answers one
        as an update), but for a snapshot that PUT keeps the resource's immutable
        creationData and is not documented to copy the disk again: a failed copy could
        come back "Succeeded" with nothing behind it. Deleting the failed snapshot and
        creating it anew is defined on both ARM and the emulator, and yields a copy taken
        now. Only a snapshot in this run's ledger, without another run's tag, is deleted."""
        if ctx.operation_token("snapshot") is not None:
            return ""  # resuming the create sent after the delete: nothing is left to remove
        doc = await ctx.backend.get_snapshot(snapshot_id)
        state = provisioning_state(doc)
        if doc is None and ctx.operation_token("snapshot-delete") is not None:
            return "; the failed snapshot left by the earlier attempt was deleted first"  # before an interruption
        if doc is None or not (state in LEFT_FAILED or state == "deleting"):
            return ""
        if not made_by_this_run(ctx, snapshot_id, doc):
            raise StepFailed(
                f"a snapshot named {name} exists in provisioning state {state} and was not made by this run: delete it yourself, then resume the run"
            )
        if state == "deleting" and ctx.operation_token("snapshot-delete") is None:
            # A delete sent before an interruption, its operation not journaled: wait for it, never send a second one.
            doc = await wait_gone(lambda: ctx.backend.get_snapshot(snapshot_id), ctx.settings)
            if doc is not None:
                raise StepFailed(f"snapshot {name} is still being deleted: resume the run once it is gone")
        else:
            await ctx.backend.delete_snapshot(snapshot_id, **await ctx.lro("snapshot-delete"))
        await ctx.record_resource(snapshot_id, kind="snapshot", state="deleted", note=note)
        return f"; the {state if state in LEFT_FAILED else 'failed'} snapshot left by the earlier attempt was deleted first"

    async def run(ctx: StepContext) -> str:
        cleared = await clear_failed(ctx)
        body = {
            "location": location,
            "sku": {"name": "Standard_LRS"},
            "tags": {"aztriage-run": ctx.run_id, "aztriage-vm": vm.name, "aztriage-disk": disk.name},
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}, "incremental": False},
        }

        async def create() -> Any:
            return await ctx.backend.create_snapshot(snapshot_id, body, **await ctx.lro("snapshot"))

        # In the ledger before the create is sent: a crash can never leave an unrecorded snapshot;
        # a create that fails leaves it "failed" (it exists, Failed or Canceled) or "not-created".
        await tracked_create(ctx, snapshot_id, kind="snapshot", note=note, create=create, exists=exists_by(lambda: ctx.backend.get_snapshot(snapshot_id)))
        return f"snapshot {name} created{cleared}"

    async def verify(ctx: StepContext) -> Verification:
        doc = await ctx.backend.get_snapshot(snapshot_id)
        if doc is None:
            return not_verified(f"snapshot {name} does not exist")
        state = ((doc.get("properties") or {}).get("provisioningState") or "").lower()
        if _source(doc).lower() != (disk.id or "").lower():
            return not_verified(f"snapshot {name} is not a copy of {disk.name}")
        if state != "succeeded":
            return not_verified(f"snapshot {name} is {state or 'in an unknown state'}")
        await ctx.record_resource(snapshot_id, kind="snapshot", state="created", note=note)
        size = (doc.get("properties") or {}).get("diskSizeGB")
        return verified(f"snapshot {name} of {disk.name} succeeded" + (f" ({size} GB)" if size else ""), snapshot_id=snapshot_id)

    return Step(
        key="snapshot-os" if disk.lun is None else f"snapshot-lun{disk.lun}",
        title=f"Snapshot the {role} disk {disk.name}",
        why="A full copy of the disk taken now is what you restore from if a later step goes wrong.",
        changes=f"creates snapshot {name} in resource group {rid.resource_group} (billed per GB; kept until you delete it)",
        kind=Kind.CHANGE,
        undo=f"delete snapshot {name} once it is no longer needed (aztriage never deletes it)",
        creates="snapshot",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    when = facts.fetched_at or datetime.now(UTC)
    stamp = when.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    disks, skipped = _eligible(vm)
    warnings = list(skipped)
    if vm.power_state == "running":
        warnings.append(
            f"{vm.name} is running: the snapshots are crash-consistent (like pulling the plug); stop the application or the VM first for an application-consistent copy."
        )
    steps: list[Step | None] = [preflight_step(facts)]
    for disk in disks:
        steps.append(snapshot_step(facts, disk, stamp, "OS" if disk.lun is None else f"data (LUN {disk.lun})"))
    reason = unavailable(vm)
    return plan(
        "snapshot-disks",
        "Snapshot every disk",
        facts,
        steps,
        f"Snapshot {len(disks)} managed disk{'s' if len(disks) != 1 else ''} of {vm.name}; the VM itself is not touched.",
        warnings=warnings,
        blockers=[reason] if reason else [],
    )
