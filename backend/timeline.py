"""One VM's incident timeline: who did what, when, on one time axis.

Three sources tell it, merged newest first:

- **activity log** (Azure Monitor, 90 days): every write to the VM and to the
  resources it stands on (its NICs, their NSGs and the subnet's, its public IPs
  and disks), with the caller and how it ended. The entries of one operation
  (Started, Accepted, Succeeded) share a correlation id and show as one line.
- **resource changes** (Resource Graph ``resourcechanges``, 14 days): the properties
  that changed on the VM and what it stands on, with changedBy, clientType and the
  operation; a change made by an operation the activity log shows is told on that
  operation's line (the same correlation id), so one Azure operation shows once.
- **Resource Health**: the VM's availability history; each status says why it
  changed (user-initiated, platform-initiated: Spot eviction, service healing).
- **aztriage**: recovery runs and their steps from the journal, and what the
  console itself saw (probes, verdict changes; ``ConsoleEvents``).

"Who stopped this VM?" is answered when the VM is stopped or deallocated: a user
(the activity log names them), the platform (Resource Health says so), or the
guest OS, which leaves no activity-log entry because no Azure operation was sent.

Every string in an entry came from a model (already safe) or is built here from
safe strings; nothing is ever parsed as markup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from backend.errors import BackendError
from backend.safetext import safe_line

if TYPE_CHECKING:
    from backend.adapter import ResourceGraph, TimelineBackend
    from backend.models import ActivityEvent, HealthStatus, Vm

ACTIVITY, HEALTH, CHANGES, AZTRIAGE = "activity", "health", "changes", "aztriage"
SOURCES = (ACTIVITY, HEALTH, CHANGES, AZTRIAGE)
SOURCE_LABELS = {ACTIVITY: "activity log", HEALTH: "resource health", CHANGES: "resource changes", AZTRIAGE: "aztriage"}
RETENTION = timedelta(days=90)  # the activity log keeps 90 days
CHANGE_RETENTION = timedelta(days=14)  # Resource Graph's resourcechanges keeps 14
PLATFORM = "Azure platform"
GUEST = "guest OS"

# Operations that stop a VM (its compute goes away or it powers off).
_STOPS = ("/deallocate/action", "/poweroff/action", "/delete")
_STARTS = ("/start/action", "/restart/action", "/redeploy/action")
_STATUS_RANK = {"started": 0, "accepted": 1, "succeeded": 2, "failed": 2, "canceled": 2}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    time: datetime
    source: str  # activity / health / aztriage
    actor: str  # who: a caller, "Azure platform", "guest OS", "aztriage"
    what: str  # one line
    status: str  # Succeeded / Failed / Unavailable / ...
    detail: str = ""  # the resource, the summary, the client address
    link: str = ""  # what to look up: a correlation id, a run id, a status time

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "actor": self.actor,
            "what": self.what,
            "status": self.status,
            "detail": self.detail,
            "link": self.link,
        }


@dataclass(frozen=True, slots=True)
class WhoStopped:
    actor: str  # a caller, "Azure platform", "guest OS" or "unknown"
    at: datetime | None
    sentence: str  # the answer, one sentence

    def to_json(self) -> dict[str, Any]:
        return {"actor": self.actor, "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z") if self.at else None, "answer": self.sentence}


@dataclass(frozen=True)
class Timeline:
    vm_id: str
    vm_name: str
    since: datetime
    until: datetime
    entries: tuple[TimelineEntry, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()  # (source, one sentence) of each source that could not be read
    who_stopped: WhoStopped | None = None
    changes: tuple[TimelineEntry, ...] = ()  # the resource changes read, each on its own (before the merge), newest first

    def only(self, sources: Iterable[str]) -> Timeline:
        """The same timeline with the entries of these sources only."""
        keep = set(sources)
        return replace(self, entries=tuple(e for e in self.entries if e.source in keep))

    def recent_change(self, now: datetime) -> TimelineEntry | None:
        """The VM's latest change, when it is recent (verdict evidence: backend.verdict)."""
        return latest_change(self.changes, now)

    def to_json(self) -> dict[str, Any]:
        iso = lambda t: t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")  # noqa: E731
        return {
            "vm": self.vm_name,
            "vm_id": self.vm_id,
            "since": iso(self.since),
            "until": iso(self.until),
            "who_stopped": self.who_stopped.to_json() if self.who_stopped else None,
            "entries": [e.to_json() for e in self.entries],
            "errors": [{"source": s, "message": m} for s, m in self.errors],
        }


