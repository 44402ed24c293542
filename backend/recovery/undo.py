"""Undoing a finished run: `aztriage runs --undo RUN_ID` (and `u` in the Recovery pane's runs).

The run's plan is rebuilt from the facts its journal kept, and the ``undo_run`` of every step
that acted (verified, skipped as already done, or failed after it may have acted) is called
in reverse order, each re-checking the world first: a fix-nsg run's undo deletes the allow
rules it made (only those whose description still names the run) and puts a deleted
blocking rule back as it was captured. Steps without an ``undo_run`` are left as they are
and listed. Every undo is an event in the run's journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend.adapter import RecoveryBackend
from backend.errors import BackendError
from backend.recovery import journal as J
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.journal import Journal, RunRecord
from backend.recovery.plan import Plan


class UndoRefused(Exception):
    """The undo cannot be done; one sentence for the operator."""


@dataclass(frozen=True)
class UndoItem:
    index: int
    title: str
    can_undo: bool
    how: str  # the step's undo, in words


def undo_plan(journal: Journal, run_id: str) -> tuple[RunRecord, Plan, list[UndoItem]]:
    """What undoing the run would do (nothing is read from Azure yet), last step first."""
    from backend.recovery import scenarios

    run = journal.ended_run(run_id, UndoRefused)
    documents = journal.facts(run_id)
    if not documents:
        raise UndoRefused(f"run {run_id} has no recorded facts to rebuild its plan from")
    plan = scenarios.build_plan(run.scenario, VmFacts.from_documents(documents), run.params)
    if plan.keys != [s.key for s in run.steps]:
        raise UndoRefused(f"run {run_id} was made by a different version of its scenario; it cannot be undone safely")
    items = []
    for index in reversed(range(len(plan.steps))):
        step, record = plan.steps[index], run.steps[index]
        if not step.writes or record.state == J.PENDING:
            continue
        items.append(UndoItem(index, step.title, step.undo_run is not None, step.undo or "cannot be undone"))
    if not any(i.can_undo for i in items):
        raise UndoRefused(f"run {run_id} ({run.scenario}) has no step aztriage can undo")
    return run, plan, items


OnItem = Callable[[UndoItem, str, bool], None]


async def undo(backend: RecoveryBackend, journal: Journal, run_id: str, *, on_item: OnItem | None = None) -> list[tuple[UndoItem, str, bool]]:
    """Undo the run's steps, last first; returns (item, what happened, ok) for each."""
    from backend.recovery.runner import run_target

    run, plan, items = undo_plan(journal, run_id)
    if run.target and run.target != run_target(backend.settings):
        raise UndoRefused(f"run {run_id} acted on {run.target}, not on {run_target(backend.settings)}: undo it with the same connection")
    if backend.settings.read_only:
        raise UndoRefused("read-only mode: nothing was undone")
    lock = journal.run_lock(run_id)
    if not lock.acquire():
        raise UndoRefused(f"run {run_id} is being worked on by another aztriage process")
    facts = VmFacts.from_documents(journal.facts(run_id) or {})
    out: list[tuple[UndoItem, str, bool]] = []
    try:
        for item in items:
            if not item.can_undo:
                text, ok = f"left as it is: {item.how}", True
            else:
                step = plan.steps[item.index]
                ctx = StepContext.for_step(backend, journal, run_id, plan, facts, item.index, outputs=dict(journal.step(run_id, item.index).outputs))
                try:
                    assert step.undo_run is not None
                    text, ok = (await step.undo_run(ctx)) or "undone", True
                    if step.creates:
                        for res in journal.resources(run_id):
                            if res.step_key == step.key and res.state not in J.LEDGER_GONE:
                                journal.record_resource(run_id, res.resource_id, kind=res.kind, step_key=res.step_key, state="deleted")
                except (StepFailed, BackendError) as exc:
                    text, ok = f"failed: {exc}", False
                journal.add_event(run_id, item.index, "undone" if ok else "undo-failed", text)
            out.append((item, text, ok))
            if on_item is not None:
                on_item(item, text, ok)
    finally:
        lock.release()
    return out
