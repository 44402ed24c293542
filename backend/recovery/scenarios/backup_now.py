"""backup-now: an on-demand Azure Backup of a protected VM, before anything risky or because its
scheduled backups are late. Also offered as the optional first step of recreate, move-to-zone,
move-to-set, rescue and resize for a protected VM (``offer_first``: ``backup_first`` in the
plan's parameters, ``--backup-first`` on the command line).

The backup is Recovery Services' Backups_Trigger: a long-running operation that queues a backup
job. The job takes a snapshot of every disk ("Take Snapshot": from then on the recovery point can
be restored) and then copies it to the vault ("Transfer data to vault", which can take hours and
goes on in Azure after the run). The step is verified once the snapshot phase has completed, which
is what makes the later steps of a plan safe. The operation is journaled: a run killed while it
runs polls the same backup when resumed; one killed after sending it and before Azure accepted it
looks for the job that send started before sending another. Nothing is deleted: the recovery point
is kept until ``retain_days`` (30 by default) after the plan was made, as the request says.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.adapter import RecoveryBackend
from backend.errors import BackendError
from backend.models import Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import SETTLE_TIMEOUT, parse_time, poll_interval, preflight_step

DEFAULT_RETAIN_DAYS = 30
SNAPSHOT_TASK = "take snapshot"


def unavailable(vm: Vm) -> str | None:
    return None  # whether a vault protects it is read when the plan is made (gather)


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The VM's protected item, as its subscription's vaults list it (O(vaults) requests)."""
    subscription = vm_id.split("/")[2]
    try:
        book = await backend.backup_protection([subscription])
    except BackendError as exc:
        documents["backup"] = {"error": str(exc)}
        return
    item = book.item(vm_id)
    if item is None:
        reason = book.errors.get(subscription.lower())
        documents["backup"] = {"error": f"its subscription's Recovery Services vaults could not be read: {reason}"} if reason else {"protected": False}
        return
    now = book.read_at or datetime.now(UTC)
    documents["backup"] = {
        "protected": True,
        "item_id": item.item_id,
        "vault": item.vault,
        "vault_id": item.vault_id,
        "policy": item.policy,
        "schedule": item.schedule,
        "protection_state": item.protection_state,
        "stopped": item.stopped,
        "stale": item.stale(now),
        "describe": item.describe(now),
    }


def _protection(facts: VmFacts) -> dict[str, Any]:
    return facts.documents.get("backup") or {}


def kept_until(facts: VmFacts, params: dict[str, Any]) -> tuple[int, str]:
    """(days, until when as ISO UTC) the on-demand recovery point is kept; a PlanError for days out of 1-99."""
    raw = params.get("retain_days")
    try:
        days = DEFAULT_RETAIN_DAYS if raw is None else int(raw)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= 99:
        from backend.recovery.plan import PlanError

        raise PlanError(
            f"--retain-days must be a whole number of days from 1 to 99 (an on-demand VM backup is kept at most 99 days), not {params.get('retain_days')!r}"
        )
    made = facts.fetched_at or datetime.now(UTC)
    until = (made.astimezone(UTC) + timedelta(days=days)).replace(microsecond=0)
    return days, until.strftime("%Y-%m-%dT%H:%M:%SZ")


def _job_state(job: dict[str, Any] | None) -> tuple[str, str, str]:
    """(job status, its snapshot task's status, the error Azure gives) of a backup job document."""
    props = (job or {}).get("properties") or {}
    tasks = (props.get("extendedInfo") or {}).get("tasksList") or ()
    snapshot = next((str(t.get("status") or "") for t in tasks if str(t.get("taskId") or "").lower() == SNAPSHOT_TASK), "")
    errors = props.get("errorDetails") or ()
    error = "; ".join(str(e.get("errorString") or e.get("errorTitle") or "") for e in errors if e) or ""
    return str(props.get("status") or ""), snapshot, error


