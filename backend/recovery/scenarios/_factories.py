"""Step factories several scenarios share: the closing summary of a run, and the check of a
resource a run creates and recognises by its run tag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from backend.recovery.context import StepContext
from backend.recovery.plan import Check, Kind, Step, Verification, already_done, blocked, ready, verified
from backend.recovery.scenarios._disks import RUN_TAG, tag_of


def summary_step(why: str, lines: Callable[[StepContext], Awaitable[list[str]]]) -> Step:
    """The last step of a plan: what the run did, kept and left to do, as `lines` says it once the
    run is through (one verification, the lines joined by '; '). It changes nothing."""

    async def verify(ctx: StepContext) -> Verification:
        return verified("; ".join(await lines(ctx)))

    return Step(
        key="report",
        title="Summary",
        why=why,
        changes="nothing",
        kind=Kind.CHECK,
        verify=verify,
    )


def run_tagged(ctx: StepContext, doc: dict[str, Any] | None, *, absent: str, made: str, foreign: str) -> Check:
    """Whether a resource this run creates is still to be made: `doc` is the resource of that name
    as it is now (None: there is none). One tagged with this run is done; one without the tag is
    someone else's, which the run never uses."""
    if doc is None:
        return ready(absent)
    if tag_of(doc, RUN_TAG) == ctx.run_id:
        return already_done(made)
    return blocked(foreign)
