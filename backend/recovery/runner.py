"""The runner: walks a plan step by step, journaling every state change, so a
run killed anywhere resumes where it stopped.

For each step not yet finished:
1. the precondition re-checks the world (unless the step's operation is
   already in flight: then polling resumes from the journaled token);
   "already done" skips the action, "blocked" stops the run, "wait" parks a
   manual step for the operator;
2. the action runs (state "running", then "done");
3. verify proves the effect (state "verified", or "failed").

Safety rails live here as well as in the UI: a plan with blockers never
starts, a read-only connection never starts a plan that writes, a
destructive plan needs the VM's name typed, two processes never work on the
same run or the same VM at once, and a VM with an unfinished run gets no
second run until that one is resumed or abandoned.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from backend.adapter import RecoveryBackend
from backend.errors import BackendError
from backend.recovery import journal as J
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.journal import Journal, RunRecord, utcnow
from backend.recovery.plan import ALREADY_DONE, BLOCKED, WAIT, Check, Kind, Plan, Verification, ready, verified
from backend.settings import ConnectionSettings

log = logging.getLogger("aztriage.recovery")

# Test hook: kill this process (SIGKILL, like `kill -9`) at a step boundary,
# e.g. AZTRIAGE_RECOVERY_KILL_AT="operation:1" (boundaries: before, running,
# operation, done, verified; the number is the step index). "operation:1#2"
# is the second time this process passes it (a step's second long-running operation).
KILL_ENV = "AZTRIAGE_RECOVERY_KILL_AT"
_passed: dict[tuple[str, int], int] = {}


class RunRefused(Exception):
    """A run must not start (or resume); one sentence for the operator."""


@dataclass(frozen=True)
class StepEvent:
    run_id: str
    index: int | None
    key: str | None
    title: str | None
    event: str  # run-started, run-resumed, checked, started, log, progress, resource, skipped, done, verified, failed, waiting, run-finished
    state: str | None  # the step's state after the event (or the run's status for run events)
    message: str
    at: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "event": self.event,
            "step": self.index,
            "key": self.key,
            "title": self.title,
            "state": self.state,
            "message": self.message,
            "at": self.at,
        }
        if self.data:
            out["data"] = self.data
        return out


@dataclass
class RunResult:
    run_id: str
    status: str  # succeeded / failed / waiting
    summary: str
    record: RunRecord | None = None

    @property
    def exit_code(self) -> int:
        return {J.RUN_SUCCEEDED: 0, J.RUN_WAITING: 3}.get(self.status, 1)


OnEvent = Callable[[StepEvent], Awaitable[None] | None]
BuildPlan = Callable[[VmFacts, dict[str, Any]], Plan]


def _kill_hook(boundary: str, index: int) -> None:
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("#")
    if point == f"{boundary}:{index}":
        seen = _passed[(boundary, index)] = _passed.get((boundary, index), 0) + 1
        if seen == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def run_target(settings: ConnectionSettings) -> str:
    """Which Azure a run acted on: a resumed run must act on the same one."""
    if getattr(settings, "demo", False):
        return "demo"
    return settings.endpoint


class Runner:
    def __init__(
        self,
        backend: RecoveryBackend,
        journal: Journal,
        *,
        on_event: OnEvent | None = None,
        secrets: dict[str, str] | None = None,
        confirm_name: str | None = None,
        operator_done: bool = False,
        hook: Callable[[str, int], None] = _kill_hook,
    ):
        self.backend = backend
        self.journal = journal
        self.on_event = on_event
        self.secrets = {k: v for k, v in (secrets or {}).items() if v}
        self.confirm_name = confirm_name
        self.operator_done = operator_done
        self.hook = hook
        self._titles: dict[int, tuple[str, str]] = {}
        journal.guard_secrets(list(self.secrets.values()))

    # --- events ---------------------------------------------------------------

    async def _emit(self, run_id: str, index: int | None, event: str, message: str = "", data: dict[str, Any] | None = None, state: str | None = None) -> None:
        at = self.journal.add_event(run_id, index, event, message, data)
        key, title = self._titles.get(index, (None, None)) if index is not None else (None, None)
        ev = StepEvent(run_id, index, key, title, event, state, message, at, dict(data or {}))
        if self.on_event is not None:
            result = self.on_event(ev)
            if inspect.isawaitable(result):
                await result

    # --- guards -----------------------------------------------------------------

    def _check_startable(self, plan: Plan) -> None:
        if plan.blockers:
            raise RunRefused(f"{plan.title} cannot run on {plan.vm.name}: {plan.blockers[0]}")
        if plan.writes and self.backend.settings.read_only:
            raise RunRefused("read-only mode: the plan was shown and nothing was changed")
        if plan.destructive and (self.confirm_name or "") != plan.vm.name:
            if self.confirm_name:
                raise RunRefused(f"the typed name {self.confirm_name!r} is not the VM's name {plan.vm.name!r}: nothing was changed")
            raise RunRefused(f"this plan has destructive steps: confirm by typing the VM's name ({plan.vm.name})")
        missing = [name for name in plan.needs_secrets if name not in self.secrets]
        if missing:
            raise RunRefused(f"this plan needs the {' and the '.join(n.replace('_', ' ') for n in missing)}, which was not given")

    @contextlib.contextmanager
    def _locked(self, run_id: str, vm_id: str, vm_name: str) -> Iterator[None]:
        """Hold the VM's lock and the run's while the body works on the run."""
        vm_lock = self.journal.vm_lock(vm_id)
        if not vm_lock.acquire():
            raise RunRefused(f"another aztriage process is running a recovery on {vm_name}; wait for it or stop it first")
        run_lock = self.journal.run_lock(run_id)
        if not run_lock.acquire():
            vm_lock.release()
            raise RunRefused(f"run {run_id} is being worked on by another aztriage process")
        try:
            yield
        finally:
            run_lock.release()
            vm_lock.release()

    async def _announce_and_drive(self, run_id: str, plan: Plan, facts: VmFacts, event: str, message: str, data: dict[str, Any] | None = None) -> RunResult:
        """Say that the run starts (or resumes), then walk its steps."""
        self._titles = {i: (s.key, s.title) for i, s in enumerate(plan.steps)}
        await self._emit(run_id, None, event, message, data, state=J.RUN_RUNNING)
        return await self._drive(run_id, plan, facts)

    # --- start and resume -----------------------------------------------------------

    async def start(self, plan: Plan, build: BuildPlan, facts: VmFacts, *, refresh: Callable[[], Awaitable[VmFacts]] | None = None) -> RunResult:
        """Start a new run of `plan`. With `refresh`, the VM is read again right
        before the run is recorded (the model kept is the one just before the
        first change) and the plan rebuilt from it must match the one shown."""
        self._check_startable(plan)
        unfinished = self.journal.unfinished_runs(plan.vm.id)
        if unfinished:
            other = unfinished[0]
            raise RunRefused(
                f"run {other.run_id} ({other.scenario}) on {plan.vm.name} is {other.status}: "
                f"resume it with 'aztriage recover --resume {other.run_id}' or abandon it with 'aztriage runs --abandon {other.run_id}'"
            )
        run_id = J.new_run_id()
        with self._locked(run_id, plan.vm.id, plan.vm.name):
            if refresh is not None:
                facts = await refresh()
                fresh = build(facts, plan.params)
                if fresh.keys != plan.keys or fresh.blockers:
                    why = fresh.blockers[0] if fresh.blockers else "its steps are no longer the same"
                    raise RunRefused(f"{plan.vm.name} changed since the plan was made ({why}): review the new plan and start again")
                plan = fresh
            self.journal.create_run(
                run_id=run_id,
                vm_id=plan.vm.id,
                vm_name=plan.vm.name,
                scenario=plan.scenario,
                params=plan.params,
                needs_secrets=list(plan.needs_secrets),
                target=run_target(self.backend.settings),
                facts=facts.documents,
                steps=[(s.key, s.title, str(s.kind)) for s in plan.steps],
            )
            return await self._announce_and_drive(
                run_id, plan, facts, "run-started", f"{plan.title} on {plan.vm.name}: {len(plan.steps)} steps", {"scenario": plan.scenario, "vm": plan.vm.name}
            )

    async def resume(self, run_id: str, build: Callable[[str, VmFacts, dict[str, Any]], Plan]) -> RunResult:
        """Resume an interrupted, waiting or failed run from the journal."""
        run = self.journal.get_run(run_id)
        if run is None:
            raise RunRefused(f"there is no run {run_id} in the journal ({self.journal.path})")
        if run.status == J.RUN_SUCCEEDED:
            return RunResult(run_id, J.RUN_SUCCEEDED, f"run {run_id} already ended verified; nothing to resume", run)
        if run.status == J.RUN_RUNNING:
            raise RunRefused(f"run {run_id} is being worked on by another aztriage process")
        target = run_target(self.backend.settings)
        if run.target and run.target != target:
            raise RunRefused(f"run {run_id} acted on {run.target}, not on {target}: resume it with the same connection")
        documents = self.journal.facts(run_id)
        if not documents:
            raise RunRefused(f"run {run_id} has no recorded facts to rebuild its plan from")
        facts = VmFacts.from_documents(documents)
        plan = build(run.scenario, facts, run.params)
        if plan.keys != [s.key for s in run.steps]:
            raise RunRefused(f"run {run_id} was made by a different version of its scenario; it cannot be resumed safely")
        if plan.writes and self.backend.settings.read_only:
            raise RunRefused("read-only mode: a run that changes things cannot be resumed")
        states = {s.idx: s.state for s in run.steps}
        pending = [i for i, s in enumerate(plan.steps) if states.get(i) not in J.FINISHED_STEP_STATES]
        if any(plan.steps[i].kind is Kind.DESTRUCTIVE for i in pending) and (self.confirm_name or "") != plan.vm.name:
            raise RunRefused(f"the rest of this run has destructive steps: confirm by typing the VM's name ({plan.vm.name})")
        by_index = {s.idx: s for s in run.steps}

        def resends(i: int) -> bool:
            # A step that was never sent needs the secret. One interrupted while
            # sending may have reached Azure: its precondition decides, and it
            # asks for the secret only if it really has to send again.
            rec = by_index.get(i)
            return rec is None or rec.state in (J.PENDING, J.FAILED)

        if any(plan.steps[i].uses_secrets and resends(i) for i in pending):
            missing = [name for name in run.needs_secrets if name not in self.secrets]
            if missing:
                raise RunRefused(
                    f"this run needs the {' and the '.join(n.replace('_', ' ') for n in missing)} again (secrets are never kept): "
                    "pass --password-stdin or --ssh-key"
                )
        with self._locked(run_id, run.vm_id, run.vm_name):
            self.journal.set_run_status(run_id, J.RUN_RUNNING)
            at = pending[0] + 1 if pending else len(plan.steps)
            return await self._announce_and_drive(run_id, plan, facts, "run-resumed", f"resuming {plan.title} on {plan.vm.name} at step {at}")

    def abandon(self, run_id: str) -> RunRecord:
        """Mark an unfinished run failed so the VM can get a new run; created resources stay in the ledger."""
        run = self.journal.get_run(run_id)
        if run is None:
            raise RunRefused(f"there is no run {run_id} in the journal")
        if not run.unfinished:
            raise RunRefused(f"run {run_id} is {run.status}; only an unfinished run can be abandoned")
        lock = self.journal.run_lock(run_id)
        if not lock.acquire():
            raise RunRefused(f"run {run_id} is being worked on by another aztriage process")
        try:
            self.journal.set_run_status(run_id, J.RUN_FAILED, f"abandoned by the operator at {utcnow()}")
            self.journal.add_event(run_id, None, "run-abandoned", "abandoned by the operator")
        finally:
            lock.release()
        return self.journal.get_run(run_id)  # type: ignore[return-value]

    # --- the loop ---------------------------------------------------------------------

    async def _drive(self, run_id: str, plan: Plan, facts: VmFacts) -> RunResult:
        status, summary = J.RUN_SUCCEEDED, ""
        for index, step in enumerate(plan.steps):
            record = self.journal.step(run_id, index)
            if record.state in J.FINISHED_STEP_STATES:
                continue
            outcome = await self._step(run_id, plan, facts, index, step, record)
            if outcome == J.WAITING:
                status = J.RUN_WAITING
                summary = f"waiting for the operator at step {index + 1}: {step.title}. When it is done: aztriage recover --resume {run_id} --operator-done"
                break
            if outcome == J.FAILED:
                status = J.RUN_FAILED
                message = self.journal.step(run_id, index).message
                summary = f"stopped at step {index + 1} ({step.title}): {message}"
                break
        else:
            held = [r for r in self.journal.resources(run_id) if r.state not in J.LEDGER_GONE]
            created = [r for r in held if r.kind != "moved-disk"]
            originals = [r for r in held if r.kind == "moved-disk"]  # a move's original disks: the customer's, not created
            summary = f"{plan.title} on {plan.vm.name}: all {len(plan.steps)} steps verified"
            if created:
                summary += f"; {len(created)} resource{'s' if len(created) != 1 else ''} created and kept: " + ", ".join(
                    r.resource_id.rsplit("/", 1)[-1] for r in created
                )
            if originals:
                summary += "; original disks kept, detached, until released: " + ", ".join(r.resource_id.rsplit("/", 1)[-1] for r in originals)
        if status != J.RUN_SUCCEEDED:
            # Say what the run left behind so far: a stopped run is honest about what exists.
            held = [r for r in self.journal.resources(run_id) if r.state not in J.LEDGER_GONE]
            if held:
                summary += "; created so far: " + ", ".join(f"{r.kind} {r.resource_id.rsplit('/', 1)[-1]} ({r.state})" for r in held)
        self.journal.set_run_status(run_id, status, summary)
        await self._emit(run_id, None, "run-finished", summary, {"status": status}, state=status)
        return RunResult(run_id, status, summary, self.journal.get_run(run_id))

    async def _step(self, run_id: str, plan: Plan, facts: VmFacts, index: int, step: Any, record: J.StepRecord) -> str:
        self.hook("before", index)
        outputs = dict(record.outputs)
        state = record.state
        if state == J.FAILED:
            # A retry: whatever was in flight ended; check the world again from scratch.
            outputs.pop("operations", None)
            outputs.pop("sending", None)
            self.journal.set_step(run_id, index, J.PENDING, outputs={"operations": {}, "sending": {}})
            state = J.PENDING

        async def emit(idx: int | None, event: str, message: str, data: dict[str, Any] | None) -> None:
            await self._emit(run_id, idx, event, message, data)

        ctx = StepContext.for_step(self.backend, self.journal, run_id, plan, facts, index, outputs=outputs, secrets=self.secrets, emit=emit, hook=self.hook)
        try:
            if step.kind is Kind.MANUAL and state == J.WAITING:
                if not self.operator_done:
                    found = str(outputs.get("instructions") or "")
                    await self._emit(run_id, index, "waiting", found or step.instructions or step.title, state=J.WAITING)
                    return J.WAITING
                self.journal.set_step(run_id, index, J.DONE, message="the operator said it is done")
                await self._emit(run_id, index, "done", "the operator said it is done", state=J.DONE)
                state = J.DONE

            if state in (J.PENDING, J.RUNNING):
                in_flight = state == J.RUNNING and bool(outputs.get("operations"))
                if not in_flight:
                    check = await self._precondition(ctx, step)
                    if step.precondition is not None:
                        await self._emit(run_id, index, "checked", check.reason or "ready", check.data or None, state=state)
                    if check.verdict == BLOCKED:
                        self.journal.set_step(run_id, index, J.FAILED, message=check.reason)
                        await self._emit(run_id, index, "failed", check.reason, state=J.FAILED)
                        return J.FAILED
                    if check.verdict == WAIT:
                        # Instructions the check wrote from what it found (a rescue VM's address) replace the plan's.
                        found = str((check.data or {}).get("instructions") or "")
                        self.journal.set_step(run_id, index, J.WAITING, message=check.reason, outputs={"instructions": found} if found else None)
                        await self._emit(run_id, index, "waiting", found or step.instructions or check.reason, state=J.WAITING)
                        return J.WAITING
                    if check.verdict == ALREADY_DONE:
                        return await self._verify(ctx, step, skipped_because=check.reason)
                self.journal.set_step(run_id, index, J.RUNNING, started=True)
                await self._emit(run_id, index, "started", step.title, state=J.RUNNING)
                self.hook("running", index)
                message = (await step.run(ctx) if step.run else None) or ""
                self.journal.set_step(run_id, index, J.DONE, message=message)
                if step.run is not None:
                    await self._emit(run_id, index, "done", message or "done", state=J.DONE)
                self.hook("done", index)
            return await self._verify(ctx, step)
        except (StepFailed, BackendError) as exc:
            message = str(exc)
            self.journal.set_step(run_id, index, J.FAILED, message=message)
            await self._emit(run_id, index, "failed", message, state=J.FAILED)
            return J.FAILED

    async def _precondition(self, ctx: StepContext, step: Any) -> Check:
        if step.precondition is None:
            return ready()
        return await step.precondition(ctx)

    async def _verify(self, ctx: StepContext, step: Any, *, skipped_because: str | None = None) -> str:
        index, run_id = ctx.index, ctx.run_id
        ctx.recognised = skipped_because
        if step.verify is not None:
            result: Verification = await step.verify(ctx)
        else:
            result = verified(self.journal.step(run_id, index).message or skipped_because or "done")
        if not result.ok:
            message = result.message
            if skipped_because:
                message = f"{skipped_because}, but {result.message}"
            self.journal.set_step(run_id, index, J.FAILED, message=message, outputs={"verify": result.data} if result.data else None)
            await self._emit(run_id, index, "failed", message, result.data or None, state=J.FAILED)
            return J.FAILED
        final = J.SKIPPED if skipped_because else J.VERIFIED
        message = result.message
        if skipped_because and skipped_because not in result.message:
            message = f"{skipped_because}; {result.message}"
        self.journal.set_step(run_id, index, final, message=message, outputs={"verify": result.data} if result.data else None)
        await self._emit(run_id, index, "skipped" if skipped_because else "verified", message, result.data or None, state=final)
        self.hook("verified", index)
        return final
