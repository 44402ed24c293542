"""Incident reports for a ticket: one VM, what Azure says about it, what we
measured, what we did, and what is still wrong.

``build_report`` is pure: it takes the inventory, the VM and whatever the
caller could gather (health history, checklist, probe results and diagnosis,
recovery runs from the journal) and returns a JSON-ready dict.
``render_markdown`` turns that dict into the Markdown a ticket takes.
``collect_reports`` is the async glue the CLI and the console share.

A section whose source is missing or was not run says so ("not run", "not
available") with the reason: a report never fills a gap with a guess.
Secrets never appear: the VM facts leave out credentials by construction, and
every section passes through ``redact`` before it is rendered.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.checks import CheckResult, Finding
from backend.escape import md_code, md_inline
from backend.models import HealthStatus, Inventory, ServiceEvent, Vm, id_name, to_jsonable
from backend.regions import normalize

if TYPE_CHECKING:
    from backend.adapter import ConnectivityBackend, HealthHistory, ReportBackend

REPORT_VERSION = 1
REDACTED = "[redacted]"

# Keys whose values are never shown, wherever they appear (journal outputs, diagnosis
# evidence...): compared without case, "_", "-" or spaces.
_SECRET_KEY_PARTS = (
    "password",
    "passphrase",
    "passwd",
    "secret",
    "token",
    "privatekey",
    "sshkey",
    "sshpublickey",
    "publickeys",
    "credential",
    "protectedsettings",
    "customdata",
    "connectionstring",
    "sastoken",
    "sasurl",
    "sasuri",
)
_SECRET_KEY_EXACT = ("sig", "pwd")


def _secret_key(key: str) -> bool:
    flat = "".join(c for c in key.lower() if c.isalnum())
    return flat in _SECRET_KEY_EXACT or any(part in flat for part in _SECRET_KEY_PARTS)


# Values that carry a secret in them: SAS signatures in URLs, PEM private keys, bearer tokens.
_SECRET_VALUE = [
    (re.compile(r"([?&]sig=)[^&\s]+", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL), REDACTED),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + REDACTED),
]


def redact(value: Any, key: str | None = None) -> Any:
    """A copy of ``value`` with secret-looking keys and values replaced."""
    if key is not None and _secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for pattern, repl in _SECRET_VALUE:
            value = pattern.sub(repl, value)
        return value
    return value


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """Dataclasses (probe results, diagnosis, journal rows) to JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_json = getattr(value, "to_json", None)
        if callable(to_json):
            return _plain(to_json())
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and type(value).__module__ != "builtins" and isinstance(value.value, (str, int)):
        return value.value  # enums
    return to_jsonable(value)


# --- sections ---------------------------------------------------------------------


def vm_facts(vm: Vm) -> dict[str, Any]:
    """What a ticket needs to know about the VM. No credentials, no admin user."""
    return {
        "name": vm.name,
        "id": vm.id,
        "subscription_id": vm.subscription_id,
        "resource_group": vm.resource_group,
        "location": vm.location,
        "size": vm.size,
        "os_type": vm.os_type,
        "image": vm.image,
        "power_state": vm.power_state,
        "provisioning_state": vm.provisioning_state,
        "availability": vm.sla_shape,
        "availability_set": id_name(vm.availability_set) or None,
        "agent_status": vm.agent_status,
        "boot_diagnostics": vm.boot_diagnostics.enabled,
        "private_ips": list(vm.private_ips),
        "public_ips": list(vm.public_ips),
        "fqdn": vm.fqdn,
        "disks": [
            {
                "name": d.name,
                "role": "os" if d.lun is None else f"data lun {d.lun}",
                "sku": d.sku,
                "managed": d.managed,
                "size_gb": d.size_gb,
                "delete_option": d.delete_option,
            }
            for d in vm.disks
        ],
        "nics": [
            {"name": n.name, "nsg": id_name(n.nsg_id) or None, "subnet_nsg": id_name(n.subnet_nsg_id) or None, "delete_option": n.delete_option}
            for n in vm.nics
        ],
    }