# --- aztriage's own events ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsoleEvent:
    """Something the console saw of a VM: a probe's answer, a verdict that changed."""

    time: datetime
    vm_id: str
    what: str
    status: str


@dataclass
class ConsoleEvents:
    """What this console session saw, per VM (in memory: a new session starts empty)."""

    limit: int = 500
    _by_vm: dict[str, list[ConsoleEvent]] = field(default_factory=dict)
    _verdicts: dict[str, str] = field(default_factory=dict)

    def add(self, event: ConsoleEvent) -> None:
        event = ConsoleEvent(event.time, event.vm_id, safe_line(event.what), safe_line(event.status))
        events = self._by_vm.setdefault(event.vm_id.lower(), [])
        events.append(event)
        del events[: max(0, len(events) - self.limit)]

    def verdict(self, vm_id: str, verdict_id: str, summary: str, at: datetime) -> None:
        """Record a verdict when it differs from the last one seen for this VM."""
        key = vm_id.lower()
        before = self._verdicts.get(key)
        if before == verdict_id:
            return
        self._verdicts[key] = verdict_id
        what = f"verdict {verdict_id}" + (f" (was {before})" if before else "") + f": {summary}"
        self.add(ConsoleEvent(at, vm_id, safe_line(what), "seen"))

    def of(self, vm_id: str) -> list[ConsoleEvent]:
        return list(self._by_vm.get(vm_id.lower(), ()))


def console_entries(events: Iterable[ConsoleEvent]) -> list[TimelineEntry]:
    return [TimelineEntry(e.time, AZTRIAGE, "aztriage", e.what, e.status, "seen by this console") for e in events]


def journal_entries(runs: Iterable[Any]) -> list[TimelineEntry]:
    """Recovery runs and their steps (journal RunRecords) as entries."""
    out: list[TimelineEntry] = []
    for run in runs:
        started = _parse(run.created_at)
        if started is not None:
            what = f"recovery run {run.scenario} started"
            out.append(TimelineEntry(started, AZTRIAGE, "aztriage recovery", safe_line(what), safe_line(run.status), safe_line(run.summary or ""), run.run_id))
        finished = _parse(run.finished_at)
        if finished is not None:
            out.append(
                TimelineEntry(
                    finished,
                    AZTRIAGE,
                    "aztriage recovery",
                    safe_line(f"recovery run {run.scenario} ended"),
                    safe_line(run.status),
                    safe_line(run.summary or ""),
                    run.run_id,
                )
            )
        for step in run.steps:
            at = _parse(step.started_at)
            if at is None:
                continue
            what = f"step {step.idx + 1}: {step.title}"
            out.append(
                TimelineEntry(
                    at, AZTRIAGE, "aztriage recovery", safe_line(what), safe_line(step.state), safe_line(step.message or ""), f"{run.run_id}#{step.idx + 1}"
                )
            )
    return out


def session_entries(sessions: Iterable[Any]) -> list[TimelineEntry]:
    """Serial console sessions from the journal (journal ConsoleSessions): opened, the admin
    commands sent (NMI, reset, SysRq), closed. What was typed is never kept, so never shown."""
    out: list[TimelineEntry] = []
    for session in sessions:
        mode = "read-only" if session.read_only else "interactive"
        opened = _parse(session.opened_at)
        if opened is not None:
            what = f"serial console session opened ({mode})" + (f", {session.reconnects} reconnects" if session.reconnects else "")
            out.append(TimelineEntry(opened, AZTRIAGE, "aztriage console", what, "closed" if session.closed_at else "open", "", session.session_id))
        for command in session.admin:
            at = _parse(str(command.get("at") or ""))
            if at is not None:
                name = safe_line(str(command.get("command") or "?"))
                key = f" {safe_line(str(command['key']))}" if command.get("key") else ""
                out.append(TimelineEntry(at, AZTRIAGE, "aztriage console", f"serial console admin command: {name}{key}", "sent", "", session.session_id))
        closed = _parse(session.closed_at)
        if closed is not None:
            reason = safe_line(session.end_reason or "")
            out.append(
                TimelineEntry(
                    closed, AZTRIAGE, "aztriage console", "serial console session closed" + (f": {reason}" if reason else ""), "closed", "", session.session_id
                )
            )
    return out


