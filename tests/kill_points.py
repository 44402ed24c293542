"""Where a recovery run can be killed, derived from the plan itself rather than
written down: one uninterrupted in-process run of the scenario (the real
adapter against an emulator of its own) records every boundary the runner
passes, step by step, so a step added to a scenario, or a long-running
operation added to a step, is covered by the kill tests without editing them.

A boundary is the runner's kill hook point: ``before:I`` (the step is about to
be checked), ``running:I`` (checked and marked running, nothing sent),
``operation:I`` (a long-running operation accepted by ARM and journaled, not
finished: the middle of it; ``operation:I#2`` for the step's second one),
``done:I`` (its action ended, not verified yet) and ``verified:I``.
``verified:I`` is left out where ``before:I+1`` follows: the runner writes
nothing between the two, so a kill at either leaves the same journal."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class StepPoints:
    index: int
    key: str
    points: tuple[str, ...]  # in the order a run passes them


def deal(items: list | tuple, hand: int, hands: int) -> list:
    """Hand `hand` (0-based) of `items` dealt round-robin into `hands`: every item goes to
    exactly one hand. Kill tests are parametrized by a fixed number of hands, so that
    collecting them needs no recorded run; the run is recorded when a hand is played."""
    assert len(items) >= hands, f"only {len(items)} to deal into {hands} tests: lower the number of tests"
    return list(items[hand::hands])


def hands(count: int) -> pytest.MarkDecorator:
    """Parametrizes an in-process kill test over `count` hands (ids hand-N-of-COUNT) of the recorded boundaries (see deal)."""
    return pytest.mark.parametrize("hand", range(count), ids=lambda n: f"hand-{n + 1}-of-{count}")


def chunk(steps: tuple, n: int, count: int) -> tuple:
    """The n-th (0-based) of `count` consecutive chunks of `steps`, as even as they come."""
    assert len(steps) >= count, f"{len(steps)} steps cannot fill {count} cases"
    return steps[n * len(steps) // count : (n + 1) * len(steps) // count]


def case_points(steps: tuple[StepPoints, ...], case: int, cases: int) -> list[str]:
    """The boundaries a CLI kill test kills at: those of the `case`-th of `cases` chunks of the steps."""
    chosen = chunk(steps, case, cases)
    assert all(step.points for step in chosen), "a step the recorded run never reached"
    return [p for step in chosen for p in step.points]


def kill_rounds(emu, points: list[str], home: Path, tmp_path: Path) -> Iterator[Path]:
    """The homes of a CLI kill test's rounds: a round while `points` remain (each round's run
    takes off those it was killed at); every round after the first starts on the emulator
    reset to its estate, with a home of its own."""
    from tests.recovery_support import reset

    fresh = 0
    while points:
        if fresh:
            reset(emu)
            home = tmp_path / f"home-{fresh}"
        fresh += 1
        yield home


@dataclass(frozen=True)
class Scenario:
    keys: tuple[str, ...]
    steps: tuple[StepPoints, ...]
    manual: int | None  # the index of the step that waits for the operator

    @property
    def points(self) -> list[tuple[str, int]]:
        """Every boundary as (boundary, index), for the in-process kill hook (no #n: one per step there)."""
        out = []
        for step in self.steps:
            for point in step.points:
                where, _, rest = point.partition(":")
                index, _, nth = rest.partition("#")
                if not nth:
                    out.append((where, int(index)))
        return out


@functools.cache
def recorded(vm_name: str, scenario: str, params: tuple[tuple[str, object], ...] = (), prepare: Callable[[Any], None] | None = None) -> Scenario:
    """Plan `scenario` for `vm_name` on a fresh demo emulator and run it once end to end
    (telling the manual step it is done), recording the boundaries it passes. `prepare(emu)`,
    when given (a module-level function: it is part of the cache key), changes the estate first,
    for a plan the demo does not make as it is. Called from fixtures and tests, never at import:
    collecting the tests does no recovery. Once per process."""
    from backend.recovery import scenarios
    from backend.recovery.plan import Kind
    from tests.recovery_support import own_emulator
    from tests.rescue_support import make_rig

    passed: list[tuple[str, int, int]] = []
    seen: dict[tuple[str, int], int] = {}

    def record(where: str, index: int) -> None:
        seen[(where, index)] = n = seen.get((where, index), 0) + 1
        if (where, index, n) not in passed:
            passed.append((where, index, n))

    async def run(emu, journal_path: Path):
        rig = await make_rig(emu, journal_path)
        try:
            plan, facts = await rig.plan(vm_name, scenario, dict(params))
            result = await rig.runner(vm_name, record).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
            while result.status == "waiting":
                seen.clear()  # counts are per process: a resume starts again
                result = await rig.runner(vm_name, record, operator_done=True).resume(result.run_id, scenarios.build_plan)
            assert result.status == "succeeded", f"the recording run of {scenario} on {vm_name} failed: {result.summary}"
            return plan
        finally:
            await rig.backend.close()
            rig.journal.close()

    emu = own_emulator()
    old = os.environ.get("AZTRIAGE_REACH_TIMEOUT")
    os.environ["AZTRIAGE_REACH_TIMEOUT"] = "3"
    try:
        if prepare is not None:
            prepare(emu)
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(1) as pool:
            # In a thread of its own, so its event loop never meets the tests' loop.
            plan = pool.submit(asyncio.run, run(emu, Path(tmp) / "journal.sqlite3")).result()
    finally:
        emu.stop()
        if old is None:
            os.environ.pop("AZTRIAGE_REACH_TIMEOUT", None)
        else:
            os.environ["AZTRIAGE_REACH_TIMEOUT"] = old

    befores = {index for where, index, _ in passed if where == "before"}
    steps = []
    for index, step in enumerate(plan.steps):
        points = []
        for where, i, n in passed:
            if i != index or (where == "verified" and index + 1 in befores):
                continue
            point = f"{where}:{i}" + (f"#{n}" if n > 1 else "")
            if point not in points:
                points.append(point)
        steps.append(StepPoints(index, step.key, tuple(points)))
    manual = next((i for i, s in enumerate(plan.steps) if s.kind is Kind.MANUAL), None)
    return Scenario(tuple(plan.keys), tuple(steps), manual)
