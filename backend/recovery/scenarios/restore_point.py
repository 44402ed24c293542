"""restore-point: a Compute restore point of every disk of the VM at one instant, instead of
per-disk snapshots taken one after another (snapshot-disks). Application-consistent when the VM
runs with a working VM agent (the agent freezes the applications for the instant: VSS on Windows,
the pre/post scripts on Linux), crash-consistent otherwise or when asked (``consistency``).

Two steps after the pre-flight check: the VM's restore point collection (``rpc-<vm>`` in its
resource group; made once, reused by later runs) and the restore point (``rp-<UTC stamp>``,
long-running). Both are in the run's ledger before they are sent and kept until the operator
releases the run (``aztriage runs --release RUN_ID``): release deletes the restore point, and the
collection when this run created it and it holds no other restore point. A run deletes nothing
else, except a restore point it itself left Failed (Azure leaves a failed create in place), which a
resumed run deletes and takes again. Each disk's restore point is what restore-disk makes a disk from."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.scenarios._disks import (
    LEFT_FAILED,
    arm_name,
    exists_by,
    made_by_this_run,
    provisioning_state,
    resource_id,
    same_id,
    stamp,
    tracked_create,
)
from backend.recovery.steps import preflight_step

MODES = {"application": "ApplicationConsistent", "crash": "CrashConsistent"}


def unavailable(vm: Vm) -> str | None:
    if vm.os_disk.ephemeral:
        return f"{vm.name} has an ephemeral OS disk: Azure takes no restore point of it"
    unmanaged = [d.name for d in vm.disks if not d.managed]
    if unmanaged:
        return f"{vm.name} has unmanaged disks ({', '.join(unmanaged)}): restore points need managed disks (az vm convert)"
    return None


def collection_id(vm: Vm) -> str:
    return resource_id(vm.subscription_id, vm.resource_group, "Microsoft.Compute/restorePointCollections", arm_name(f"rpc-{vm.name}", ""))


def _consistency(vm: Vm, params: dict[str, Any]) -> tuple[str, list[str]]:
    """The consistency mode asked for (default: application when the VM runs with a Ready agent) and why not."""
    can_freeze = vm.power_state == "running" and vm.agent_status == "Ready"
    asked = str(params.get("consistency") or ("application" if can_freeze else "crash")).lower()
    if asked not in MODES:
        raise PlanError(f"--consistency must be application or crash, not {params.get('consistency')!r}")
    blockers = []
    if asked == "application" and not can_freeze:
        why = f"it is {vm.power_state}" if vm.power_state != "running" else f"its VM agent reports '{vm.agent_status}'"
        blockers.append(
            f"an application-consistent restore point needs {vm.name} running with a working VM agent ({why}): take a crash-consistent one (--consistency crash)"
        )
    return asked, blockers


def collection_step(facts: VmFacts) -> Step:
    vm = facts.vm
    rpc = collection_id(vm)
    name = rpc.rsplit("/", 1)[-1]

    async def precondition(ctx: StepContext) -> Check:
        doc = await ctx.backend.get_restore_point_collection(rpc)
        if doc is None:
            return ready(f"no restore point collection {name} yet")
        source = ((doc.get("properties") or {}).get("source") or {}).get("id")
        if not same_id(source, vm.id):
            return blocked(f"restore point collection {name} exists and is of another VM ({source}): rename or remove it, then resume")
        return already_done(f"restore point collection {name} of {vm.name} exists")

    async def run(ctx: StepContext) -> str:
        body = {"location": vm.location, "tags": {"aztriage-vm": vm.name}, "properties": {"source": {"id": vm.id}}}

        async def create() -> Any:
            return await ctx.backend.put_restore_point_collection(rpc, body)

        exists = exists_by(lambda: ctx.backend.get_restore_point_collection(rpc))
        await tracked_create(ctx, rpc, kind="restore-point-collection", note=f"restore point collection of {vm.name}", create=create, exists=exists)
        return f"restore point collection {name} created"

    async def verify(ctx: StepContext) -> Verification:
        doc = await ctx.backend.get_restore_point_collection(rpc)
        if doc is None or not same_id(((doc.get("properties") or {}).get("source") or {}).get("id"), vm.id):
            return not_verified(f"restore point collection {name} of {vm.name} is not there")
        if any(same_id(r.resource_id, rpc) for r in ctx.journal.resources(ctx.run_id)):
            # This run created it: kept until released (an earlier run's collection is not this run's to release).
            await ctx.record_resource(rpc, kind="restore-point-collection", state="keep", note=f"restore point collection of {vm.name}")
        return verified(f"restore point collection {name} holds {vm.name}'s restore points", collection_id=rpc)

    return Step(
        key="collection",
        title=f"Restore point collection for {vm.name}",
        why="Azure keeps a VM's restore points in a collection of its own, made once and reused.",
        changes=f"creates restore point collection {name} in resource group {vm.resource_group} (free; kept)",
        kind=Kind.CHANGE,
        undo="release the run (aztriage runs --release RUN_ID): a collection this run created is deleted once it holds no other restore point",
        creates="restore-point-collection",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def restore_point_step(facts: VmFacts, consistency: str, name: str) -> Step:
    vm = facts.vm
    rp = f"{collection_id(vm)}/restorePoints/{name}"
    mode = MODES[consistency]
    disks = [d for d in vm.disks if d.managed and d.id]
    note = f"{consistency}-consistent restore point of {vm.name}"

    async def precondition(ctx: StepContext) -> Check:
        doc = await ctx.backend.get_restore_point(rp)
        if doc is None:
            return ready(f"no restore point {name} yet")
        state = provisioning_state(doc)
        if state in LEFT_FAILED:
            if made_by_this_run(ctx, rp, doc):
                return ready(f"restore point {name} was left {state} by an earlier attempt of this run: it is deleted and taken again")
            return blocked(f"a restore point named {name} exists in state {state} and was not made by this run: delete it, then resume")
        return already_done(f"restore point {name} exists ({state})")

    async def run(ctx: StepContext) -> str:
        cleared = ""
        if ctx.operation_token("restore-point") is None:
            doc = await ctx.backend.get_restore_point(rp)
            if doc is not None and provisioning_state(doc) in LEFT_FAILED:
                if not made_by_this_run(ctx, rp, doc):
                    raise StepFailed(f"a restore point named {name} exists and was not made by this run: delete it, then resume")
                await ctx.backend.delete_restore_point(rp, **await ctx.lro("restore-point-delete"))
                cleared = "; the failed one left by the earlier attempt was deleted first"
        body = {"properties": {"consistencyMode": mode}}

        async def create() -> Any:
            return await ctx.backend.create_restore_point(rp, body, **await ctx.lro("restore-point"))

        await tracked_create(ctx, rp, kind="restore-point", note=note, create=create, exists=exists_by(lambda: ctx.backend.get_restore_point(rp)))
        return f"restore point {name} taken{cleared}"

    async def verify(ctx: StepContext) -> Verification:
        doc = await ctx.backend.get_restore_point(rp)
        if doc is None:
            return not_verified(f"restore point {name} does not exist")
        props = doc.get("properties") or {}
        state = provisioning_state(doc)
        if state != "succeeded":
            return not_verified(f"restore point {name} is {state or 'in an unknown state'}")
        storage = ((props.get("sourceMetadata") or {}).get("storageProfile")) or {}
        captured = [storage.get("osDisk") or {}, *(storage.get("dataDisks") or ())]
        have = {str(((e.get("managedDisk") or {}).get("id")) or "").lower() for e in captured if (e.get("diskRestorePoint") or {}).get("id")}
        missing = [d.name for d in disks if (d.id or "").lower() not in have]
        if missing:
            return not_verified(f"restore point {name} does not hold {', '.join(missing)}")
        if any(same_id(r.resource_id, rp) for r in ctx.journal.resources(ctx.run_id)):
            # Taken by this run (in its ledger since before the create): kept until released.
            await ctx.record_resource(rp, kind="restore-point", state="keep", note=note)
        got = props.get("consistencyMode") or mode
        return verified(
            f"restore point {name} holds all {len(disks)} disk{'s' if len(disks) != 1 else ''} of {vm.name}, {got}", restore_point_id=rp, consistency=got
        )

    return Step(
        key="restore-point",
        title=f"Take {'an' if consistency == 'application' else 'a'} {consistency}-consistent restore point of {vm.name}",
        why=(
            "One restore point captures every disk at the same instant, so the disks agree with each other; "
            + (
                "the VM agent freezes the applications for that instant."
                if consistency == "application"
                else "crash-consistent: like pulling the plug, with no application frozen."
            )
        ),
        changes=f"creates restore point {name} of {len(disks)} disk{'s' if len(disks) != 1 else ''} in collection {collection_id(vm).rsplit('/', 1)[-1]} (billed as incremental snapshots; kept)",
        kind=Kind.CHANGE,
        undo=f"release the run once restore point {name} is no longer needed (aztriage runs --release RUN_ID deletes it)",
        creates="restore-point",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    consistency, blockers = _consistency(vm, params)
    reason = unavailable(vm)
    if reason:
        blockers.insert(0, reason)
    name = f"rp-{stamp(facts)}"
    steps: list[Step | None] = [preflight_step(facts), collection_step(facts), restore_point_step(facts, consistency, name)]
    warnings = []
    if consistency == "crash" and vm.power_state == "running":
        warnings.append(
            f"{vm.name} is running: a crash-consistent restore point is like pulling the plug; --consistency application freezes the applications first."
        )
    return plan(
        "restore-point",
        "Restore point of every disk",
        facts,
        steps,
        f"Take {'an' if consistency == 'application' else 'a'} {consistency}-consistent restore point {name} of every disk of {vm.name} at one instant; the VM keeps running.",
        warnings=warnings,
        blockers=blockers,
        params={"consistency": consistency},
    )
