"""Scenario -> Plan -> Step: the shape of every recovery.

A scenario looks at one VM (its facts: the ARM model, instance view, locks,
sizes) and builds a Plan: an ordered list of Steps. The plan is pure data plus
async callables; showing it changes nothing (a dry run is the plan).

Every step carries, in an operator's words, what it is and why it is needed,
what it changes, its kind, and warnings. Its behaviour is four async callables
that all take a StepContext:

- ``precondition``: re-checks the world right before the step runs and says
  ready / already done (the step took effect earlier: recognise it, do not
  repeat it) / blocked (the step must not run now, and why) / wait (a manual
  step waits for the operator).
- ``run``: does the work; idempotent, long-running operations go through
  ``ctx.lro(name)`` so an interrupted step resumes polling the same operation
  instead of sending it again.
- ``verify``: proves the step had its effect.
- ``undo``: reverses the step where that is possible (the text says how).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.models import Vm
    from backend.recovery.context import StepContext


class Kind(str, enum.Enum):
    CHECK = "check"  # reads only
    CHANGE = "change"  # changes the VM or creates resources; reversible or harmless
    DESTRUCTIVE = "destructive"  # loses something (temporary disk, dynamic IP, host): typed confirmation
    MANUAL = "manual"  # the operator does it; the run waits

    def __str__(self) -> str:
        return self.value


READY, ALREADY_DONE, BLOCKED, WAIT = "ready", "already-done", "blocked", "wait"


@dataclass(frozen=True)
class Check:
    """What a precondition found."""

    verdict: str  # ready / already-done / blocked / wait
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.verdict == READY


def ready(reason: str = "", **data: Any) -> Check:
    return Check(READY, reason, data)


def already_done(reason: str, **data: Any) -> Check:
    return Check(ALREADY_DONE, reason, data)


def blocked(reason: str, **data: Any) -> Check:
    return Check(BLOCKED, reason, data)


def wait_for_operator(reason: str, **data: Any) -> Check:
    return Check(WAIT, reason, data)


@dataclass(frozen=True)
class Verification:
    ok: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def verified(message: str, **data: Any) -> Verification:
    return Verification(True, message, data)


def not_verified(message: str, **data: Any) -> Verification:
    return Verification(False, message, data)


Precondition = Callable[["StepContext"], Awaitable[Check]]
Action = Callable[["StepContext"], Awaitable[str | None]]
Verify = Callable[["StepContext"], Awaitable[Verification]]


@dataclass
class Step:
    key: str  # stable within a plan: the journal matches steps by index and key
    title: str
    why: str  # why it is needed, in an operator's words
    changes: str  # what it changes ("nothing" for checks)
    kind: Kind
    warnings: tuple[str, ...] = ()
    undo: str | None = None  # how to undo it, in words; None when it cannot be undone
    needs_agent: bool = False
    uses_secrets: bool = False  # its run sends a secret: a resumed run needs it again
    precondition: Precondition | None = None
    run: Action | None = None
    verify: Verify | None = None
    undo_run: Action | None = None
    instructions: str = ""  # manual steps: what the operator does, and how to say it is done
    creates: str | None = None  # kind of resource this step creates (goes to the ledger)

    @property
    def writes(self) -> bool:
        return self.kind in (Kind.CHANGE, Kind.DESTRUCTIVE)

    def to_json(self, *, disabled: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "title": self.title,
            "kind": str(self.kind),
            "why": self.why,
            "changes": self.changes,
            "warnings": list(self.warnings),
            "undo": self.undo,
            "needs_agent": self.needs_agent,
        }
        if self.instructions:
            out["instructions"] = self.instructions
        if disabled:
            out["disabled"] = True
        return out


@dataclass
class Plan:
    scenario: str
    title: str
    vm: Vm
    steps: list[Step]
    summary: str
    warnings: tuple[str, ...] = ()
    blockers: tuple[str, ...] = ()  # why this plan cannot run at all (shown, never run)
    details: tuple[tuple[str, str, str], ...] = ()  # (what, before, after) rows, e.g. a resize
    params: dict[str, Any] = field(default_factory=dict)  # non-secret inputs, kept in the journal
    needs_secrets: tuple[str, ...] = ()  # names of secrets the run needs (never their values)

    @property
    def destructive(self) -> bool:
        return any(s.kind is Kind.DESTRUCTIVE for s in self.steps)

    @property
    def writes(self) -> bool:
        return any(s.writes for s in self.steps)

    @property
    def interrupts_service(self) -> bool:
        """A step stops, restarts or moves the VM (restart, redeploy, resize, rescue, recreate...):
        its plan says so, and its confirmation's default answer is Cancel."""
        warnings = [*self.warnings, *(w for s in self.steps for w in s.warnings)]
        return any(w.startswith(INTERRUPTS_PREFIX) for w in warnings)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.steps]

    def to_json(self, *, read_only: bool = False) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "vm": self.vm.name,
            "vm_id": self.vm.id,
            "summary": self.summary,
            "warnings": list(self.warnings),
            "blockers": list(self.blockers),
            "details": [{"what": w, "before": b, "after": a} for w, b, a in self.details],
            "params": self.params,
            "needs_secrets": list(self.needs_secrets),
            "destructive": self.destructive,
            "read_only": read_only,
            "steps": [s.to_json(disabled=read_only and s.writes) for s in self.steps],
        }


class PlanError(Exception):
    """A plan cannot be made (bad input such as an unknown size); one sentence."""


# Warnings the runbook gives, worded once.
TEMP_DISK_WARNING = {
    "Windows": "Erases the temporary disk (D:): anything stored there is lost.",
    "Linux": "Erases the temporary disk (/dev/sdb1, usually /mnt or /mnt/resource): anything stored there is lost.",
}
INTERRUPTS_PREFIX = "Interrupts service"  # every warning that says the VM stops answering begins so
INTERRUPTS_WARNING = f"{INTERRUPTS_PREFIX}: the VM is unreachable until it is back up."
NO_SLA_WARNING = "This VM is not in an availability set, zone or scale set: nothing serves its workload while it is down."
DYNAMIC_IP_WARNING = "Releases the VM's dynamic public IP address {ip}: it will likely get a different one (update DNS and saved RDP/SSH files)."


def temp_disk_warning(vm: Vm) -> str:
    return TEMP_DISK_WARNING.get(vm.os_type, TEMP_DISK_WARNING["Linux"])