def _status(h: HealthStatus) -> dict[str, Any]:
    return {
        "availability_state": h.availability_state,
        "title": h.title,
        "summary": h.summary,
        "reason_type": h.reason_type,
        "since": _iso(h.since),
        "reported": _iso(h.reported_time),
        "resolution_eta": _iso(h.resolution_eta),
        "recommended_actions": [a.action for a in h.recommended_actions],
    }


def health_section(vm: Vm, history: Sequence[HealthStatus] | None, history_error: str | None = None) -> dict[str, Any]:
    h = vm.health
    out: dict[str, Any] = {"current": _status(h) if h else None, "recently_resolved": None, "history": None, "history_note": None}
    if h and (h.recently_resolved_summary or h.recently_resolved_at):
        out["recently_resolved"] = {"summary": h.recently_resolved_summary, "resolved_at": _iso(h.recently_resolved_at)}
    if history is not None:
        out["history"] = [_status(s) for s in history]
    else:
        out["history_note"] = history_error or "the health history was not read"
    return out


def _event_applies(event: ServiceEvent, region: str) -> bool:
    want = normalize(region)
    return any(normalize(r) in (want, "global") for r in event.regions)


def events_section(inv: Inventory, vm: Vm) -> list[dict[str, Any]]:
    """Service Health events of the VM's subscription that name its region (or 'Global')."""
    seen: dict[str, ServiceEvent] = {}
    for e in inv.events:
        if e.subscription_id.lower() == vm.subscription_id.lower() and _event_applies(e, vm.location):
            seen.setdefault(e.id, e)
    out = []
    want = normalize(vm.location)
    for e in sorted(
        seen.values(), key=lambda e: (e.status.lower() != "active", -(e.last_update or e.impact_start or datetime.min.replace(tzinfo=UTC)).timestamp())
    ):
        updates = [u for s in e.impact for r in s.regions if normalize(r.region) in (want, "global") for u in r.updates]
        updates.sort(key=lambda u: u.time or datetime.min.replace(tzinfo=UTC), reverse=True)
        out.append(
            {
                "id": e.id,
                "type": e.type,
                "status": e.status,
                "level": e.level,
                "title": e.title,
                "services": list(e.services),
                "impact_start": _iso(e.impact_start),
                "impact_mitigation": _iso(e.impact_mitigation),
                "last_update": _iso(e.last_update),
                "latest_update": updates[0].summary if updates else None,
            }
        )
    return out


def findings_section(vm: Vm, result: CheckResult | None) -> dict[str, Any]:
    if result is None:
        return {"status": "not run", "items": [], "not_checked": []}
    mine: Iterable[Finding] = result.for_vm(vm.id)
    wide = [
        f
        for f in result.findings
        if not f.vm_id and f.subscription_id.lower() == vm.subscription_id.lower() and normalize(f.location) == normalize(vm.location)
    ]
    from backend.checks import sort_key

    items = [f.to_json() for f in sorted(list(mine) + wide, key=sort_key)]
    score = result.vm_scores().get(vm.id.lower())
    return {"status": "done", "score": score, "items": items, "not_checked": [n.to_json() for n in result.not_checked]}


def section(status: str, note: str | None = None, **data: Any) -> dict[str, Any]:
    """A section that may be missing: status is done / not run / not available / failed."""
    return {"status": status, "note": note, **{k: _plain(v) for k, v in data.items()}}


