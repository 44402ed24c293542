"""Helpers for the recreate and rescue tests: runs driven through the real
adapter against an emulator of their own, the operator's "done", kills at a
step boundary (in-process, like kill -9 for the journal: nothing is written
after the boundary), and the store checks every run ends with: no customer
disk deleted, nothing in the store that the ledger does not list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from backend.azure.backend import AzureBackend
from backend.recovery import scenarios, service
from backend.recovery.journal import Journal
from backend.recovery.runner import Runner, RunResult
from tests.recovery_support import reset
from tests.support import demo_settings, emulator_control

POLL = 0.02  # the emulator's operations end in milliseconds: poll them often


class Killed(BaseException):
    """The process dying at a step boundary: nothing after it reaches the journal
    (a BaseException, so no step handler catches it; the locks are released as
    the kernel releases them after kill -9)."""


@dataclass(frozen=True)
class Estate:
    ids: frozenset[str]
    groups: frozenset[str]
    disks: frozenset[str]


def estate(emu) -> Estate:
    dump = emulator_control(emu, "GET", "/_emulator/resources")
    ids = frozenset(d["id"].lower() for d in dump["resources"])
    groups = frozenset(g["id"].lower() for g in dump["resourceGroups"])
    disks = frozenset(d["id"].lower() for d in dump["resources"] if d["type"].lower() == "microsoft.compute/disks")
    return Estate(ids, groups, disks)


def store_changes(emu, before: Estate) -> dict[str, set[str]]:
    dump = emulator_control(emu, "GET", "/_emulator/resources")
    now = {d["id"].lower() for d in dump["resources"]}
    groups = {g["id"].lower() for g in dump["resourceGroups"]}
    deleted = {d["id"].lower() for d in dump["deleted"]}
    return {
        "new": now - before.ids,
        "new_groups": groups - before.groups,
        "deleted_customer_disks": {d for d in deleted if d in before.disks and d not in now},
        "gone": (before.ids - now),
        "deleted_new": {d for d in deleted if d not in before.ids and d not in before.groups},
    }


def assert_store_clean(emu, journal: Journal, before: Estate) -> dict[str, set[str]]:
    """Zero customer disks deleted; every resource (and group) that was not in the estate,
    alive or deleted since, is in the ledger of some run."""
    changes = store_changes(emu, before)
    ledger = {r.resource_id.lower() for r in journal.resources()}
    assert changes["deleted_customer_disks"] == set(), changes["deleted_customer_disks"]
    assert changes["new"] <= ledger, changes["new"] - ledger
    assert changes["new_groups"] <= ledger, changes["new_groups"] - ledger
    assert changes["deleted_new"] <= ledger, changes["deleted_new"] - ledger
    return changes


def assert_ledger_matches(emu, journal: Journal, run_id: str) -> None:
    """Each ledger entry says truthfully whether its resource exists."""
    dump = emulator_control(emu, "GET", "/_emulator/resources")
    now = {d["id"].lower() for d in dump["resources"]} | {g["id"].lower() for g in dump["resourceGroups"]}
    for res in journal.resources(run_id):
        there = res.resource_id.lower() in now
        if res.state in ("created", "keep", "in-use", "failed"):
            assert there, f"ledger says {res.state} but {res.resource_id} does not exist"
        elif res.state in ("deleted", "released", "not-created"):
            assert not there, f"ledger says {res.state} but {res.resource_id} exists"


def operation_counts(emu) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for op in emulator_control(emu, "GET", "/_emulator/operations"):
        key = (op["kind"], op["resource_id"].lower())
        counts[key] = counts.get(key, 0) + 1
    return counts


def guest(emu, vm_id: str) -> dict[str, Any]:
    for key, facts in (emulator_control(emu, "GET", "/_emulator/guest").get("vms") or {}).items():
        if key.lower() == vm_id.lower():
            return facts
    return {}


def fault(emu, spec: dict[str, Any]) -> None:
    emulator_control(emu, "POST", "/_emulator/faults", spec)


@dataclass
class Rig:
    emu: Any
    backend: AzureBackend
    journal: Journal
    events: list = field(default_factory=list)

    async def plan(self, vm_name: str, scenario: str, params: dict | None = None):
        vm_id = await service.find_vm(self.backend, vm_name)
        return await service.make_plan(self.backend, vm_id, scenario, params or {})

    def runner(self, vm_name: str | None, hook=None, operator_done: bool = False, secrets: dict | None = None) -> Runner:
        kwargs: dict[str, Any] = {"on_event": self.events.append, "confirm_name": vm_name, "operator_done": operator_done, "secrets": secrets}
        if hook is not None:
            kwargs["hook"] = hook
        return Runner(self.backend, self.journal, **kwargs)

    async def run(
        self, vm_name: str, scenario: str, params: dict | None = None, *, hook=None, operator_done: bool = True, secrets: dict | None = None
    ) -> tuple[Any, RunResult]:
        """Plan and run (with `secrets`, as typed by the operator); when it waits for the operator
        and `operator_done`, say it is done and resume."""
        plan, facts = await self.plan(vm_name, scenario, params)
        result = await self.runner(vm_name, hook, secrets=secrets).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
        if result.status == "waiting" and operator_done:
            result = await self.resume(result.run_id, vm_name)
        return plan, result

    async def resume(self, run_id: str, vm_name: str, *, hook=None, operator_done: bool = True) -> RunResult:
        """Resume; with `operator_done`, a run that reaches the manual step on the way is told it is done too."""
        result = await self.runner(vm_name, hook, operator_done).resume(run_id, scenarios.build_plan)
        if operator_done and result.status == "waiting":
            result = await self.runner(vm_name, hook, operator_done).resume(run_id, scenarios.build_plan)
        return result

    async def run_with_fault_at(self, vm_name: str, scenario: str, params: dict, key: str, spec: dict[str, Any]) -> tuple[Any, RunResult, int]:
        """Plan and run, arming the emulator fault `spec` (once) just before the step `key`;
        returns the plan, the failed run's result and the index of that step. The run is
        checked to have stopped honestly there: the steps before it done, those after pending."""
        plan, facts = await self.plan(vm_name, scenario, params)
        target = plan.keys.index(key)

        def arm_fault(where: str, index: int) -> None:
            if (where, index) == ("before", target):
                fault(self.emu, dict(spec, count=1))

        result = await self.runner(vm_name, arm_fault).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
        assert result.status == "failed", result.summary
        got = states(result)
        assert got[target] == "failed" and set(got[:target]) <= {"verified", "skipped"} and set(got[target + 1 :]) == {"pending"}, got
        assert result.summary.startswith(f"stopped at step {target + 1} ({plan.steps[target].title})")
        return plan, result, target

    async def run_killed_at(self, vm_name: str, scenario: str, params: dict, boundary: tuple[str, int]) -> tuple[Any, RunResult, bool]:
        """Run, dying once at `boundary`, then resume (saying the manual step is done) until it ends."""
        state = {"armed": True, "killed": False}

        def die(where: str, index: int) -> None:
            if state["armed"] and (where, index) == boundary:
                state["armed"] = False
                state["killed"] = True
                raise Killed()

        plan, facts = await self.plan(vm_name, scenario, params)
        result: RunResult | None = None
        try:
            result = await self.runner(vm_name, die).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
        except Killed:
            pass
        run_id = result.run_id if result is not None else self.journal.list_runs(limit=1)[0].run_id
        for _ in range(4):
            if result is not None and result.status != "waiting":
                break
            try:
                result = await self.resume(run_id, vm_name, hook=die)
            except Killed:
                result = None
        assert result is not None
        return plan, result, state["killed"]


async def make_rig(emu, journal_path) -> Rig:
    backend = AzureBackend(demo_settings(emu, polling_interval=POLL), retry_total=1)
    return Rig(emu, backend, Journal(journal_path))


@asynccontextmanager
async def fresh_rig(emu, journal_path) -> AsyncIterator[Rig]:
    """A rig with a new journal on the emulator reset to its initial estate; closed after."""
    reset(emu)
    rig = await make_rig(emu, journal_path)
    try:
        yield rig
    finally:
        await rig.backend.close()
        rig.journal.close()


@asynccontextmanager
async def killed_at(rigs, boundary: tuple[str, int]) -> AsyncIterator[Rig]:
    """A fresh rig (from the `rigs` fixture) for one boundary of a kill test; an assertion that
    fails inside says which boundary it was."""
    async with rigs() as rig:
        try:
            yield rig
        except AssertionError as exc:
            raise AssertionError(f"killed at {boundary[0]}:{boundary[1]}: {exc}") from exc


async def killed_at_each(
    rigs, boundaries: Iterable[tuple[str, int]], vm_name: str, scenario: str, params: dict, ended_ok: Callable[[Rig, RunResult], object]
) -> None:
    """For each boundary, on a fresh rig: the run killed there once and resumed to its end,
    then `ended_ok(rig, result)` (a failed assertion says which boundary it was)."""
    for boundary in boundaries:
        async with killed_at(rigs, boundary) as rig:
            _, result, killed = await rig.run_killed_at(vm_name, scenario, params, boundary)
            assert killed
            ended_ok(rig, result)


def states(result: RunResult) -> list[str]:
    return [s.state for s in result.record.steps]
