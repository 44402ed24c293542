"""One verdict per VM: what is wrong, the evidence, the one next step.

Every pane, every CLI command, the recovery pre-flight and every run's final
check ask this module, so an operator gets the same answer wherever they look.

`decide` is pure. Its input is everything known about one VM: Azure's view
from the inventory (power and provisioning state, Resource Health now and
recently resolved, the VM agent, planned maintenance), the active Service
Health events of its region with the resources Azure lists as impacted, and,
when they exist, the latest probe diagnoses of its RDP/SSH port
(backend.diagnose, which owns the port-level reasoning: NSG evaluation,
probe results, last-known IP, boot-log signatures) and its boot-log verdict
(backend.bootdiag). The rules run in the order an operator rules causes out:
a VM that is not running explains everything; Azure mitigating an incident
comes before anything the operator could do; Azure's own "unhealthy" before
any network reasoning; then what the probe found.

`VerdictBook` keeps the evidence a session gathered (probes, boot logs) per
VM; evidence taken while the VM was in another power state is stale and is
not used, and a recovery run's result replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend import diagnose as D
from backend.models import Inventory, ServiceEvent, Vm
from backend.probe import most_telling, port_of
from backend.quickinit import quick_init

if TYPE_CHECKING:
    from backend.adapter import ResourceGraph

# Verdicts that put the fault inside the guest OS: its serial console can reach it when RDP/SSH cannot.
GUEST_SIDE = frozenset({"not-booting", "guest-firewall", "guest-service-down", "guest-unresponsive", "agent-not-ready"})


@dataclass(frozen=True)
class Kind:
    """One verdict id, as the README lists it."""

    id: str
    label: str  # the Inventory's VERDICT column (short, upper case where it needs attention)
    rank: int  # attention order: lower first
    meaning: str
    evidence: str  # what it is decided from
    next_step: str


KINDS: tuple[Kind, ...] = (
    Kind(
        "platform-incident",
        "INCIDENT",
        0,
        "Azure reports the VM unavailable or degraded during an active Service Health incident that lists it (or, when the incident lists no resources, covers its region).",
        "Resource Health (state, reason, ETA), Service Health events (tracking id, status, impact start, latest update), the event's impacted resources",
        "Wait for Azure's mitigation and follow the incident; no recovery is recommended while Azure is mitigating (redeploy, recreate and rescue plans open with a warning naming the incident).",
    ),
    Kind(
        "not-booting",
        "NO BOOT",
        1,
        "Azure runs the VM, but its serial log shows the OS did not boot (emergency mode, fsck, kernel panic, stop code...).",
        "power state, boot-diagnostics serial log signatures, probe results",
        "Repair the OS disk from a rescue VM (scenario rescue) with the repair commands the Boot pane shows.",
    ),
    Kind(
        "platform-unhealthy",
        "UNHEALTHY",
        2,
        "Resource Health says Unavailable or Degraded for a platform reason, and no active incident covers the VM.",
        "Resource Health (state, reason type, detail, recommended actions), probe results",
        "Redeploy the VM to a new host (scenario redeploy).",
    ),
    Kind(
        "blocked-by-nsg",
        "NSG",
        3,
        "An NSG rule (NIC or subnet) denies the RDP/SSH port from the probing source, and the port does not answer.",
        "NSG evaluation of NIC and subnet rules in priority order, probe results",
        "Change the rule that denies the port (scenario fix-nsg: the rule, its priority and NSG are named).",
    ),
    Kind(
        "guest-firewall",
        "FIREWALL",
        4,
        "Azure allows the port and the VM agent is Ready (the OS is up), but the port times out: the guest firewall or the service drops it.",
        "power, Resource Health, NSG evaluation, probe results (timeouts), VM agent",
        "Open the port in the guest with a run command (scenario run-fix).",
    ),
    Kind(
        "guest-service-down",
        "SERVICE",
        5,
        "The guest answers on the port with a reset (nothing listens) or with something that is not RDP/SSH.",
        "probe results (refused, wrong protocol), NSG evaluation, VM agent",
        "Reset the RDP/SSH configuration through the VM agent (scenario reset-access), or restart the VM when the agent is not Ready.",
    ),
    Kind(
        "guest-unresponsive",
        "NO ANSWER",
        6,
        "Azure allows the port but it times out and the VM agent is not Ready: the OS may be hung or still booting.",
        "probe results (timeouts), VM agent, boot log when read",
        "Read the boot log (Boot pane); restart the VM (scenario restart).",
    ),
    Kind(
        "agent-not-ready",
        "AGENT",
        7,
        "RDP/SSH is not the problem (it answers, or was not checked), but the VM agent is not Ready: extensions, run command and password resets do not work.",
        "VM agent status from the instance view, probe results",
        "Sign in over SSH/RDP and restart the agent (waagent / WindowsAzureGuestAgent); from outside, the serial console.",
    ),
    Kind(
        "ip-changed",
        "NEW IP",
        8,
        "The port answers, but on another address than last time (a dynamic public IP was released): .rdp files, bookmarks and DNS records are stale.",
        "last-known addresses of the VM, probe results, public IP allocation",
        "Connect to the new address; make the public IP Static so it keeps it.",
    ),
    Kind(
        "no-public-path",
        "PRIVATE",
        9,
        "The VM has no public IP and no load-balancer NAT rule to its RDP/SSH port.",
        "NICs, public IPs, load-balancer NAT rules, the private path (VPN gateway, peering, Bastion)",
        "Reach it over the VPN or Bastion (probe again with --private from a network that reaches the VNet).",
    ),
    Kind(
        "maintenance-pending",
        "MAINT",
        10,
        "Planned maintenance is pending for the VM (it will be rebooted).",
        "maintenanceRedeployStatus of the instance view (isCustomerInitiatedMaintenanceAllowed, self-service and scheduled windows), Service Health planned maintenance",
        "Start it yourself while the self-service window is open (scenario perform-maintenance); before the window opens, wait for it.",
    ),
    Kind("starting", "STARTING", 11, "The VM is starting (or another power transition is under way).", "power state", "Wait, then probe again."),
    Kind(
        "stopped",
        "STOPPED",
        12,
        "The VM is stopped or deallocated: nothing answers until it runs.",
        "power state, Resource Health (user-initiated or eviction), public IP allocation, Spot priority",
        "Start it (scenario start).",
    ),
    Kind(
        "unknown",
        "?",
        13,
        "Azure sees no problem, but RDP/SSH has not been checked yet (or could not be probed from here).",
        "power, Resource Health, VM agent",
        "Probe it (Connectivity pane, `aztriage probe`).",
    ),
    Kind(
        "reachable",
        "OK",
        14,
        "RDP/SSH answers with the right protocol and Azure reports no problem.",
        "probe results (handshake), Resource Health, VM agent",
        "Nothing to do.",
    ),
)
BY_ID: dict[str, Kind] = {k.id: k for k in KINDS}
VERDICT_IDS: tuple[str, ...] = tuple(k.id for k in KINDS)

# The recommended scenario of each verdict (None: no recovery; some depend on the evidence).
SCENARIO: dict[str, str | None] = {
    "platform-incident": None,
    "not-booting": "rescue",
    "platform-unhealthy": "redeploy",
    "blocked-by-nsg": "fix-nsg",
    "guest-firewall": "run-fix",
    "guest-service-down": "reset-access",
    "guest-unresponsive": "restart",
    "agent-not-ready": None,
    "ip-changed": None,
    "no-public-path": None,
    "maintenance-pending": None,
    "starting": None,
    "stopped": "start",
    "unknown": None,
    "reachable": None,
}

# Scenarios that act on the VM's host or disks: while Azure mitigates an incident, they open with a warning.
INCIDENT_WARNED_SCENARIOS = ("redeploy", "recreate", "rescue")

# A platform restart (service healing) this recent is marked in the Inventory.
RECENT_HEALING_S = 24 * 3600


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value else None


def _when(value: datetime | None) -> str:
    value = _utc(value)
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "?"


def region_key(region: str | None) -> str:
    return "".join((region or "").split()).lower()


def remote_port(vm: Vm) -> int:
    return 3389 if vm.os_type.lower() == "windows" else 22


@dataclass(frozen=True)
class Incident:
    """An active Service Health incident that covers a VM."""

    tracking_id: str
    title: str
    status: str
    impact_start: datetime | None
    eta: datetime | None  # Resource Health's resolutionETA for the VM, when Azure gives one
    last_update: str | None
    last_update_at: datetime | None
    listed: bool  # True: the event's impacted resources name the VM; False: it is in the region

    def describe(self) -> str:
        where = "lists this VM as impacted" if self.listed else "covers its region"
        eta = f"ETA {_when(self.eta)}" if self.eta else "no ETA given"
        return f"Azure incident {self.tracking_id} ({self.status}, impact since {_when(self.impact_start)}, {eta}) {where}: {self.title}"

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_id": self.tracking_id,
            "title": self.title,
            "status": self.status,
            "impact_start": _iso(self.impact_start),
            "eta": _iso(self.eta),
            "last_update": self.last_update,
            "last_update_at": _iso(self.last_update_at),
            "impacted": "listed" if self.listed else "in the region",
        }


@dataclass(frozen=True)
class Evidence:
    """What a session learned about one VM beyond the inventory."""

    diagnoses: tuple[D.Diagnosis, ...] = ()  # the latest probe diagnoses (backend.diagnose), one per port
    boot: Any = None  # backend.bootdiag.BootVerdict of the latest serial log read, or None
    checked_at: datetime | None = None
    power_state: str | None = None  # the VM's power state when it was checked
    agent_status: str | None = None  # from the VM's instance view when the probe read it
    # Per probed port, the probe result that says the most (backend.probe.ProbeResult, most_telling):
    # what answered where, and how fast, beside the diagnosis it led to.
    results: tuple[Any, ...] = ()

    def result_for(self, port: int) -> Any:
        """The probe result behind the diagnosis of `port`, or None."""
        return next((r for r in self.results if port_of(r) == port), None)


@quick_init  # one per VM, made again for each new inventory and new evidence (backend/quickinit.py)
@dataclass(frozen=True, slots=True)
class Verdict:
    vm_id: str
    vm: str
    id: str  # one of VERDICT_IDS
    summary: str
    evidence: tuple[str, ...] = ()
    scenario: str | None = None  # the recommended recovery scenario, or None
    next_step: str = ""
    since: datetime | None = None
    incident: Incident | None = None
    healed_at: datetime | None = None  # a recent platform restart (service healing)
    connect: tuple[str, ...] = ()
    probed: bool = False  # the verdict rests on a probe of RDP/SSH
    change: Any = None  # the VM's recent change (backend.timeline.TimelineEntry) when the verdict is not reachable: who, what, when

    @property
    def kind(self) -> Kind:
        return BY_ID[self.id]

    @property
    def label(self) -> str:
        return self.kind.label

    @property
    def rank(self) -> int:
        return self.kind.rank

    @property
    def needs_attention(self) -> bool:
        return self.id not in ("reachable", "unknown")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "recommended_scenario": self.scenario,
            "next_step": self.next_step,
            "since": _iso(self.since),
            "incident": self.incident.to_json() if self.incident else None,
            "healed_at": _iso(self.healed_at),
            "probed": self.probed,
            "recent_change": change_json(self.change) if self.change is not None else None,
        }


# --- what changed ---------------------------------------------------------------------

# A verdict that is not one of these takes the VM's recent change as evidence ("what changed?").
QUIET = frozenset({"reachable", "unknown", "starting"})
RECENT_CHANGE_S = 24 * 3600  # as backend.timeline.RECENT_CHANGE


def recent(change: Any, now: datetime) -> bool:
    if change is None:
        return False
    at = _utc(change.time) or now
    return -300 <= (now - at).total_seconds() <= RECENT_CHANGE_S


def change_line(change: Any, now: datetime) -> str:
    """The evidence line: when, who, what (the diff), how."""
    at = _utc(change.time) or now
    line = f"changed {_span(now - at)} ago ({_when(at)}) by {change.actor}: {change.what}"
    return line + (f" [{change.detail}]" if change.detail else "")


def change_json(change: Any) -> dict[str, Any]:
    return {
        "time": _iso(change.time),
        "changed_by": change.actor,
        "what": change.what,
        "how": change.detail,
        "correlation_id": change.link or None,
    }


# --- Azure's view ---------------------------------------------------------------------


def incident_for(vm: Vm, events: Iterable[ServiceEvent], impacted: Mapping[str, Iterable[str]] | None = None) -> Incident | None:
    """The active service issue that covers `vm`: one whose impacted resources list it, or,
    for an event without a list of impacted resources, one in its region."""
    region = region_key(vm.location)
    vm_key = vm.id.lower()
    best: tuple[int, ServiceEvent] | None = None
    listed_by_issue = _impacted_sets(impacted or {})
    for e, regions in _active_issues(events if isinstance(events, tuple) else tuple(events)):
        listed_ids = listed_by_issue.get(e.id.lower())
        if listed_ids is not None:
            if listed_ids:
                if vm_key not in listed_ids:
                    continue
                score = 0
            elif region not in regions:
                continue
            else:
                score = 1
        elif region in regions:
            score = 1
        else:
            continue
        if best is None or score < best[0]:
            best = (score, e)
    if best is None:
        return None
    score, e = best
    updates = e.updates
    latest = updates[0] if updates else None
    eta = vm.health.resolution_eta if vm.health else None
    return Incident(e.id, e.title, e.status, e.impact_start, eta, latest.summary if latest else e.summary, latest.time if latest else e.last_update, score == 0)


# Every VM of an inventory is judged against the same events tuple and impacted mapping: their
# active issues' regions and their lower-case impacted ids are built once per inventory, not once
# per VM (at 1,000 subscriptions, thousands of events, that was O(VMs x events x targets)).
_active_index: tuple[tuple[ServiceEvent, ...], list[tuple[ServiceEvent, frozenset[str]]]] | None = None
_impacted_index: tuple[Mapping[str, Iterable[str]], dict[str, frozenset[str]]] | None = None


def _active_issues(events: tuple[ServiceEvent, ...]) -> list[tuple[ServiceEvent, frozenset[str]]]:
    global _active_index
    cached = _active_index
    if cached is not None and cached[0] is events:
        return cached[1]
    issues = [(e, frozenset(region_key(r) for r in e.regions)) for e in events if e.status.lower() == "active" and e.type.lower() == "serviceissue"]
    _active_index = (events, issues)
    return issues


def _impacted_sets(impacted: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    global _impacted_index
    cached = _impacted_index
    if cached is not None and cached[0] is impacted:
        return cached[1]
    sets = {k: frozenset(i.lower() for i in v) for k, v in impacted.items()}
    _impacted_index = (impacted, sets)
    return sets


def platform_unhealthy(vm: Vm) -> bool:
    """Resource Health says Unavailable or Degraded for a reason other than the user's own action."""
    reason = (vm.health.reason_type or "").lower() if vm.health else ""
    return vm.availability_state in ("Unavailable", "Degraded") and reason != "userinitiated"