def build_report(
    inv: Inventory,
    vm: Vm,
    *,
    generated_at: datetime,
    source: str,
    checks: CheckResult | None = None,
    history: Sequence[HealthStatus] | None = None,
    history_error: str | None = None,
    connectivity: Mapping[str, Any] | None = None,
    recovery: Mapping[str, Any] | None = None,
    probe_report: Any = None,
    timeline: Mapping[str, Any] | None = None,
    console: Mapping[str, Any] | None = None,
    recent_change: Any = None,
) -> dict[str, Any]:
    """`probe_report` (a backend.connectivity.Report of this VM) makes the verdict rest on the
    probe too; without it the verdict is Azure's view. `recent_change` (the timeline's latest
    change, backend.timeline) is evidence when the verdict is not reachable."""
    from backend.verdict import VerdictBook

    book = VerdictBook()
    if probe_report is not None:
        book.record_report(probe_report, [vm], generated_at)
    if recent_change is not None:
        book.record_changes({vm.id: recent_change})
    verdict = book.verdict(vm, inv, generated_at)
    report = {
        "report_version": REPORT_VERSION,
        "title": f"Incident report: {vm.name}",
        "generated_at": _iso(generated_at),
        "source": source,
        "inventory_fetched_at": _iso(inv.fetched_at),
        "vm": vm_facts(vm),
        "verdict": verdict.to_json(),
        "health": health_section(vm, history, history_error),
        "service_events": events_section(inv, vm),
        "connectivity": dict(connectivity) if connectivity is not None else section("not run", "no probe was run for this report"),
        "recovery": dict(recovery) if recovery is not None else section("not available", "the recovery journal was not read"),
        "console_sessions": dict(console) if console is not None else section("not available", "the journal was not read"),
        "findings": findings_section(vm, checks),
    }
    if timeline is not None:
        report["timeline"] = dict(timeline)
    return redact(report)


def timeline_section(timeline: Any) -> dict[str, Any]:
    """The section from a ``backend.timeline.Timeline``: its window, who stopped the VM, the entries."""
    data = timeline.to_json()
    note = "; ".join(f"{e['source']}: {e['message']}" for e in data["errors"]) or None
    return section("partial" if note else "done", note, **{k: v for k, v in data.items() if k not in ("vm", "vm_id")})


def timeline_markdown(data: Mapping[str, Any]) -> list[str]:
    """The timeline as Markdown lines: who stopped the VM, then every entry, newest first."""
    lines = [f"From {_cell(data.get('since'))} to {_cell(data.get('until'))} (UTC), newest first.", ""]
    who = data.get("who_stopped")
    if who:
        lines += [f"**Who stopped it:** {_cell(who.get('answer'))}", ""]
    entries = data.get("entries") or []
    if entries:
        lines += _table(entries, ("time", "source", "actor", "what", "status"))
    else:
        lines.append("_Nothing happened to this VM in this window that the activity log, Resource Health or aztriage recorded._")
    for err in data.get("errors") or []:
        lines += ["", f"_Not read: {_cell(err.get('source'))}: {_cell(err.get('message'))}_"]
    return lines


