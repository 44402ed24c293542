"""The Health view, shared by the console's Health pane and `aztriage health`.

Pure functions over an Inventory: which VMs Resource Health says are not
Available (worst first), which Service Health events touch the regions my VMs
run in, and which VMs wait for planned maintenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.models import EventUpdate, Inventory, ServiceEvent, Vm, merge_updates

# Lower ranks sort first: the worst state heads the list.
STATE_RANK = {"unavailable": 0, "degraded": 1, "unknown": 2}
REASON_RANK = {"unplanned": 0, "planned": 1, "userinitiated": 2}
EVENT_STATUS_RANK = {"active": 0}
EVENT_LEVEL_RANK = {"critical": 0, "error": 1, "warning": 2, "informational": 3}
EVENT_TYPE_RANK = {"serviceissue": 0, "plannedmaintenance": 1, "securityadvisory": 2, "healthadvisory": 3}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def region_key(region: str | None) -> str:
    """'East US' and 'eastus' name the same region."""
    return "".join((region or "").split()).lower()


def reason_label(reason_type: str | None) -> str:
    """Planned / Unplanned / UserInitiated as an operator reads them."""
    if not reason_type:
        return ""
    return {"userinitiated": "user-initiated"}.get(reason_type.lower(), reason_type.lower())


def _time(value: datetime | None) -> datetime:
    if value is None:
        return _EPOCH
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class StatusRow:
    """One VM whose Resource Health is not Available, with its verdict (backend.verdict)."""

    vm: Vm
    verdict: Any = None

    @property
    def availability_state(self) -> str:
        return self.vm.availability_state

    @property
    def reason_type(self) -> str:
        return reason_label(self.vm.health.reason_type if self.vm.health else None)

    @property
    def summary(self) -> str:
        h = self.vm.health
        if h is None:
            return "Resource Health reported nothing for this VM."
        return h.summary or h.title or ""

    @property
    def since(self) -> datetime | None:
        return self.vm.health.since if self.vm.health else None

    @property
    def recommended_actions(self) -> tuple[str, ...]:
        return tuple(a.action for a in self.vm.health.recommended_actions) if self.vm.health else ()

    def to_json(self) -> dict[str, Any]:
        return {
            "vm_id": self.vm.id,
            "vm": self.vm.name,
            "availability_state": self.availability_state,
            "reason_type": self.reason_type or None,
            "summary": self.summary,
            "since": _iso(self.since),
            "recommended_actions": list(self.recommended_actions),
            "verdict": self.verdict.to_json() if self.verdict is not None else None,
        }


@dataclass(frozen=True)
class EventRow:
    """One Service Health event (merged across the subscriptions that report it) and my VMs in its regions."""

    event: ServiceEvent
    subscription_ids: tuple[str, ...]
    impacted_vms: tuple[Vm, ...]
    updates: tuple[EventUpdate, ...] = ()  # every copy's updates, each once, newest first
    listed: bool = False  # True: Azure lists the impacted resources; False: my VMs in its regions

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def impact_scope(self) -> str:
        return "listed" if self.listed else "in the region"

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "id": e.id,
            "type": e.type,
            "status": e.status,
            "level": e.level,
            "title": e.title,
            "regions": list(e.regions),
            "services": list(e.services),
            "subscriptions": list(self.subscription_ids),
            "impacted_vms": len(self.impacted_vms),
            "impacted": self.impact_scope,
            "impacted_vm_names": [vm.name for vm in self.impacted_vms],
            "impact_start": _iso(e.impact_start),
            "last_update": _iso(e.last_update),
            "updates": [{"time": _iso(u.time), "summary": u.summary} for u in self.updates],
        }


@dataclass(frozen=True)
class MaintenanceRow:
    vm: Vm

    @property
    def window_start(self) -> datetime | None:
        m = self.vm.maintenance
        return m.window_start or m.maintenance_window_start

    @property
    def window_end(self) -> datetime | None:
        m = self.vm.maintenance
        return m.window_end or m.maintenance_window_end

    @property
    def self_service_allowed(self) -> bool:
        return self.vm.maintenance.self_service_allowed

    def to_json(self) -> dict[str, Any]:
        return {
            "vm_id": self.vm.id,
            "vm": self.vm.name,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "self_service_allowed": self.self_service_allowed,
        }


@dataclass(frozen=True)
class HealthView:
    statuses: tuple[StatusRow, ...]
    events: tuple[EventRow, ...]
    maintenance: tuple[MaintenanceRow, ...]

    def to_json(self) -> dict[str, Any]:
        """The stable shape of `aztriage health --format json`."""
        return {
            "statuses": [s.to_json() for s in self.statuses],
            "events": [e.to_json() for e in self.events],
            "maintenance": [m.to_json() for m in self.maintenance],
        }


def status_sort_key(vm: Vm) -> tuple:
    state = STATE_RANK.get(vm.availability_state.lower(), 3)
    reason = vm.health.reason_type if vm.health else None
    return (
        state,
        REASON_RANK.get((reason or "").lower(), 3),
        # Longest-standing first: it has hurt the longest.
        _time(vm.health.since if vm.health else None),
        vm.name.lower(),
        vm.id.lower(),
    )


def unhealthy(inventory: Inventory, book: Any = None, now: datetime | None = None) -> tuple[StatusRow, ...]:
    """VMs whose Resource Health is not Available, worst first, each with its verdict
    (from `book`, a backend.verdict.VerdictBook, when the session has one)."""
    from backend.verdict import VerdictBook

    book = book or VerdictBook()
    bad = [vm for vm in inventory.vms if vm.availability_state.lower() != "available"]
    bad.sort(key=status_sort_key)
    return tuple(StatusRow(vm, book.verdict(vm, inventory, now)) for vm in bad)


def vms_in_regions(inventory: Inventory, regions: tuple[str, ...] | list[str], subscription_ids: tuple[str, ...] | None = None) -> tuple[Vm, ...]:
    """My VMs located in any of `regions` (display or programmatic names), optionally in these subscriptions."""
    wanted = {region_key(r) for r in regions}
    subs = {s.lower() for s in subscription_ids} if subscription_ids else None
    return tuple(vm for vm in inventory.vms if region_key(vm.location) in wanted and (subs is None or vm.subscription_id.lower() in subs))


def event_sort_key(row: EventRow) -> tuple:
    e = row.event
    return (
        EVENT_STATUS_RANK.get(e.status.lower(), 1),
        EVENT_LEVEL_RANK.get((e.level or "").lower(), 4),
        EVENT_TYPE_RANK.get(e.type.lower(), 4),
        -len(row.impacted_vms),
        -_time(e.last_update or e.impact_start).timestamp(),
        e.id,
    )


def service_events(inventory: Inventory) -> tuple[EventRow, ...]:
    """Service Health events, one row per tracking id (merged over the subscriptions that
    report it, each update once), active and severe first. My VMs under an event are the
    ones Azure lists as impacted where it lists them, else those in its regions."""
    merged: dict[str, tuple[ServiceEvent, list[str], list[EventUpdate]]] = {}
    for event in inventory.events:
        key = event.id.lower()
        if key in merged:
            first, subs, updates = merged[key]
            if event.subscription_id not in subs:
                subs.append(event.subscription_id)
            updates.extend(event.updates)
            # Keep the copy with the latest update.
            if _time(event.last_update) > _time(first.last_update):
                merged[key] = (event, subs, updates)
        else:
            merged[key] = (event, [event.subscription_id], list(event.updates))
    impacted = getattr(inventory, "impacted", None) or {}
    rows = []
    for key, (event, subs, updates) in merged.items():
        listed = impacted.get(key)
        if listed:
            ids = {i.lower() for i in listed}
            vms = tuple(vm for vm in inventory.vms if vm.id.lower() in ids)
        else:
            vms = vms_in_regions(inventory, event.regions, tuple(subs))
        rows.append(EventRow(event, tuple(subs), vms, merge_updates(updates), bool(listed)))
    rows.sort(key=event_sort_key)
    return tuple(rows)


def pending_maintenance(inventory: Inventory) -> tuple[MaintenanceRow, ...]:
    """VMs with planned maintenance pending, soonest window first."""
    rows = [MaintenanceRow(vm) for vm in inventory.vms if vm.maintenance.pending]
    rows.sort(key=lambda r: (r.window_start is None, _time(r.window_start), r.vm.name.lower()))
    return tuple(rows)


def health_view(inventory: Inventory, book: Any = None, now: datetime | None = None) -> HealthView:
    return HealthView(unhealthy(inventory, book, now), service_events(inventory), pending_maintenance(inventory))


def event_by_id(inventory: Inventory, event_id: str) -> EventRow | None:
    for row in service_events(inventory):
        if row.id.lower() == event_id.lower():
            return row
    return None