def maintenance_window(vm: Vm, now: datetime) -> tuple[bool, str]:
    """(can be started now, a sentence saying when). Azure's own answer decides:
    isCustomerInitiatedMaintenanceAllowed, worked out by Azure on its clock when the
    instance view was read (and read again by every refresh and by a plan before it runs).
    The window's times on ``now`` (this machine's clock, which may be off Azure's) only say
    why it is refused."""
    m = vm.maintenance
    start, end = _utc(m.window_start), _utc(m.window_end)
    if m.self_service_allowed:
        return True, f"the self-service window is open until {_when(end)}" if end else "the self-service window is open"
    if start and now < start:
        return False, f"the self-service window opens at {_when(start)} (in {_span(start - now)}) and closes at {_when(end)}"
    if end and now > end:
        return (
            False,
            f"the self-service window closed at {_when(end)}; Azure does it in its window {_when(m.maintenance_window_start)} to {_when(m.maintenance_window_end)}",
        )
    return False, "Azure does not allow starting it now (isCustomerInitiatedMaintenanceAllowed is false)"


def _span(delta: Any) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def healed_at(vm: Vm, now: datetime) -> datetime | None:
    """When a platform restart (Resource Health's recently resolved unavailability) ended, if recent."""
    h = vm.health
    if h is None or not h.recently_resolved_summary or h.recently_resolved_at is None:
        return None
    at = _utc(h.recently_resolved_at)
    if at is None or (now - at).total_seconds() > RECENT_HEALING_S:
        return None
    return at