# --- Markdown ---------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{md_inline(k)}: {_cell(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    return md_inline(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> list[str]:
    if not rows:
        return []
    cols = list(columns) if columns else list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(c.replace("_", " ") for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return out


def _pairs(data: Mapping[str, Any], skip: Iterable[str] = ()) -> list[str]:
    skip = set(skip)
    return [f"- **{k.replace('_', ' ')}**: {_cell(v)}" for k, v in data.items() if k not in skip and v not in (None, "", [], {})]


def _status_line(sec: Mapping[str, Any]) -> list[str]:
    if sec.get("status") == "done":
        return [f"_{md_inline(sec['note'])}_", ""] if sec.get("note") else []
    note = f": {md_inline(sec['note'])}" if sec.get("note") else ""
    return [f"_{str(sec.get('status', 'not run')).capitalize()}{note}._", ""]


def _render_generic(value: Any, depth: int = 0) -> list[str]:
    """Any JSON-ready value as Markdown: lists of records become tables, records become bullets."""
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            flat = [{k: v for k, v in r.items() if not isinstance(v, (list, Mapping)) or k in ("evidence",)} for r in value]
            return _table(flat)
        return [f"- {_cell(v)}" for v in value]
    if isinstance(value, Mapping):
        lines: list[str] = []
        for k, v in value.items():
            if v in (None, "", [], {}):
                continue
            if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
                lines += ["", f"**{k.replace('_', ' ')}**", ""] + _render_generic(v, depth + 1) + [""]
            elif isinstance(v, list):
                lines += [f"- **{k.replace('_', ' ')}**:"] + [f"  - {_cell(x)}" for x in v]
            else:
                lines.append(f"- **{k.replace('_', ' ')}**: {_cell(v)}")
        return lines
    return [_cell(value)]


def render_markdown(report: Mapping[str, Any]) -> str:
    vm = report["vm"]
    lines = [
        f"# {md_inline(report['title'])}",
        "",
        f"Generated {_cell(report['generated_at'])} from {_cell(report['source'])} (inventory read {_cell(report.get('inventory_fetched_at'))}).",
        "",
        "## Virtual machine",
        "",
    ]
    verdict = report.get("verdict")
    if verdict:
        # The VM's one verdict first: what is wrong, the next step (backend/verdict.py).
        lines = lines[:-2] + [
            "## Verdict",
            "",
            f"**{md_inline(verdict['id'])}**: {md_inline(verdict['summary'])}",
            "",
            f"Next step: {md_inline(verdict['next_step'])}",
            "",
        ]
        lines += [f"- {md_inline(line)}" for line in verdict.get("evidence") or []]
        lines += ["", "## Virtual machine", ""]
    lines += _pairs(vm, skip=("disks", "nics"))
    lines += [""] + _table(vm["disks"], ("name", "role", "sku", "managed", "size_gb", "delete_option"))
    if vm["nics"]:
        lines += [""] + _table(vm["nics"], ("name", "nsg", "subnet_nsg", "delete_option"))

    health = report["health"]
    lines += ["", "## Health", ""]
    if health["current"]:
        cur = health["current"]
        title = f": {md_inline(cur['title'])}" if cur.get("title") and cur["title"] != cur["availability_state"] else ""
        lines.append(f"**{md_inline(cur['availability_state'])}**{title}" + (f" since {md_inline(cur['since'])}" if cur.get("since") else ""))
        lines.append("")
        lines += _pairs(cur, skip=("availability_state", "title", "since"))
    else:
        lines.append("_Resource Health reported no status for this VM._")
    if health["recently_resolved"]:
        rr = health["recently_resolved"]
        lines += ["", f"Recently resolved ({md_inline(rr.get('resolved_at') or 'time unknown')}): {_cell(rr.get('summary'))}"]
    lines.append("")
    if health["history"]:
        lines += ["### History", ""] + _table(health["history"], ("since", "availability_state", "title", "reason_type"))
    elif health["history"] == []:
        lines.append("_No earlier health statuses were returned._")
    else:
        lines.append(f"_History not shown: {md_inline(health['history_note'])}._")

    lines += ["", f"## Service events in {md_inline(vm['location'])}", ""]
    events = report["service_events"]
    if events:
        lines += _table(events, ("status", "type", "level", "title", "impact_start", "impact_mitigation", "id"))
        latest = [e for e in events if e.get("latest_update")]
        if latest:
            lines.append("")
            lines += [f"- {_cell(e['id'])}: {_cell(e['latest_update'])}" for e in latest]
    else:
        lines.append("_No Service Health events name this region._")

    conn = report["connectivity"]
    lines += ["", "## Connectivity: probes and diagnosis", ""] + _status_line(conn)
    if conn.get("status") == "done" and not conn.get("probes"):
        lines += ["_No public endpoint to probe (no public IP, FQDN or load-balancer NAT rule)._", ""]
    if conn.get("probes"):
        cols = ("kind", "host", "port", "protocol", "status", "latency_ms", "answered", "detail")
        lines += ["### Probes", ""] + _table(conn["probes"], cols) + [""]
    for d in conn.get("diagnosis") or []:
        if not isinstance(d, Mapping) or "verdict" not in d:
            lines += _render_generic(d)
            continue
        lines += [f"### Port {_cell(d.get('port'))}: {_cell(d['verdict'])}", "", f"{_cell(d.get('summary'))}", ""]
        lines += [f"- {_cell(e)}" for e in d.get("evidence") or []]
        if d.get("connect"):
            lines += ["", "Connect: " + "; ".join(md_code(c) for c in d["connect"])]
        lines.append("")
    for change in conn.get("ip_changes") or []:
        lines.append(f"- address change: {_cell(change)}")

    if "timeline" in report:
        lines += ["", "## Timeline", ""] + timeline_markdown(report["timeline"])

    rec = report["recovery"]
    lines += ["", "## Recovery runs", ""] + _status_line(rec)
    runs = rec.get("runs") or []
    if rec.get("status") == "done" and not runs and not rec.get("note"):
        lines.append("_No recovery run was recorded for this VM._")
    for run in runs:
        head = {k: v for k, v in run.items() if k not in ("steps", "resources", "params", "vm_id") and not isinstance(v, (list, Mapping))}
        lines += [f"### Run {_cell(run.get('run_id') or run.get('id'))}: {_cell(run.get('scenario'))}", ""] + _pairs(head, skip=("id", "run_id", "scenario"))
        if run.get("params"):
            lines.append(f"- **params**: {_cell(run['params'])}")
        if run.get("steps"):
            lines += [""] + _table(run["steps"], ("index", "title", "kind", "state", "started_at", "finished_at", "duration_s", "message"))
        if run.get("resources"):
            lines += ["", "Created by this run (kept until released):", ""] + _table(
                run["resources"], ("kind", "resource_id", "state", "created_at", "released_at")
            )
        lines.append("")

    console = report.get("console_sessions") or section("not available", "the journal was not read")
    lines += ["", "## Serial console sessions", ""] + _status_line(console)
    sessions = console.get("sessions") or []
    if console.get("status") == "done" and not sessions and not console.get("note"):
        lines.append("_No serial console session was recorded for this VM._")
    if sessions:
        rows = [
            {
                "opened_at": s.get("opened_at"),
                "closed_at": s.get("closed_at") or "still open or cut off",
                "duration_s": s.get("duration_s"),
                "mode": "read-only" if s.get("read_only") else "interactive",
                "reconnects": s.get("reconnects"),
                "admin_commands": ", ".join(a.get("command", "") + (f" {a['key']}" if a.get("key") else "") for a in s.get("admin_commands") or []),
                "end": s.get("end"),
            }
            for s in sessions
        ]
        lines += _table(rows) + ["", "_What was typed is never recorded (it carries passwords)._"]

    fnd = report["findings"]
    lines += ["", "## Open findings", ""]
    if fnd["status"] != "done":
        lines.append(f"_Checklist {md_inline(fnd['status'])}._")
    elif not fnd["items"]:
        lines.append(f"No open findings (score {fnd.get('score')}/100).")
    else:
        lines.append(f"Score {fnd.get('score')}/100.")
        lines.append("")
        for f in fnd["items"]:
            lines += [f"- **{md_inline(f['severity'].upper())} {md_inline(f['rule'])}**: {md_inline(f['evidence'])}", f"  - Fix: {md_inline(f['fix'])}"]
    nc = [
        n
        for n in fnd.get("not_checked") or []
        if n["scope"] in ("estate", f"subscription {str(vm.get('subscription_id') or '').lower()}")
        or vm["location"].lower() in n["scope"].lower()
        or vm["size"] in n["scope"]
    ]
    if nc:
        lines += ["", "Not checked: " + "; ".join(f"{md_inline(n['rule'])} ({md_inline(n['reason'])})" for n in nc) + "."]
    return "\n".join(lines).rstrip() + "\n"


# --- gathering ----------------------------------------------------------------------


class ReportError(ValueError):
    """A report cannot be made (unknown or ambiguous VM); ``str()`` is one sentence."""


def find_vm(inv: Inventory, name: str) -> Vm:
    """A VM by name, RESOURCE_GROUP/NAME or full resource id."""
    wanted = name.strip()
    if wanted.lower().startswith("/subscriptions/"):
        vm = inv.vm_by_id(wanted)
        if vm is None:
            raise ReportError(f"no VM with id {wanted} in the selected subscriptions")
        return vm
    group = None
    if "/" in wanted:
        group, _, wanted = wanted.rpartition("/")
    found = [v for v in inv.vm_by_name(wanted) if group is None or v.resource_group.lower() == group.lower()]
    if not found:
        raise ReportError(f"no VM named {name!r} in the selected subscriptions ('aztriage inventory' lists them)")
    if len(found) > 1:
        where = ", ".join(f"{v.resource_group}/{v.name}" for v in found)
        raise ReportError(f"{len(found)} VMs are named {name!r} ({where}): name one as RESOURCE_GROUP/NAME or by its id")
    return found[0]


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        a, b = datetime.fromisoformat(start or ""), datetime.fromisoformat(end or "")
    except ValueError:
        return None
    return round((b - a).total_seconds(), 1)


def recovery_from_runs(records: Iterable[Any]) -> dict[str, Any]:
    """The section from journal RunRecords (backend.recovery.journal), oldest first, with timings."""
    runs = []
    for rec in sorted(records, key=lambda r: r.created_at):
        data = rec.to_json()
        data["duration_s"] = _seconds_between(rec.created_at, rec.finished_at)
        for step in data.get("steps") or []:
            step["duration_s"] = _seconds_between(step.get("started_at"), step.get("finished_at"))
        runs.append(data)
    return section("done", None, runs=runs)


def recovery_section(vm: Vm, journal_path: Any = None) -> dict[str, Any]:
    """The recovery runs of this VM from the journal, with step timings."""
    from pathlib import Path

    try:
        from backend.recovery.journal import Journal, JournalError, default_path
    except ImportError:
        return section("not available", "the recovery journal is not part of this build")
    path = Path(journal_path) if journal_path else default_path()
    if not path.exists():
        return section("done", f"no recovery journal exists yet at {path}", runs=[])
    try:
        with Journal(path) as journal:
            records = [r for r in journal.list_runs(limit=100_000) if r.vm_id.lower() == vm.id.lower()]
    except JournalError as exc:
        return section("failed", str(exc), runs=[])
    return recovery_from_runs(records)


def console_section(vm: Vm, journal_path: Any = None) -> dict[str, Any]:
    """The serial console sessions opened on this VM, from the journal (never what was typed)."""
    from pathlib import Path

    from backend.recovery.journal import Journal, JournalError, default_path

    path = Path(journal_path) if journal_path else default_path(create=False)
    if not path.exists():
        return section("done", f"no journal exists yet at {path}", sessions=[])
    try:
        with Journal(path) as journal:
            records = journal.console_sessions(vm.id)
    except JournalError as exc:
        return section("failed", str(exc), sessions=[])
    sessions = []
    for record in records:
        data = record.to_json()
        data["duration_s"] = _seconds_between(record.opened_at, record.closed_at)
        sessions.append(data)
    return section("done", None, sessions=sessions)


def connectivity_from(probe_report: Any) -> dict[str, Any]:
    """The section from a ``backend.connectivity.Report`` (probe results, diagnoses, notes)."""
    data = probe_report.to_json()
    note = "; ".join(dict.fromkeys(probe_report.notes)) or None
    return section(
        "done",
        note,
        probes=data.get("results") or [],
        diagnosis=data.get("diagnoses") or [],
        ip_changes=data.get("ip_changes") or [],
        elapsed_s=(data.get("stats") or {}).get("elapsed_s"),
    )


async def connectivity_section(
    vm: Vm, inv: Inventory, backend: ConnectivityBackend, *, probe: bool = True, extra_ports: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Probe the VM's RDP/SSH endpoints now and diagnose (backend.connectivity, backend.diagnose)."""
    return (await probe_vm(vm, inv, backend, probe=probe, extra_ports=extra_ports))[0]


async def probe_vm(
    vm: Vm, inv: Inventory, backend: ConnectivityBackend, *, probe: bool = True, extra_ports: tuple[int, ...] = ()
) -> tuple[dict[str, Any], Any]:
    """(the connectivity section, the connectivity report or None when nothing was probed)."""
    if not probe:
        return section("not run", "probes were turned off for this report (--no-probe)"), None
    from backend import connectivity

    try:
        probe_report = await connectivity.run(backend, inv, [vm], connectivity.Request(vm_ids=(vm.id,), extra_ports=extra_ports))
    except ValueError as exc:  # a bad probe source (AZTRIAGE_SOURCE_IP) is one sentence
        return section("failed", str(exc)), None
    return connectivity_from(probe_report), probe_report


async def health_history(backend: HealthHistory, vm: Vm) -> tuple[list[HealthStatus] | None, str | None]:
    from backend.errors import BackendError

    try:
        return await backend.health_history(vm.id), None
    except BackendError as exc:
        return None, str(exc)


async def report_for(
    backend: ReportBackend,
    inv: Inventory,
    vm: Vm,
    *,
    checks: CheckResult | None,
    probe: bool = True,
    journal_path: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One VM's report from an inventory and checklist already at hand (the console's export)."""
    from backend.timeline import build_timeline, incident_window, journal_for

    history, history_error = await health_history(backend, vm)
    connectivity, probe_report = await probe_vm(vm, inv, backend, probe=probe)
    generated_at = now or datetime.now(UTC)
    timeline = await build_timeline(backend, vm, since=incident_window(vm, generated_at), until=generated_at, journal=journal_for(vm.id, journal_path))
    return build_report(
        inv,
        vm,
        generated_at=generated_at,
        source=backend.settings.display_name,
        checks=checks,
        history=history,
        history_error=history_error,
        connectivity=connectivity,
        recovery=recovery_section(vm, journal_path),
        probe_report=probe_report,
        timeline=timeline_section(timeline),
        console=console_section(vm, journal_path),
        recent_change=timeline.recent_change(generated_at),
    )


async def collect_reports(
    backend: ReportBackend,
    names: Sequence[str],
    *,
    subscription_ids: list[str] | None = None,
    roles: Any = None,
    probe: bool = True,
    journal_path: Any = None,
    now: datetime | None = None,
) -> tuple[Inventory, list[dict[str, Any]]]:
    """Everything the reports need, read through the adapter; raises ReportError for an unknown VM."""
    from backend.checks import evaluate

    # The instance views (agent, maintenance, domains) of the reported VMs and their
    # availability-set peers are read; the rest of the estate does not need them.
    inv = await backend.inventory(subscription_ids, instance_views=0)
    vms = [find_vm(inv, n) for n in names]
    sets = {v.availability_set.lower() for v in vms if v.availability_set}
    first = list(dict.fromkeys([v.id for v in vms] + [v.id for v in inv.vms if v.availability_set and v.availability_set.lower() in sets]))
    inv, result = await evaluate(backend, roles=roles, inventory=inv, first=first, instance_view_limit=len(first))
    reports = []
    for vm in dict((v.id.lower(), v) for v in vms).values():
        vm = inv.vm_by_id(vm.id) or vm
        reports.append(await report_for(backend, inv, vm, checks=result, probe=probe, journal_path=journal_path, now=now))
    return inv, reports


def render(reports: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """The reports as one Markdown document or one JSON document."""
    if fmt == "json":
        import json

        return json.dumps({"reports": list(reports)}, indent=2, default=str) + "\n"
    return "\n---\n\n".join(render_markdown(r) for r in reports)
