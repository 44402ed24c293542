"""What a step's callables get: the adapter, the facts the plan was built
from, the run's journal, secrets (in memory only), and helpers to log, report
progress, journal long-running operations and record created resources."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.adapter import Lro, RecoveryBackend
from backend.recovery.journal import Journal

if TYPE_CHECKING:
    from backend.models import Vm
    from backend.recovery.facts import VmFacts
    from backend.recovery.plan import Plan, Step
    from backend.settings import ConnectionSettings

Emit = Callable[[int | None, str, str, dict[str, Any] | None], Awaitable[None]]


class StepFailed(Exception):
    """A step cannot do its work; the message is one sentence for the operator."""


@dataclass
class StepContext:
    backend: RecoveryBackend
    journal: Journal
    run_id: str
    index: int
    step: Step
    plan: Plan
    facts: VmFacts
    secrets: dict[str, str]
    outputs: dict[str, Any]
    emit: Emit
    hook: Callable[[str, int], None]
    progress_every: float = 1.0
    recognised: str | None = None  # set before verify when the step was found already done
    _last_progress: float = 0.0

    @classmethod
    def for_step(
        cls,
        backend: RecoveryBackend,
        journal: Journal,
        run_id: str,
        plan: Plan,
        facts: VmFacts,
        index: int,
        *,
        outputs: dict[str, Any],
        secrets: dict[str, str] | None = None,
        emit: Emit | None = None,
        hook: Callable[[str, int], None] | None = None,
    ) -> StepContext:
        """The context of step `index` of `plan` in run `run_id`. Without `emit` its events go to
        the journal only; without `hook` no test hook is called; without `secrets` it has none."""

        async def journal_only(idx: int | None, event: str, message: str, data: dict[str, Any] | None) -> None:
            journal.add_event(run_id, idx, event, message, data)

        return cls(
            backend=backend,
            journal=journal,
            run_id=run_id,
            index=index,
            step=plan.steps[index],
            plan=plan,
            facts=facts,
            secrets=secrets if secrets is not None else {},
            outputs=outputs,
            emit=emit or journal_only,
            hook=hook or (lambda *_: None),
        )

    @property
    def vm(self) -> Vm:
        return self.facts.vm

    @property
    def settings(self) -> ConnectionSettings:
        return self.backend.settings

    # --- reporting ---------------------------------------------------------

    async def log(self, message: str, **data: Any) -> None:
        await self.emit(self.index, "log", message, data or None)

    async def progress(self, status: str, elapsed_s: float) -> None:
        now = time.monotonic()
        if now - self._last_progress < self.progress_every:
            return
        self._last_progress = now
        await self.emit(self.index, "progress", f"{status} ({elapsed_s:.0f} s)", {"status": status, "elapsed_s": round(elapsed_s, 1)})

    async def save(self, **outputs: Any) -> None:
        """Keep outputs of this step in the journal (never secrets: the journal refuses them)."""
        self.outputs.update(outputs)
        self.journal.save_outputs(self.run_id, self.index, outputs)

    # --- long-running operations ---------------------------------------------

    def operation_token(self, name: str) -> str | None:
        return (self.outputs.get("operations") or {}).get(name)

    def unconfirmed_send(self, name: str) -> str | None:
        """When an operation was about to be sent but its acceptance was never
        journaled (the process died in between): the time, else None."""
        if self.operation_token(name):
            return None
        return (self.outputs.get("sending") or {}).get(name)

    async def lro(self, name: str, *, journal_token: bool = True) -> Lro:
        """Keyword arguments for an adapter write: resume the journaled operation
        if there is one; otherwise journal the intent, then the operation's
        continuation token the moment ARM accepts it.

        ``journal_token=False`` for a write whose effect the step recognises by
        looking at the resource itself (a token would hold the initial response,
        which for some writes should not be kept)."""
        token = self.operation_token(name) if journal_token else None
        if token is None:
            sending = dict(self.outputs.get("sending") or {})
            # To the microsecond: compared with the time ARM gives the end of the VM's last operation.
            sending[name] = datetime.now(UTC).isoformat()
            await self.save(sending=sending)
        else:
            await self.log(f"resuming the {name} operation sent before the interruption")

        async def on_started(new_token: str) -> None:
            if journal_token:
                operations = dict(self.outputs.get("operations") or {})
                if operations.get(name) != new_token:
                    operations[name] = new_token
                    await self.save(operations=operations)
            self.hook("operation", self.index)

        return {"continuation_token": token, "on_started": on_started, "on_progress": self.progress}

    # --- the ledger ------------------------------------------------------------

    async def record_resource(self, resource_id: str, *, kind: str, state: str = "creating", note: str = "") -> None:
        self.journal.record_resource(self.run_id, resource_id, kind=kind, step_key=self.step.key, state=state, note=note)
        if state == "created":
            await self.emit(self.index, "resource", f"created {kind} {resource_id.rsplit('/', 1)[-1]}", {"resource_id": resource_id, "kind": kind})

    # --- fresh reads -------------------------------------------------------------

    async def current_model(self) -> dict[str, Any]:
        """The VM's ARM model and instance view as they are now."""
        return await self.backend.get_vm_document(self.vm.id)