def fresh(vm: Vm, evidence: Evidence | None) -> Evidence | None:
    """Evidence taken while the VM was in another power state says nothing about it now."""
    if evidence is None:
        return None
    if evidence.power_state is not None and evidence.power_state != vm.power_state:
        return None
    return evidence


def _port_diagnosis(vm: Vm, diagnoses: Iterable[D.Diagnosis]) -> D.Diagnosis | None:
    """The diagnosis of the VM's RDP (Windows) or SSH (Linux) port, else the first."""
    diagnoses = [d for d in diagnoses if d.vm_id.lower() == vm.id.lower()]
    wanted = remote_port(vm)
    return next((d for d in diagnoses if d.port == wanted), None) or (diagnoses[0] if diagnoses else None)


# --- the decision ---------------------------------------------------------------------------


def decide(
    vm: Vm,
    *,
    events: Iterable[ServiceEvent] = (),
    impacted: Mapping[str, Iterable[str]] | None = None,
    evidence: Evidence | None = None,
    now: datetime | None = None,
    change: Any = None,
) -> Verdict:
    """The one verdict for `vm` from everything known about it. `change` is its latest change
    (backend.timeline.TimelineEntry, resourcechanges): evidence when it is recent and the
    verdict is not reachable."""
    now = _utc(now) or datetime.now(UTC)
    events = tuple(events)
    evidence = fresh(vm, evidence)
    diagnosis = _port_diagnosis(vm, evidence.diagnoses) if evidence else None
    boot = evidence.boot if evidence else None
    checked_at = evidence.checked_at if evidence else None
    health = vm.health
    healed = healed_at(vm, now)
    agent = (evidence.agent_status if evidence else None) or (vm.agent_status if vm.instance_view_read or vm.agent_status not in ("Unknown", "") else None)

    def make(
        verdict_id: str,
        summary: str,
        lines: Iterable[str],
        *,
        scenario: str | None = "default",
        next_step: str | None = None,
        since: datetime | None = None,
        incident: Incident | None = None,
    ) -> Verdict:
        kind = BY_ID[verdict_id]
        chosen = SCENARIO[verdict_id] if scenario == "default" else scenario
        step = next_step or kind.next_step
        out = [line for line in lines if line]
        if healed and not any("recently" in line for line in out):
            out.append(f"restarted by the platform (service healing), back at {_when(healed)}: {health.recently_resolved_summary}")  # type: ignore[union-attr]
        what_changed = change if verdict_id not in QUIET and recent(change, now) else None
        if what_changed is not None:
            out.append(change_line(what_changed, now))
        return Verdict(
            vm.id,
            vm.name,
            verdict_id,
            summary,
            tuple(dict.fromkeys(out)),
            chosen,
            step,
            since,
            incident,
            healed,
            diagnosis.connect if diagnosis else (),
            diagnosis is not None,
            what_changed,
        )

    health_lines = D.health_lines(vm)
    region_events = D.event_lines(vm, events)

    # 1. Not running: nothing else matters until it runs.
    power = vm.power_state
    if power == "starting":
        return make(
            "starting", "starting: probe again when it reports running", [f"power state: {power}"] + health_lines, since=health.since if health else None
        )
    if power in D.NOT_RUNNING_STATES:
        lines = [f"power state: {power}"] + health_lines
        if power in ("deallocated", "deallocating") and any(
            (p.allocation or "").lower() == "dynamic" or (p.sku or "").lower() == "basic" for n in vm.nics for p in n.public_ips
        ):
            lines.append("its dynamic public IP is released while deallocated: it gets a new address when started")
        if (vm.priority or "").lower() == "spot":
            lines.append("a Spot VM: Azure can evict it again when it needs the capacity")
        what = "stopped (still billed: not deallocated)" if power == "stopped" else power
        return make("stopped", f"VM {what}", lines, scenario=None if power in ("stopping", "deallocating") else "start", since=health.since if health else None)
    if power not in ("running",):
        return make(
            "unknown",
            f"power state {power}: Azure does not say whether the VM runs",
            [f"power state: {power}"] + health_lines,
            next_step="Read the VM again (r); if it stays unknown, check the Activity Log.",
        )

    # 2. Azure says the platform is the problem: first, is Azure already mitigating an incident?
    if platform_unhealthy(vm):
        incident = incident_for(vm, events, impacted)
        if incident is not None:
            lines = [incident.describe()]
            if incident.last_update:
                lines.append(f"latest update ({_when(incident.last_update_at)}): {incident.last_update}")
            lines += health_lines
            if diagnosis is not None and diagnosis.verdict == D.REACHABLE:
                lines.append(diagnosis.summary)
            return make(
                "platform-incident",
                f"platform incident {incident.tracking_id}: Resource Health {vm.availability_state} while Azure mitigates ({incident.status})",
                lines,
                since=incident.impact_start or (health.since if health else None),
                incident=incident,
                next_step=f"Wait for Azure's mitigation of {incident.tracking_id}"
                + (f" (ETA {_when(incident.eta)})" if incident.eta else "")
                + " and follow its updates; no recovery is recommended while Azure is mitigating.",
            )
        lines = health_lines + region_events
        if diagnosis is not None:
            lines += list(diagnosis.evidence)
        summary = f"platform unhealthy: Resource Health says {vm.availability_state}" + (
            f" ({health.summary or health.title})" if health and (health.summary or health.title) else ""
        )
        return make("platform-unhealthy", summary, lines, since=health.since if health else None)

    # 3. What the probe of RDP/SSH found (backend.diagnose owns the port-level reasoning).
    if diagnosis is not None:
        found = _from_diagnosis(vm, diagnosis, agent, now, make, checked_at, boot)
        if found is not None:
            return found

    # 4. Not probed (or nothing conclusive): the boot log and Azure's view.
    if boot is not None and getattr(boot, "problem", None):
        lines = [f"boot diagnostics: {boot.problem}", f"Azure runs the VM (power {power}, Resource Health {vm.availability_state}) but its OS did not boot"]
        lines += [f"repair on the rescue VM: {c}" for c in boot.repair]
        return make("not-booting", f"the OS did not boot: {boot.problem.split(':', 1)[0]}", lines, since=checked_at)
    if agent and agent != "Ready":
        return make(
            "agent-not-ready",
            f"VM agent {agent}; RDP/SSH not checked yet",
            [f"VM agent: {agent} (extensions, run command and VMAccess will not work)"] + health_lines,
            next_step="Probe RDP/SSH (Connectivity); if it answers, sign in and restart the agent, else use the serial console.",
        )
    if vm.maintenance.pending:
        return _maintenance(vm, now, make, health_lines)
    if diagnosis is not None and diagnosis.cause == "unprobed":
        return make("unknown", diagnosis.summary, list(diagnosis.evidence), since=checked_at, next_step="Probe it from a network that reaches its endpoints.")
    lines = [f"power running, Resource Health {vm.availability_state}"] + health_lines[1:] + region_events
    return make("unknown", f"running, Resource Health {vm.availability_state}; RDP/SSH not checked yet", lines)