def backup_step(facts: VmFacts, params: dict[str, Any], *, key: str = "backup-now", optional: bool = False) -> Step:
    vm = facts.vm
    protection = _protection(facts)
    item_id = str(protection.get("item_id") or "")
    vault, vault_id = str(protection.get("vault") or ""), str(protection.get("vault_id") or "")
    days, retain_until = kept_until(facts, params)

    async def find_started_job(ctx: StepContext, since: str) -> str | None:
        sent = parse_time(since)
        for job in await ctx.backend.list_backup_jobs(vault_id, since=sent):
            props = job.get("properties") or {}
            if str(props.get("entityFriendlyName") or "").lower() == vm.name.lower() and str(props.get("operation") or "").lower() == "backup":
                return str(job.get("name") or "")
        return None

    async def precondition(ctx: StepContext) -> Check:
        item = await ctx.backend.get_protected_item(item_id)
        if item is None:
            return blocked(f"{vm.name} is no longer a protected item of vault {vault}: protect it again, then resume")
        state = str(((item.get("properties") or {}).get("protectionState")) or "")
        if state.lower() in ("protectionstopped", "invalid"):
            return blocked(f"protection of {vm.name} in vault {vault} is {state}: resume protection first ('az backup protection resume'), then resume the run")
        sent_at = ctx.unconfirmed_send("backup")
        if sent_at:
            job = await find_started_job(ctx, sent_at)
            if job:
                await ctx.save(job_id=job)
                return already_done(f"the backup sent before the interruption started job {job}")
        return ready(f"{vm.name} is protected in vault {vault} ({state})")

    async def run(ctx: StepContext) -> str:
        started = time.monotonic()
        operation = await ctx.backend.trigger_backup(item_id, retain_until, **await ctx.lro("backup"))
        job = str(((operation.get("properties") or {}).get("jobId")) or "")
        if not job:
            raise StepFailed(f"Azure accepted the backup of {vm.name} but named no job to follow: look in vault {vault}'s Backup jobs")
        await ctx.save(job_id=job)
        return f"Azure queued backup job {job} in vault {vault} in {time.monotonic() - started:.0f} s"

    async def verify(ctx: StepContext) -> Verification:
        job_name = str(ctx.outputs.get("job_id") or "")
        if not job_name:
            return not_verified("no backup job was recorded for this step")
        job_id = f"{vault_id}/backupJobs/{job_name}"
        deadline = time.monotonic() + SETTLE_TIMEOUT
        interval = poll_interval(ctx.settings)
        while True:
            status, snapshot, error = _job_state(await ctx.backend.get_backup_job(job_id))
            if status.lower() in ("failed", "cancelled", "canceled") or snapshot.lower() == "failed":
                return not_verified(
                    f"backup job {job_name} of {vm.name} {status.lower() or 'failed'}: {error or 'see the job in vault ' + vault}", job_id=job_id
                )
            if status.lower() in ("completed", "completedwithwarnings") or snapshot.lower() == "completed":
                done = "the backup is complete" if status.lower().startswith("completed") else "the copy to the vault goes on in Azure"
                return verified(f"backup job {job_name}: the snapshot of every disk of {vm.name} is taken and can be restored now; {done}", job_id=job_id)
            if time.monotonic() >= deadline:
                return not_verified(
                    f"backup job {job_name} is still {status or 'running'} (snapshot {snapshot or 'not started'}): resume the run to wait for it", job_id=job_id
                )
            await asyncio.sleep(interval)

    title = f"Back up {vm.name} now in vault {vault}" + (" (optional first step)" if optional else "")
    return Step(
        key=key,
        title=title,
        why=(
            f"{vm.name} is protected by Azure Backup ({protection.get('describe') or 'vault ' + vault}): a recovery point taken now is what you "
            "restore if a later step goes wrong, or if the scheduled backups have fallen behind."
        ),
        changes=f"an on-demand backup job in vault {vault} (a snapshot of every disk, then a copy to the vault), kept {days} days (until {retain_until}); the VM keeps running",
        kind=Kind.CHANGE,
        undo=f"nothing to undo: the recovery point expires on {retain_until} (or delete it from vault {vault})",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def _blockers(facts: VmFacts) -> list[str]:
    protection = _protection(facts)
    if protection.get("error"):
        return [f"Azure Backup could not be read: {protection['error']}"]
    if not protection.get("protected"):
        return [
            f"{facts.vm.name} is not protected by Azure Backup in any Recovery Services vault of its subscription: protect it first "
            f"('az backup protection enable-for-vm'), or take snapshots instead (snapshot-disks, restore-point)"
        ]
    if protection.get("stopped"):
        return [
            f"protection of {facts.vm.name} in vault {protection.get('vault')} is {protection.get('protection_state')}: resume it before an on-demand backup"
        ]
    return []


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    blockers = _blockers(facts)
    steps: list[Step | None] = [preflight_step(facts)]
    if not blockers:
        steps.append(backup_step(facts, params))
    protection = _protection(facts)
    warnings = []
    if vm.power_state == "running" and vm.agent_status not in ("Ready", "not checked"):
        warnings.append(f"The VM agent reports '{vm.agent_status}': Azure Backup needs it to take the snapshot of a running VM, so the job will likely fail.")
    days, _ = kept_until(facts, params)
    return plan(
        "backup-now",
        "Back up now (Azure Backup)",
        facts,
        steps,
        f"Take an on-demand backup of {vm.name} in vault {protection.get('vault') or '?'} (kept {days} days); the VM is not touched."
        if not blockers
        else f"{vm.name} cannot be backed up on demand now.",
        warnings=warnings,
        blockers=blockers,
        params={"retain_days": days},
    )


def offers_backup_first(facts: VmFacts, made: Plan) -> bool:
    """Whether the plan can take an on-demand backup first: Azure Backup protects the VM (not stopped) and the plan can run."""
    protection = _protection(facts)
    return bool(protection.get("protected")) and not protection.get("stopped") and not made.blockers


def offer_first(made: Plan, facts: VmFacts, params: dict[str, Any]) -> Plan:
    """A plan of ``scenarios.OFFERS_BACKUP_FIRST`` for a protected VM: with ``backup_first`` an on-demand backup
    is its first step after the pre-flight check; without, a warning says it can be."""
    if not offers_backup_first(facts, made):
        return made
    if not params.get("backup_first"):
        made.warnings = (
            *made.warnings,
            f"{facts.vm.name} is protected by Azure Backup ({_protection(facts).get('describe')}): recover --backup-first "
            "(y on the Recovery pane's plan) takes an on-demand backup as this plan's first step (or run backup-now before it).",
        )
        return made
    at = next((i + 1 for i, s in enumerate(made.steps) if s.key == "preflight"), 0)
    made.steps.insert(at, backup_step(facts, params, optional=True))
    made.params = {**made.params, "backup_first": True}
    made.summary = f"Back up {facts.vm.name} first, then: {made.summary}"
    return made
