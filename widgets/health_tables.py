"""The three tables of the Health pane: VMs not Available (worst first),
Service Health events, and pending planned maintenance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from backend.health import EventRow, MaintenanceRow, StatusRow, region_key
from widgets import fmt
from widgets.fast_table import Column, FastTable, Row

STATUS_COLUMNS = (
    Column("vm", "VM", min_width=16, max_width=24, shrink=True),
    Column("state", "STATE", min_width=8, max_width=12),
    Column("reason", "REASON", min_width=6, max_width=14, shrink=True, priority=1),
    Column("since", "SINCE", min_width=5, max_width=10, priority=1),
    Column("summary", "SUMMARY", min_width=16, max_width=70, shrink=True),
    Column("action", "RECOMMENDED ACTION", min_width=24, max_width=60, shrink=True, priority=2),
)

EVENT_COLUMNS = (
    Column("status", "STATUS", min_width=6, max_width=9),
    Column("level", "LEVEL", min_width=5, max_width=13, priority=2),
    Column("type", "TYPE", min_width=6, max_width=18, priority=3),
    Column("title", "TITLE", min_width=28, max_width=70, shrink=True),
    Column("regions", "REGIONS", min_width=10, max_width=30, shrink=True, priority=1),
    Column("services", "SERVICES", min_width=12, max_width=30, shrink=True, priority=4),
    Column("my_vms", "MY VMS", min_width=6, max_width=16, shrink=True),
)

MAINTENANCE_COLUMNS = (
    Column("vm", "VM", min_width=16, max_width=24, shrink=True),
    Column("start", "WINDOW START", min_width=12, max_width=20),
    Column("end", "WINDOW END", min_width=12, max_width=20, priority=1),
    Column("self_service", "SELF-SERVICE", min_width=6, max_width=12, priority=1),
    Column("location", "LOCATION", min_width=6, max_width=16, shrink=True, priority=2),
    Column("group", "GROUP", min_width=6, max_width=24, shrink=True, priority=3),
)

EVENT_TYPES = {
    "ServiceIssue": "service issue",
    "PlannedMaintenance": "planned maint.",
    "HealthAdvisory": "advisory",
    "SecurityAdvisory": "security adv.",
    "RCA": "RCA",
    "EmergingIssues": "emerging issue",
}


def status_rows(rows: Iterable[StatusRow], now: datetime) -> list[Row]:
    out = []
    for rank, s in enumerate(rows):
        state, tone = fmt.health_cell(s.vm)
        actions = s.recommended_actions
        action = (actions[0] + (f" (+{len(actions) - 1})" if len(actions) > 1 else "")) if actions else "-"
        cells = (s.vm.name, state, s.reason_type or "-", fmt.ago(s.since, now).removesuffix(" ago"), s.summary, action)
        tones = (None, tone, "bad" if s.reason_type == "unplanned" else None, "muted", None, "accent" if actions else "muted")
        # The backend's order (worst first) is the default; other sorts are by cell text.
        sort_keys = (
            s.vm.name.lower(),
            rank,
            (s.reason_type, rank),
            (s.since is None, fmt.utc(s.since).isoformat() if s.since else ""),
            s.summary.lower(),
            action.lower(),
        )
        haystack = " ".join((s.vm.name, s.vm.resource_group, s.vm.location, state, s.reason_type, s.summary)).lower()
        out.append(Row(s.vm.id.lower(), cells, tones, sort_keys, haystack, s))
    return out


def event_rows(rows: Iterable[EventRow]) -> list[Row]:
    out = []
    for rank, r in enumerate(rows):
        e = r.event
        active = e.status.lower() == "active"
        level = e.level or "-"
        level_text = level.upper() if level.lower() in ("error", "critical") else level.lower()
        cells = (
            e.status.upper() if active else e.status.lower(),
            level_text,
            EVENT_TYPES.get(e.type, e.type),
            e.title,
            ", ".join(e.regions) or "-",
            ", ".join(e.services) or "-",
            f"{len(r.impacted_vms)} " + ("listed" if r.listed else "in the region"),
        )
        level_tone = {"error": "bad", "critical": "bad", "warning": "warn"}.get(level.lower(), "muted")
        tones = ("bad" if active else "muted", level_tone, None, None, None, "muted", "bad" if active and r.impacted_vms else None)
        sort_keys = (rank, rank, (e.type, rank), e.title.lower(), cells[4].lower(), cells[5].lower(), (-len(r.impacted_vms), rank))
        haystack = " ".join(cells + (e.id,)).lower()
        out.append(Row(e.id.lower(), cells, tones, sort_keys, haystack, r))
    return out


def maintenance_rows(rows: Iterable[MaintenanceRow]) -> list[Row]:
    out = []
    for rank, m in enumerate(rows):
        cells = (
            m.vm.name,
            fmt.when(m.window_start).removesuffix(" UTC"),
            fmt.when(m.window_end).removesuffix(" UTC"),
            "YES" if m.self_service_allowed else "no",
            m.vm.location,
            m.vm.resource_group,
        )
        tones = (None, "warn", None, "accent" if m.self_service_allowed else "muted", None, "muted")
        sort_keys = (m.vm.name.lower(), rank, (cells[2], rank), (cells[3], rank), (m.vm.location, rank), (m.vm.resource_group.lower(), rank))
        haystack = " ".join((m.vm.name, m.vm.resource_group, m.vm.location)).lower()
        out.append(Row(m.vm.id.lower(), cells, tones, sort_keys, haystack, m))
    return out


class StatusTable(FastTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(STATUS_COLUMNS, sort_column="state", empty_text="Every VM is Available.", **kwargs)


class EventTable(FastTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(EVENT_COLUMNS, sort_column="status", empty_text="No Service Health events.", **kwargs)


class MaintenanceTable(FastTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(MAINTENANCE_COLUMNS, sort_column="start", empty_text="No planned maintenance pending.", **kwargs)


__all__ = ["EventTable", "MaintenanceTable", "StatusTable", "event_rows", "maintenance_rows", "region_key", "status_rows"]