def _maintenance(vm: Vm, now: datetime, make: Any, lines: list[str], prefix: list[str] | None = None) -> Verdict:
    m = vm.maintenance
    open_now, when = maintenance_window(vm, now)
    out = list(prefix or []) + [f"planned maintenance pending: {when}"]
    if m.maintenance_window_start:
        out.append(f"otherwise Azure does it in its scheduled window {_when(m.maintenance_window_start)} to {_when(m.maintenance_window_end)}")
    if m.last_result and m.last_result != "None":
        out.append(f"last maintenance operation: {m.last_result}" + (f" ({m.last_message})" if m.last_message else ""))
    if open_now:
        return make(
            "maintenance-pending",
            f"planned maintenance pending; {when}",
            out + lines,
            scenario="perform-maintenance",
            next_step="Start it at a time that suits you while the window is open (scenario perform-maintenance).",
            since=_utc(m.window_start),
        )
    return make(
        "maintenance-pending",
        f"planned maintenance pending; {when}",
        out + lines,
        scenario=None,
        next_step=f"Nothing to do yet: {when}.",
        since=_utc(m.window_start),
    )


def _from_diagnosis(vm: Vm, d: D.Diagnosis, agent: str | None, now: datetime, make: Any, checked_at: datetime | None, boot: Any) -> Verdict | None:
    lines = [line for line in d.evidence if not line.startswith("recommended: ")]
    cause = d.cause
    if d.verdict == D.BLOCKED_BY_NSG:
        return make(
            "blocked-by-nsg", d.summary, lines, since=checked_at, next_step=f"Change the rule: {d.summary.removeprefix('blocked by ')} (scenario fix-nsg)."
        )
    if d.verdict == D.NO_PUBLIC_PATH:
        down = [line for line in lines if line.endswith((" is NotConnected", " is Connecting", " is Unknown"))]
        if d.recommended_scenario == "reset-vpn":
            what = down[0] if down else "a VPN connection that serves its network is not Connected"
            return make(
                "no-public-path",
                d.summary,
                lines,
                scenario="reset-vpn",
                since=checked_at,
                next_step=f"Reset the VPN connection ({what}; scenario reset-vpn), then reach it over the VPN or Bastion.",
            )
        return make("no-public-path", d.summary, lines, since=checked_at)
    if d.verdict == D.IP_CHANGED:
        if d.recommended_scenario == "upgrade-public-ip":
            return make(
                "ip-changed",
                d.summary,
                lines,
                scenario="upgrade-public-ip",
                since=checked_at,
                next_step="Connect to the new address; make the public IP Static (and Standard) so it keeps it (scenario upgrade-public-ip).",
            )
        return make("ip-changed", d.summary, lines, since=checked_at)
    if d.verdict == D.GUEST_NOT_ANSWERING:
        if cause == "boot" or (boot is not None and getattr(boot, "problem", None)):
            if cause != "boot":
                lines = [f"boot diagnostics: {boot.problem}"] + [f"repair on the rescue VM: {c}" for c in boot.repair] + lines
                summary = f"the OS did not boot: {boot.problem.split(':', 1)[0]}"
            else:
                summary = d.summary
            return make("not-booting", summary, lines, since=checked_at)
        if cause in ("refused", "wrong-protocol"):
            return make("guest-service-down", d.summary, lines, scenario=d.recommended_scenario, since=checked_at)
        if cause == "firewall":
            return make(
                "guest-firewall",
                d.summary.replace("guest not answering though Azure allows it", "guest firewall or service drops the port"),
                lines,
                since=checked_at,
            )
        if cause == "hung":
            return make("guest-unresponsive", d.summary, lines, since=checked_at)
        return None  # unprobed: Azure's view decides
    if d.verdict == D.REACHABLE:
        port_line = d.summary
        if agent and agent != "Ready":
            proto = "SSH" if d.port == 22 else "RDP" if d.port == 3389 else f"port {d.port}"
            how = "sudo systemctl restart walinuxagent (waagent)" if vm.os_type.lower() != "windows" else "Restart-Service WindowsAzureGuestAgent"
            connect = f" ({d.connect[0]})" if d.connect else ""
            return make(
                "agent-not-ready",
                f"VM agent {agent} while {proto} answers",
                [f"VM agent: {agent}: extensions, run command and VMAccess will not work until it is Ready", port_line] + lines,
                next_step=f"Sign in over {proto}{connect} and restart the agent: {how}; check that it reaches the WireServer (168.63.129.16).",
                since=checked_at,
            )
        if vm.maintenance.pending:
            return _maintenance(vm, now, make, lines, [port_line])
        return make("reachable", d.summary, lines, since=checked_at)
    return None  # not running / unhealthy at probe time: the current state decided above


