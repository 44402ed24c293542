"""backend.turns: a long loop gives the event loop back once its turn's time is used up,
so other work (keys, frames) runs between its items; never before."""

from __future__ import annotations

import asyncio

from backend.turns import Turns


async def interleaving(budget_s: float) -> list[str]:
    seen: list[str] = []

    async def loop() -> None:
        turns = Turns(budget_s)
        for i in range(3):
            seen.append(f"item {i}")
            if turns.due():
                await turns.next()

    async def other() -> None:
        for _ in range(3):
            seen.append("other")
            await asyncio.sleep(0)

    await asyncio.gather(loop(), other())
    return seen


async def test_a_spent_turn_lets_other_work_run_between_items():
    assert await interleaving(0.0) == ["item 0", "other", "item 1", "other", "item 2", "other"]


async def test_a_turn_with_time_left_runs_on():
    assert await interleaving(3600.0) == ["item 0", "item 1", "item 2", "other", "other", "other"]