@dataclass(frozen=True)
class JournalFacts:
    """What the journal holds about one VM: recovery runs (with steps) and serial console sessions."""

    runs: tuple[Any, ...] = ()
    sessions: tuple[Any, ...] = ()
    error: str | None = None  # why the journal could not be read

    def entries(self) -> list[TimelineEntry]:
        return journal_entries(self.runs) + session_entries(self.sessions)


def journal_for(vm_id: str, journal_path: Any = None) -> JournalFacts:
    """The VM's recovery runs and serial console sessions from the journal (none when there is no journal)."""
    from pathlib import Path

    from backend.recovery.journal import Journal, JournalError, default_path

    path = Path(journal_path) if journal_path else default_path(create=False)
    if not path.exists():
        return JournalFacts()
    try:
        with Journal(path) as journal:
            runs = [r for r in journal.list_runs(limit=100_000) if r.vm_id.lower() == vm_id.lower()]
            for run in runs:
                if not run.steps:
                    run.steps = journal.steps(run.run_id)
            sessions = journal.console_sessions(vm_id)
    except JournalError as exc:
        return JournalFacts(error=f"the recovery journal could not be read: {exc}")
    return JournalFacts(tuple(runs), tuple(sessions))


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# --- Azure's sources -------------------------------------------------------------------


def related_resources(vm: Vm) -> dict[str, str]:
    """Lower-case id -> short label of the VM and what it stands on: NICs, their NSGs and the
    subnet's, public IPs, managed disks. A write to any of them (or a child: a security rule)
    belongs on the VM's timeline."""
    out = {vm.id.lower(): vm.name}
    for nic in vm.nics:
        out[nic.id.lower()] = nic.name
        for nsg in (nic.nsg_id, nic.subnet_nsg_id):
            if nsg:
                out[nsg.lower()] = nsg.rsplit("/", 1)[-1]
        for pip in nic.public_ips:
            out[pip.id.lower()] = pip.name
    for disk in vm.disks:
        if disk.id:
            out[disk.id.lower()] = disk.name
    return out


