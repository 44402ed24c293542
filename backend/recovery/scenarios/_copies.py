"""The two steps rescue and the moves (move-to-zone, move-to-set) share: a disk's snapshot
kept as the way back until the operator releases the run, and a disk copy made from that
snapshot. What differs between the scenarios (names, tags, where the copy goes, what it must
match) is given; what a resumed run finds and what it records is decided here, once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.models import Disk
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._disks import RUN_TAG, disk_props, exists_by, provisioning_state, same_id, short, stamp, tracked_create
from backend.recovery.scenarios.snapshot_disks import snapshot_step

RELEASE_UNDO = "release it with aztriage runs --release RUN_ID (aztriage never deletes it on its own)"


def kept_snapshot_step(facts: VmFacts, disk: Disk, role: str, snapshot_id: str, note: str) -> Step:
    """snapshot-disks' step for `disk`, its snapshot then kept in the run's ledger (with `note`)
    until the operator releases the run."""
    step = snapshot_step(facts, disk, stamp(facts), role)
    taken = step.verify
    assert taken is not None

    async def verify(ctx: StepContext) -> Verification:
        result = await taken(ctx)
        if result.ok:
            await ctx.record_resource(snapshot_id, kind="snapshot", state="keep", note=note)
        return result

    step.verify = verify
    step.undo = RELEASE_UNDO
    return step


@dataclass(frozen=True)
class DiskCopy:
    """A managed disk a run creates from a snapshot (createOption Copy), or from a disk restore
    point (createOption Restore: ``snapshot_id`` is then the disk restore point)."""

    copy_id: str
    snapshot_id: str
    location: str
    sku: str
    zones: tuple[str, ...]
    tags: dict[str, str]  # besides the run's own tag
    properties: dict[str, Any]  # creationData and what the copy carries over (osType, generation, ...)
    creating_note: str  # the ledger's note while it is being created
    kept_note: str  # the ledger's note once it is there: kept until released
    from_restore_point: bool = False

    @property
    def source_words(self) -> str:
        return "disk restore point" if self.from_restore_point else "snapshot"

    @property
    def name(self) -> str:
        return short(self.copy_id)

    def body(self, run_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "location": self.location,
            "sku": {"name": self.sku},
            "tags": dict(self.tags, **{RUN_TAG: run_id}),
            "properties": self.properties,
        }
        if self.zones:
            body["zones"] = list(self.zones)
        return body


def disk_copy_step(
    copy: DiskCopy,
    *,
    key: str,
    title: str,
    why: str,
    changes: str,
    undo: str,
    created: str,
    mismatch: Callable[[dict[str, Any]], str | None],
    described: Callable[[dict[str, Any]], str],
) -> Step:
    """Create `copy` from its snapshot. A copy already there from this snapshot is recognised (a
    failed one is sent again); a disk of that name copied from anything else, or a snapshot that
    is gone, blocks. `mismatch` says why a finished copy is not what the scenario needs (None: it
    is), `described` what the verification reports of a good one; `created` is the run's line."""
    name = copy.name

    async def precondition(ctx: StepContext) -> Check:
        doc = await ctx.backend.get_disk_document(copy.copy_id)
        if doc is not None:
            if not same_id((disk_props(doc).get("creationData") or {}).get("sourceResourceId"), copy.snapshot_id):
                return blocked(f"a disk named {name} already exists and is not a copy of {short(copy.snapshot_id)}")
            if provisioning_state(doc) == "failed":
                return ready(f"the earlier copy {name} failed: sending it again")
            return already_done(f"the copy {name} exists")
        read = ctx.backend.get_disk_restore_point if copy.from_restore_point else ctx.backend.get_snapshot
        if await read(copy.snapshot_id) is None:
            return blocked(f"the {copy.source_words} {short(copy.snapshot_id)} does not exist: the copy is made from it")
        return ready(f"no disk named {name} yet")

    async def run(ctx: StepContext) -> str:
        body = copy.body(ctx.run_id)

        async def create() -> Any:
            return await ctx.backend.create_disk(copy.copy_id, body, **await ctx.lro("copy"))

        await tracked_create(
            ctx, copy.copy_id, kind="disk-copy", note=copy.creating_note, create=create, exists=exists_by(lambda: ctx.backend.get_disk_document(copy.copy_id))
        )
        return created

    async def verify(ctx: StepContext) -> Verification:
        doc = await ctx.backend.get_disk_document(copy.copy_id)
        if doc is None:
            return not_verified(f"the copy {name} does not exist")
        state = provisioning_state(doc)
        if state != "succeeded":
            return not_verified(f"the copy {name} is {state or 'in an unknown state'}")
        wrong = mismatch(doc)
        if wrong:
            return not_verified(wrong)
        await ctx.record_resource(copy.copy_id, kind="disk-copy", state="keep", note=copy.kept_note)
        return verified(described(doc))

    return Step(
        key=key,
        title=title,
        why=why,
        changes=changes,
        kind=Kind.CHANGE,
        undo=undo,
        creates="disk-copy",
        precondition=precondition,
        run=run,
        verify=verify,
    )