# --- the session's evidence --------------------------------------------------------------


@dataclass
class VerdictBook:
    """The evidence this session gathered per VM (lower-case id), and the verdicts made from it."""

    evidence: dict[str, Evidence] = field(default_factory=dict)
    _since: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    generation: int = 0  # bumped on every change (panes redraw when it moves)
    changes: dict[str, Any] = field(default_factory=dict)  # lower-case VM id -> its latest recent change, None: read, none
    # The verdicts made since the evidence, the inventory or the VERDICT_REUSE_S window last
    # changed: lower-case VM id -> (the Vm it was made for, the verdict). Every pane asks for
    # every VM's verdict; they share one object per VM instead of each making its own.
    _made: dict[str, tuple[Vm, Verdict]] = field(default_factory=dict, repr=False)
    # What they were made from: the events and impacted resources (an inventory's, which the
    # first load's parts share: a part adds subscriptions, not new copies of what was read),
    # the evidence's generation and the VERDICT_REUSE_S window.
    _made_for: tuple[Any, Any, int, int] | None = field(default=None, repr=False)

    def record_changes(self, found: Mapping[str, Any]) -> None:
        """What backend.timeline found of the VMs' recent changes (a timeline or recent_changes)."""
        for key, change in found.items():
            self.changes[key.lower()] = change
        self.generation += 1

    def unchecked(self, vm: Vm) -> bool:
        """A running VM there is no fresh evidence of: one for the console's background probe."""
        return vm.power_state == "running" and fresh(vm, self.evidence.get(vm.id.lower())) is None

    def changes_known(self, vm_id: str) -> bool:
        return vm_id.lower() in self.changes

    def record_diagnoses(
        self, vm: Vm, diagnoses: Iterable[D.Diagnosis], at: datetime, *, boot: Any = None, agent_status: str | None = None, results: tuple[Any, ...] = ()
    ) -> None:
        key = vm.id.lower()
        old = self.evidence.get(key)
        if boot is None and old is not None and old.power_state == vm.power_state:
            boot = old.boot
        self.evidence[key] = Evidence(tuple(diagnoses), boot, at, vm.power_state, agent_status, results)
        self.generation += 1

    def record_report(self, report: Any, vms: Iterable[Vm], at: datetime) -> None:
        """Everything a connectivity run (backend.connectivity.Report) found about `vms`."""
        for _ in self.recording(report, vms, at):
            pass

    def recording(self, report: Any, vms: Iterable[Vm], at: datetime) -> Iterator[None]:
        """record_report a VM at a time: the caller may give its event loop a turn at each
        step (a background probe of 10,000 VMs records about 9,000 of them)."""
        by_vm: dict[str, list[D.Diagnosis]] = {}
        for d in report.diagnoses:
            by_vm.setdefault(d.vm_id.lower(), []).append(d)
        by_port: dict[str, dict[int, list[Any]]] = {}  # vm id -> port -> its results
        for r in report.results:
            by_port.setdefault(r.target.vm_id.lower(), {}).setdefault(port_of(r), []).append(r)
        for vm in vms:
            key = vm.id.lower()
            runtime = report.runtimes.get(key)
            results = tuple(most_telling(found) for found in by_port.get(key, {}).values())
            self.record_diagnoses(vm, by_vm.get(key, ()), at, boot=report.boot_verdicts.get(key), agent_status=runtime[0] if runtime else None, results=results)
            yield

    def record_boot(self, vm: Vm, boot: Any, at: datetime) -> None:
        key = vm.id.lower()
        old = self.evidence.get(key)
        if old is not None and old.power_state == vm.power_state:
            self.evidence[key] = replace(old, boot=boot, checked_at=old.checked_at or at)
        else:
            self.evidence[key] = Evidence((), boot, at, vm.power_state)
        self.generation += 1

    def forget(self, vm_id: str) -> None:
        """A recovery changed the VM: what was probed before no longer holds (and its own
        change is the latest now: the changes are read again)."""
        had_changes = vm_id.lower() in self.changes
        self.changes.pop(vm_id.lower(), None)
        if self.evidence.pop(vm_id.lower(), None) is not None or had_changes:
            self.generation += 1

    def verdict(self, vm: Vm, inventory: Inventory | None, now: datetime | None = None) -> Verdict:
        """The VM's verdict; the same object to every caller while the Vm, the inventory's events
        and the evidence are the same, within VERDICT_REUSE_S (at 10,000 VMs each pane made its
        own: about 0.2 s of the event loop and 5-15 MB a pane; and each part of the first load,
        a new inventory of the same VMs, made them all again)."""
        now = _utc(now) or datetime.now(UTC)
        events = inventory.events if inventory is not None else ()
        impacted = getattr(inventory, "impacted", None) if inventory is not None else None
        scope = (events, impacted, self.generation, int(now.timestamp() // VERDICT_REUSE_S))
        made_for = self._made_for
        if made_for is None or made_for[2:] != scope[2:] or not _same_events(made_for[0], events) or not _same_impacted(made_for[1], impacted):
            self._made.clear()
        # This call's objects from now on: the next call with the same inventory compares by
        # identity alone (the item-by-item comparison runs once per new inventory, not per VM).
        self._made_for = scope
        key = vm.id.lower()
        made = self._made.get(key)
        if made is not None and made[0] is vm:
            return made[1]
        found = decide(vm, events=events, impacted=impacted, evidence=self.evidence.get(key), now=now, change=self.changes.get(key))
        # "since" is when this verdict was first seen for the VM, unless the evidence dates it earlier.
        previous = self._since.get(key)
        if previous is not None and previous[0] == found.id and previous[1] is not None and (found.since is None or previous[1] < found.since):
            found = replace(found, since=previous[1])
        self._since[key] = (found.id, found.since)
        self._made[key] = (vm, found)
        return found


def _same_events(a: Any, b: Any) -> bool:
    """The same events, item for item (each part of the first load is a new tuple of them)."""
    return a is b or (len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True)))