def _groups(vm: Vm, related: Iterable[str]) -> list[tuple[str, str]]:
    """(subscription, resource group) of every related resource."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for rid in [vm.id, *related]:
        parts = rid.split("/")
        if len(parts) > 4 and parts[3].lower() == "resourcegroups":
            found.setdefault((parts[2].lower(), parts[4].lower()), (parts[2], parts[4]))
    own = (vm.subscription_id.lower(), vm.resource_group.lower())
    return [found[own]] + [v for k, v in found.items() if k != own] if own in found else list(found.values())


def _owner(resource_id: str, related: dict[str, str]) -> str | None:
    """The related resource this id is, or is a child of (a security rule of an NSG)."""
    rid = resource_id.lower()
    while rid.count("/") >= 8:
        if rid in related:
            return rid
        rid = rid.rsplit("/", 2)[0]
    return rid if rid in related else None


def _short_operation(event: ActivityEvent) -> str:
    if event.operation_label and event.operation_label != event.operation:
        return event.operation_label
    return event.operation.rsplit("/", 2)[-2] + " " + event.operation.rsplit("/", 1)[-1] if event.operation.count("/") >= 2 else event.operation


def activity_entries(events: Iterable[ActivityEvent], vm: Vm, related: dict[str, str] | None = None) -> list[TimelineEntry]:
    """The activity log's entries about the VM and what it stands on, one per operation
    (the entries sharing a correlation id), at the time it started, with how it ended."""
    related = related if related is not None else related_resources(vm)
    operations: dict[str, list[ActivityEvent]] = {}
    for event in events:
        owner = _owner(event.resource_id, related)
        if owner is None:
            continue
        key = (event.correlation_id or event.event_id or f"{event.time.isoformat()}|{event.operation}").lower() + "|" + event.resource_id.lower()
        operations.setdefault(key, []).append(event)
    out = []
    for group in operations.values():
        group.sort(key=lambda e: (e.time, _STATUS_RANK.get(e.status.lower(), 1)))
        first, last = group[0], group[-1]
        caller = next((e.caller for e in group if e.caller), "") or "unknown caller"
        owner = _owner(first.resource_id, related) or first.resource_id.lower()
        target = related.get(owner, first.resource_id.rsplit("/", 1)[-1])
        if first.resource_id.lower() != owner:
            target += "/" + first.resource_id.rsplit("/", 1)[-1]
        detail = f"{first.operation} on {first.resource_id}" + (f" from {first.client_ip}" if first.client_ip else "")
        out.append(TimelineEntry(first.time, ACTIVITY, caller, f"{_short_operation(first)}: {target}", last.status or "-", detail, first.correlation_id))
    return out


def changes_query(resource_ids: Iterable[str]) -> str:
    """The Resource Graph query of the changes of these resources (ordered by id, so it pages)."""
    quoted = ", ".join("'" + rid.lower().replace("'", "") + "'" for rid in resource_ids)
    return f"resourcechanges | where tolower(tostring(properties.targetResourceId)) in~ ({quoted}) | project id, properties | order by id asc"


def _value(value: Any) -> str:
    return "(none)" if value is None or value == "" else safe_line(str(value))


def _diff(changes: dict[str, Any], limit: int = 3) -> str:
    parts = []
    for key, change in list(changes.items())[:limit]:
        change = change if isinstance(change, dict) else {}
        parts.append(f"{safe_line(str(key)).removeprefix('properties.')}: {_value(change.get('previousValue'))} → {_value(change.get('newValue'))}")
    more = len(changes) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def change_entries(rows: Iterable[dict[str, Any]], related: dict[str, str]) -> list[TimelineEntry]:
    """Resource Graph resourcechanges rows as entries: what changed (previous → new) and who changed it."""
    return [entry for entry in (change_entry(row, related) for row in rows) if entry is not None]


def change_entry(row: dict[str, Any], related: dict[str, str]) -> TimelineEntry | None:
    """One resourcechanges row as an entry (None without a timestamp)."""
    props = row.get("properties") or {}
    attrs = props.get("changeAttributes") or {}
    at = _parse(str(attrs.get("timestamp") or ""))
    if at is None:
        return None
    target = str(props.get("targetResourceId") or "")
    label = related.get(target.lower(), target.rsplit("/", 1)[-1])
    raw = props.get("changes")
    changes: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kind = safe_line(str(props.get("changeType") or "Update"))
    client = safe_line(str(attrs.get("clientType") or ""))
    operation = safe_line(str(attrs.get("operation") or ""))
    what = f"{kind} {label}: {_diff(changes)}" if changes else f"{kind} {label}"
    detail = " ".join(x for x in (operation, f"via {client}" if client else "", f"({len(changes)} properties)") if x)
    return TimelineEntry(at, CHANGES, safe_line(str(attrs.get("changedBy") or "unknown")), what, kind, detail, safe_line(str(attrs.get("correlationId") or "")))


RECENT_CHANGE = timedelta(hours=24)  # a change this recent is evidence in a verdict that is not reachable
_CLOCK_SKEW = timedelta(minutes=5)
_IDS_PER_QUERY = 200  # resource ids in one resourcechanges query (the KQL stays a few tens of KB)


def latest_change(changes: Iterable[TimelineEntry], now: datetime) -> TimelineEntry | None:
    """The newest change no older than RECENT_CHANGE before `now` (and not after it)."""
    recent = [c for c in changes if now - RECENT_CHANGE <= c.time <= now + _CLOCK_SKEW]
    return max(recent, key=lambda c: c.time, default=None)


async def recent_changes(backend: ResourceGraph, vms: Sequence[Vm], now: datetime) -> dict[str, TimelineEntry | None]:
    """Each VM's latest recent change (to it, its NICs, NSGs, public IPs or disks), keyed by its
    lower-case id (None: none in the last RECENT_CHANGE), from Resource Graph's resourcechanges:
    one query a few hundred resources, whatever the number of VMs. Raises BackendError."""
    related_by_vm = {vm.id.lower(): related_resources(vm) for vm in vms}
    labels: dict[str, str] = {}
    owners: dict[str, list[str]] = {}
    for vm_key, related in related_by_vm.items():
        labels.update(related)
        for rid in related:
            owners.setdefault(rid, []).append(vm_key)
    subscriptions = sorted({vm.subscription_id for vm in vms})
    ids = sorted(owners)
    found: dict[str, TimelineEntry | None] = dict.fromkeys(related_by_vm)
    for n in range(0, len(ids), _IDS_PER_QUERY):
        result = await backend.graph_query(changes_query(ids[n : n + _IDS_PER_QUERY]), subscriptions=subscriptions)
        for row in result.rows:
            entry = change_entry(row, labels)
            if entry is None or latest_change((entry,), now) is None:
                continue
            for vm_key in owners.get(str((row.get("properties") or {}).get("targetResourceId") or "").lower(), ()):
                best = found[vm_key]
                if best is None or entry.time > best.time:
                    found[vm_key] = entry
    return found


def merge_changes(activity: list[TimelineEntry], changes: list[TimelineEntry]) -> list[TimelineEntry]:
    """One Azure operation shows once: a change whose correlation id is an activity-log
    operation's is told on that operation's line (its diff in the detail)."""
    by_correlation = {e.link.lower(): n for n, e in enumerate(activity) if e.link}
    merged = list(activity)
    rest = []
    for change in changes:
        n = by_correlation.get(change.link.lower()) if change.link else None
        if n is None:
            rest.append(change)
            continue
        entry = merged[n]
        diff = change.what.split(": ", 1)[1] if ": " in change.what else change.what
        merged[n] = TimelineEntry(entry.time, entry.source, entry.actor, entry.what, entry.status, f"{entry.detail}; changed {diff}", entry.link)
    return merged + rest


def annotation(status: HealthStatus) -> str:
    """Why the VM's availability changed, as Resource Health's status tells it (its context,
    reason and title): the annotation an operator looks for."""
    context = (status.context or "").lower()
    reason = (status.reason_type or "").lower()
    text = " ".join(x for x in (status.title, status.summary, status.detailed_status) if x).lower()
    if status.availability_state.lower() == "available":
        return "available"
    if "platform" in context or (reason == "unplanned" and "user" not in context):
        if "evict" in text or "preempt" in text:
            return "Spot eviction: Azure took the capacity back"
        if "service healing" in text or "rebooted for repair" in text or "healthy host" in text:
            return "host failure: service healing moved it to a healthy host"
        return "platform-initiated (unplanned)" if reason == "unplanned" else "platform-initiated"
    if "vm initiated" in context or ("guest" in text and "inside" in text):
        return "shut down from inside the guest OS"
    if "customer" in context or reason == "userinitiated":
        if "deallocat" in text:
            return "user-initiated deallocation"
        if "restart" in text:
            return "user-initiated restart"
        if "start" in text:
            return "user-initiated start"
        if "stop" in text:
            return "user-initiated stop"
        return "user-initiated"
    return reason or "no reason given"


def _health_actor(status: HealthStatus) -> str:
    context = (status.context or "").lower()
    if "platform" in context:
        return PLATFORM
    if "customer" in context or (status.reason_type or "").lower() == "userinitiated":
        return "user or process"
    if "vm initiated" in context:
        return GUEST
    return "Resource Health"


def health_entries(statuses: Iterable[HealthStatus]) -> list[TimelineEntry]:
    out = []
    for status in statuses:
        at = status.since or status.reported_time
        if at is None:
            continue
        title = status.title or status.availability_state
        what = status.availability_state if title == status.availability_state else f"{status.availability_state}: {title}"
        why = annotation(status)
        if why != "available":
            what += f" ({why})"
        out.append(
            TimelineEntry(
                at, HEALTH, _health_actor(status), what, status.availability_state, status.summary or "", at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
        )
    return out


def who_stopped(vm: Vm, events: Sequence[ActivityEvent], statuses: Sequence[HealthStatus]) -> WhoStopped | None:
    """Who stopped or deallocated the VM, when it is stopped or deallocated (None otherwise)."""
    power = vm.power_state.lower()
    if power not in ("stopped", "deallocated", "stopping", "deallocating"):
        return None
    current = statuses[0] if statuses else vm.health
    stopped_at = current.since if current is not None and current.availability_state.lower() != "available" else None
    own = [e for e in events if e.resource_id.lower() == vm.id.lower() and e.status.lower() in ("accepted", "succeeded")]
    stops = sorted((e for e in own if e.operation.lower().endswith(_STOPS)), key=lambda e: e.time)
    starts = [e for e in own if e.operation.lower().endswith(_STARTS)]
    if stopped_at is not None:
        # The stop that made this outage: sent at most 30 minutes before Resource Health saw it.
        near = [e for e in stops if stopped_at - timedelta(minutes=30) <= e.time <= stopped_at + timedelta(minutes=5)]
        stop = near[0] if near else None
    else:
        stop = stops[-1] if stops and not any(s.time > stops[-1].time for s in starts) else None
    if stop is not None:
        verb = _short_operation(stop).lower()
        sent = min((e.time for e in events if stop.correlation_id and e.correlation_id == stop.correlation_id), default=stop.time)
        return WhoStopped(stop.caller or "unknown caller", sent, f"{stop.caller or 'an unknown caller'} ({verb}) at {_hm(sent)} UTC, per the activity log")
    if current is not None and "platform" in (current.context or "").lower():
        return WhoStopped(PLATFORM, stopped_at, f"the platform at {_hm(stopped_at)} UTC: {annotation(current)} (no user operation in the activity log)")
    if power in ("stopped", "stopping"):
        return WhoStopped(
            GUEST,
            stopped_at,
            f"the guest OS shut itself down{' at ' + _hm(stopped_at) + ' UTC' if stopped_at else ''}: no stop operation was sent to Azure (none in the activity log)",
        )
    return WhoStopped("unknown", stopped_at, "not found: no deallocation in the activity log's 90 days and Resource Health names no platform cause")


def _hm(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if at else "an unknown time"


async def build_timeline(
    backend: TimelineBackend,
    vm: Vm,
    *,
    since: datetime,
    until: datetime | None = None,
    journal: JournalFacts | None = None,
    console: Iterable[ConsoleEvent] = (),
) -> Timeline:
    """The VM's timeline over [since, until], newest first. A source that cannot be read is
    named in ``errors`` (one sentence) and the others are still shown."""
    until = until or datetime.now(UTC)
    earliest = until - RETENTION
    start = max(since, earliest)
    related = related_resources(vm)
    groups = _groups(vm, related)
    errors: list[tuple[str, str]] = []

    async def read_activity() -> tuple[list[ActivityEvent], list[str]]:
        # The filter takes whole seconds: a write sent in the second `until` falls in would be cut
        # off, so ask for the same minute of slack the window below allows.
        end = until + timedelta(minutes=1)
        outcomes = await asyncio.gather(*(backend.activity_log(s, start=start, end=end, resource_group=g) for s, g in groups), return_exceptions=True)
        found: list[ActivityEvent] = []
        failed: list[str] = []
        for outcome in outcomes:
            if isinstance(outcome, BackendError):
                failed.append(str(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                found.extend(outcome)
        return found, failed

    async def read_health() -> tuple[list[HealthStatus], str | None]:
        try:
            return list(await backend.health_history(vm.id)), None
        except BackendError as exc:
            return [], str(exc)

    async def read_changes() -> tuple[list[dict[str, Any]], str | None]:
        try:
            result = await backend.graph_query(changes_query(related), subscriptions=sorted({s for s, _ in groups}))
        except BackendError as exc:
            return [], str(exc)
        return list(result.rows), None

    (events, activity_errors), (statuses, health_error), (change_rows, change_error) = await asyncio.gather(read_activity(), read_health(), read_changes())
    errors.extend((ACTIVITY, m) for m in dict.fromkeys(activity_errors))
    if health_error:
        errors.append((HEALTH, health_error))
    if change_error:
        errors.append((CHANGES, change_error))
    journal = journal or JournalFacts()
    if journal.error:
        errors.append((AZTRIAGE, journal.error))
    changes = change_entries(change_rows, related)
    azure = merge_changes(activity_entries(events, vm, related), changes)
    entries = azure + health_entries(statuses) + journal.entries() + console_entries(console)
    window = [e for e in entries if start <= e.time <= until + timedelta(minutes=1)]
    window.sort(key=lambda e: e.time, reverse=True)
    return Timeline(
        vm.id,
        vm.name,
        start,
        until,
        tuple(window),
        tuple(errors),
        who_stopped(vm, events, statuses),
        tuple(sorted(changes, key=lambda c: c.time, reverse=True)),
    )


def incident_window(vm: Vm, now: datetime) -> datetime:
    """Where an incident report's timeline starts: a day before now, or, when the VM has been
    out of Available for longer, two hours before Resource Health saw it go (at most 90 days)."""
    start = now - timedelta(hours=24)
    health = vm.health
    if health is not None and health.availability_state.lower() != "available" and health.since is not None:
        start = min(start, health.since - timedelta(hours=2))
    return max(start, now - RETENTION)


def parse_since(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d`` -> a duration (at most the activity log's 90 days); ValueError with one sentence."""
    value = text.strip().lower()
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) <= 0:
        raise ValueError(f"--since {text!r} is not a duration: use minutes, hours or days such as 90m, 24h or 7d")
    seconds = int(value[:-1]) * units[value[-1]]
    if seconds > RETENTION.total_seconds():
        raise ValueError(f"--since {text} reaches further back than the activity log keeps (90 days)")
    return timedelta(seconds=seconds)
