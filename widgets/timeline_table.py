"""The table of a VM's timeline: time (UTC), source, who, what, status; newest first."""

from __future__ import annotations

from collections.abc import Iterable

from backend.timeline import TimelineEntry
from widgets.fast_table import Column, FastTable, Row

COLUMNS = (
    Column("time", "TIME (UTC)", min_width=11, max_width=16),
    Column("source", "SOURCE", min_width=6, max_width=8, priority=1),
    Column("who", "WHO", min_width=8, max_width=24, shrink=True),
    Column("what", "WHAT", min_width=16, max_width=90, shrink=True),
    Column("status", "STATUS", min_width=6, max_width=11, shrink=True),
)

_TONES = {"failed": "bad", "unavailable": "bad", "degraded": "warn", "accepted": "muted", "started": "muted", "succeeded": "ok", "available": "ok"}


def timeline_rows(entries: Iterable[TimelineEntry]) -> list[Row]:
    rows = []
    for rank, e in enumerate(entries):
        cells = (e.time.strftime("%m-%d %H:%M"), e.source, e.actor, e.what, e.status)
        tones = ("muted", "accent" if e.source == "aztriage" else None, None, None, _TONES.get(e.status.lower()))
        # newest first is the default order (rank); other sorts go by the cell's text
        sort_keys = (rank, (e.source, rank), (e.actor.lower(), rank), (e.what.lower(), rank), (e.status.lower(), rank))
        haystack = " ".join((e.source, e.actor, e.what, e.status, e.detail)).lower()
        rows.append(Row(f"{rank}", cells, tones, sort_keys, haystack, e))
    return rows


class TimelineTable(FastTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(COLUMNS, fixed_columns=1, sort_column="time", empty_text="Nothing recorded in this window (w: a longer window).", **kwargs)