def _same_impacted(a: Any, b: Any) -> bool:
    return a is b or (not a and not b) or a == b


# How long a verdict made for a VM serves every pane that asks again (the same Vm and
# inventory, no new evidence): its words that depend on the clock ("changed 2h 40m ago", a
# maintenance window that has opened) are at most this stale.
VERDICT_REUSE_S = 10

# The VMs whose changes one call reads at most: a background sweep of a large estate does not
# turn into a Resource Graph scan of every VM (the ones that need attention come first).
CHANGES_FOR_UP_TO = 200


async def read_changes(book: VerdictBook, backend: ResourceGraph, inventory: Inventory | None, vms: Iterable[Vm], now: datetime) -> str | None:
    """Read the recent changes of those of `vms` whose verdict is not reachable (and whose changes
    the book does not know yet) and record them: one Resource Graph query per few hundred
    resources, never one per VM. The error in one sentence, or None."""
    from backend.errors import BackendError
    from backend.timeline import recent_changes

    wanted = [vm for vm in vms if not book.changes_known(vm.id) and book.verdict(vm, inventory, now).id not in QUIET]
    wanted.sort(key=lambda vm: book.verdict(vm, inventory, now).rank)
    if not wanted:
        return None
    try:
        found = await recent_changes(backend, wanted[:CHANGES_FOR_UP_TO], now)
    except BackendError as exc:
        return f"The recent changes were not read: {str(exc).rstrip('.')}."
    book.record_changes(found)
    return None


def verdicts(inventory: Inventory, book: VerdictBook | None = None, now: datetime | None = None) -> dict[str, Verdict]:
    """Every VM's verdict, keyed by lower-case VM id."""
    book = book or VerdictBook()
    return {vm.id.lower(): book.verdict(vm, inventory, now) for vm in inventory.vms}


def attention_key(verdict: Verdict, name: str) -> tuple[int, str]:
    return (verdict.rank, name.lower())
