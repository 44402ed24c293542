"""A recovery plan's steps as a table: number, state, kind, title.

States read without colour: a mark and a word (✓ verified, ✗ FAILED, ▶ running).
DESTRUCTIVE is in upper case; a step disabled by --read-only says so. The
order is the plan's, never re-sorted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backend.recovery.plan import Kind, Step
from widgets.fast_table import Column, FastTable, Row

COLUMNS = (
    Column("n", "#", min_width=2, max_width=3, align_right=True),
    Column("state", "STATE", min_width=10, max_width=12),
    Column("kind", "KIND", min_width=6, max_width=11),
    Column("step", "STEP", min_width=16, max_width=200, shrink=True),
)

STATE_TEXT = {
    "pending": ("· pending", "muted"),
    "running": ("▶ running", "accent"),
    "done": ("… checking", "accent"),
    "verified": ("✓ verified", "ok"),
    "skipped": ("↷ already", "ok"),
    "failed": ("✗ FAILED", "bad"),
    "waiting": ("⏸ WAITING", "warn"),
    "disabled": ("– disabled", "muted"),
}
KIND_TONE = {Kind.CHECK: "muted", Kind.CHANGE: None, Kind.DESTRUCTIVE: "bad", Kind.MANUAL: "warn"}


def kind_text(kind: Kind) -> str:
    return "DESTRUCTIVE" if kind is Kind.DESTRUCTIVE else str(kind)


def step_rows(steps: Sequence[Step], states: Mapping[int, str], *, read_only: bool = False) -> list[Row]:
    rows = []
    for i, step in enumerate(steps):
        state = states.get(i, "pending")
        if read_only and step.writes and state == "pending":
            state = "disabled"
        text, tone = STATE_TEXT.get(state, (state, None))
        rows.append(
            Row(
                key=i,
                cells=(str(i + 1), text, kind_text(step.kind), step.title),
                tones=(None, tone, KIND_TONE.get(step.kind), "muted" if state == "disabled" else None),
                sort_keys=(),
                haystack=f"{step.title} {step.kind} {state}".lower(),
                item=step,
            )
        )
    return rows


class StepList(FastTable):
    """The steps of one plan, in order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(COLUMNS, fixed_columns=1, sort_column=None, empty_text="No plan yet.", **kwargs)

    def show_steps(self, steps: Sequence[Step], states: Mapping[int, str], *, read_only: bool = False) -> None:
        self.set_rows(step_rows(steps, states, read_only=read_only))

    @property
    def cursor_index(self) -> int | None:
        key = self.cursor_key
        return key if isinstance(key, int) else None

    def sort_by(self, column: str | None, reverse: bool | None = None) -> None:
        """A plan keeps its order."""

    def action_sort_next(self) -> None:
        """No column sort here (see sort_by)."""

    def action_sort_reverse(self) -> None:
        """No column sort here (see sort_by)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in ("sort_next", "sort_reverse")
