"""Why a VM's RDP/SSH port does (not) answer: one verdict per VM and port.

Pure: it combines what is already known (power state, Resource Health, NSG
verdict, probe results, the last-known public IP, the private path, a
Network Watcher check) into a verdict, the evidence lines an operator reads,
and the recovery scenario to open. The order of the rules is the order in
which an operator would rule causes out: a VM that is not running explains
everything after it; Azure's own "unhealthy" comes before any network
reasoning; an NSG that denies explains a silent port; only when Azure allows
everything is the guest itself to blame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.models import Maintenance, ServiceEvent, Vm, named_fields
from backend.probe import DNS_FAILED, OPEN, REFUSED, TIMEOUT, UNREACHABLE, ProbeResult, connect_host, mstsc_command, ssh_command

if TYPE_CHECKING:  # annotations only: every verdict imports this module, and `aztriage inventory` needs neither (about 30 ms of CPU)
    from backend.lastknown import EndpointChange
    from backend.network import ConnectivityCheck, NetworkVerdict, PrivatePath

REACHABLE = "reachable"
VM_NOT_RUNNING = "vm-not-running"
PLATFORM_UNHEALTHY = "platform-unhealthy"
BLOCKED_BY_NSG = "blocked-by-nsg"
IP_CHANGED = "ip-changed"
NO_PUBLIC_PATH = "no-public-path"
GUEST_NOT_ANSWERING = "guest-not-answering"
NOT_PROBED = "not-probed"
VERDICTS = (REACHABLE, VM_NOT_RUNNING, PLATFORM_UNHEALTHY, BLOCKED_BY_NSG, IP_CHANGED, NO_PUBLIC_PATH, GUEST_NOT_ANSWERING, NOT_PROBED)

# Recovery scenarios (ids the Recovery pane knows).
SCENARIOS = ("start", "redeploy", "restart", "reset-access", "run-fix", "fix-nsg", "rescue", "perform-maintenance")
SCENARIO_TITLES = {
    "start": "start the VM",
    "redeploy": "redeploy the VM to a new host",
    "restart": "restart the VM",
    "reset-access": "reset the RDP/SSH configuration (VM access extension)",
    "run-fix": "run a command in the guest to fix its firewall or service",
    "fix-nsg": "let RDP/SSH from your address past the NSG rule (temporary allow rule)",
    "rescue": "repair the OS disk on a rescue VM",
    "perform-maintenance": "start the pending maintenance now",
    "upgrade-public-ip": "make the public IP Static and Standard, keeping its address",
    "reset-vpn": "reset the site-to-site VPN connection (or its gateway)",
}

NOT_RUNNING_STATES = ("stopped", "deallocated", "stopping", "deallocating")


@dataclass(frozen=True)
class Diagnosis:
    vm: str
    vm_id: str
    port: int  # the guest port (22 / 3389 / ...)
    verdict: str  # one of VERDICTS
    summary: str  # the verdict as a sentence ("blocked by NSG rule X at priority P (NIC NSG n)")
    evidence: tuple[str, ...] = ()
    recommended_scenario: str | None = None
    connect: tuple[str, ...] = field(default=())  # ready-to-use connection lines
    # Why the guest does not answer, for backend.verdict: boot, refused, wrong-protocol,
    # firewall (times out, agent Ready), hung (times out, no agent), unprobed; None otherwise.
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return named_fields(self, ("vm", "vm_id", "port", "verdict", "summary", "evidence", "recommended_scenario", "connect", "cause"))


@dataclass(frozen=True)
class Facts:
    """Everything known about one VM and port when the diagnosis is made."""

    vm: Vm
    port: int
    results: tuple[ProbeResult, ...] = ()  # probes of this VM's endpoints for this guest port
    nsg: NetworkVerdict | None = None
    has_public_path: bool = True
    private_requested: bool = False
    ip_changes: tuple[EndpointChange, ...] = ()
    private_path: PrivatePath | None = None
    events: tuple[ServiceEvent, ...] = ()  # active Service Health events
    connectivity: ConnectivityCheck | None = None
    agent_status: str | None = None  # from the instance view when the inventory lacks it
    maintenance: Maintenance | None = None
    boot_problem: str | None = None  # from boot diagnostics (backend.bootdiag): why the OS did not boot
    boot_repair: tuple[str, ...] = ()  # the repair commands for the rescue VM that go with it
    boot_notes: tuple[str, ...] = ()  # what the serial log says about a guest that did boot
    now: datetime | None = None


def _protocol_name(port: int) -> str:
    return {22: "SSH", 3389: "RDP"}.get(port, f"port {port}")


def _probe_line(r: ProbeResult) -> str:
    t = r.target
    where = f"{t.host}:{t.port}"
    if t.kind == "lb-nat":
        where += f" (NAT {t.via} -> {t.guest_port})"
    elif t.kind == "fqdn" and r.address:
        where += f" (resolves to {r.address})"
    if r.connect_port and r.connect_port != t.port:
        where += f" [demo port {r.connect_port}]"
    if r.status == OPEN:
        latency = f" in {r.latency_ms:.1f} ms" if r.latency_ms is not None else ""
        what = r.banner or r.detail
        return f"{where}: open{latency}; {what}" if what else f"{where}: open{latency}"
    return f"{where}: {r.status} ({r.detail})" if r.detail else f"{where}: {r.status}"


def health_lines(vm: Vm) -> list[str]:
    h = vm.health
    if h is None:
        return []
    lines = [f"Resource Health: {h.availability_state}" + (f" - {h.summary or h.title}" if (h.summary or h.title) else "")]
    if h.detailed_status:
        lines.append(f"Resource Health detail: {h.detailed_status}")
    if h.reason_type:
        lines.append(f"reason: {h.reason_type}" + (f", since {h.since:%Y-%m-%d %H:%M} UTC" if h.since else ""))
    if h.resolution_eta:
        lines.append(f"Azure expects it resolved by {h.resolution_eta:%Y-%m-%d %H:%M} UTC")
    if h.recently_resolved_summary:
        when = f" (resolved {h.recently_resolved_at:%Y-%m-%d %H:%M} UTC)" if h.recently_resolved_at else ""
        lines.append(f"recently: {h.recently_resolved_summary}{when}")
    return lines


def event_lines(vm: Vm, events: Iterable[ServiceEvent]) -> list[str]:
    """One line per active service issue in the VM's region (an event listed once per
    subscription is one line)."""
    region = vm.location.replace(" ", "").lower()
    found = _issues_by_region(events if isinstance(events, tuple) else tuple(events)).get(region, ())
    return [f"active service issue {tracking_id} in {vm.location}: {title}" for tracking_id, title in found]


# The index of the last events tuple seen: every VM of an inventory is judged against the same
# tuple, and building the regions of each event once per VM was 0.3 s of a 10,000-VM `inventory`.
_issue_index: tuple[tuple[ServiceEvent, ...], dict[str, tuple[tuple[str, str], ...]]] | None = None


def _issues_by_region(events: tuple[ServiceEvent, ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Normalised region -> (tracking id, title) of each active service issue there, in
    the events' order, each tracking id once."""
    global _issue_index
    cached = _issue_index
    if cached is not None and cached[0] is events:
        return cached[1]
    index: dict[str, dict[str, str]] = {}
    for e in events:
        if e.status.lower() != "active" or e.type not in ("ServiceIssue",):
            continue
        for r in {r.replace(" ", "").lower() for r in e.regions}:
            index.setdefault(r, {}).setdefault(e.id, e.title)
    result = {r: tuple(found.items()) for r, found in index.items()}
    _issue_index = (events, result)
    return result


def _connect_lines(vm: Vm, results: Sequence[ProbeResult], port: int) -> tuple[str, ...]:
    """An ssh command / .rdp line for the first endpoint that answered."""
    best = next((r for r in results if r.status == OPEN and r.protocol_ok), None) or next((r for r in results if r.status == OPEN), None)
    if best is None:
        return ()
    host = connect_host(best, results)  # the DNS name when Azure gives one: the next address change does not make it stale
    connect_port = best.connect_port or best.target.port
    if port == 22 or best.target.protocol == "ssh":
        return (ssh_command(host, connect_port, vm.admin_username),)
    if port == 3389 or best.target.protocol == "rdp":
        return (mstsc_command(host, connect_port),)
    return ()


def _nsg_summary(verdict: NetworkVerdict) -> str:
    block = verdict.blocking
    if block is None:  # only called for a verdict that blocks, which always names its decision
        return "blocked by an NSG"
    rule = block.rule
    level = "NIC" if block.level == "nic" else "subnet"
    default = " (a default rule: no rule allows the port)" if rule is not None and rule.default else ""
    name = rule.name if rule is not None else "?"
    priority = rule.priority if rule is not None else "?"
    return f"blocked by NSG rule {name} at priority {priority} ({level} NSG {block.nsg_name}){default}"


def diagnose(f: Facts) -> Diagnosis:
    vm, port = f.vm, f.port
    proto = _protocol_name(port)
    results = tuple(f.results)
    probe_lines = [_probe_line(r) for r in results]
    public = [r for r in results if r.target.kind != "private"]
    answered = [r for r in results if r.status == OPEN and r.protocol_ok]
    agent = f.agent_status or (vm.agent_status if vm.agent_status != "Unknown" else None)
    maintenance = f.maintenance if f.maintenance is not None and f.maintenance.pending else vm.maintenance
    connectivity_lines = [f.connectivity.describe()] if f.connectivity else []

    def make(verdict: str, summary: str, evidence: Iterable[str], scenario: str | None, cause: str | None = None) -> Diagnosis:
        lines = [line for line in evidence if line]
        if scenario:
            lines.append(f"recommended: {SCENARIO_TITLES[scenario]} (scenario {scenario})")
        return Diagnosis(vm.name, vm.id, port, verdict, summary, tuple(lines), scenario, _connect_lines(vm, results, port), cause)

    change_lines = [c.describe() for c in f.ip_changes]

    # 1. Not running: nothing else matters until it runs.
    power = vm.power_state
    if power in NOT_RUNNING_STATES or power == "starting":
        evidence = [f"power state: {power}"] + health_lines(vm)
        if power == "starting":
            return make(VM_NOT_RUNNING, "VM not running: it is starting", evidence + ["probe again when it reports running"] + probe_lines, None)
        if power in ("deallocated", "deallocating") and any(
            p.allocation == "Dynamic" or (p.sku or "").lower() == "basic" for n in vm.nics for p in n.public_ips
        ):
            evidence.append("its dynamic public IP is released while deallocated: it gets a new address when started (stale .rdp files and DNS records)")
        if vm.priority and vm.priority.lower() == "spot":
            evidence.append("a Spot VM: Azure can evict it again when it needs the capacity")
        return make(VM_NOT_RUNNING, f"VM not running ({power})", evidence + probe_lines, "start")

    # 2. Azure says the platform is the problem.
    state = vm.availability_state
    reason = (vm.health.reason_type or "") if vm.health else ""
    if state in ("Unavailable", "Degraded") and reason.lower() != "userinitiated":
        evidence = health_lines(vm) + event_lines(vm, f.events)
        if answered:
            evidence.append(f"{proto} still answers: redeploy in a quiet moment, before the host fails")
        return make(PLATFORM_UNHEALTHY, f"platform unhealthy: Resource Health says {state}", evidence + probe_lines + connectivity_lines, "redeploy")

    # 2b. The OS did not boot (boot diagnostics): no network change makes the port answer.
    if f.boot_problem and not answered:
        evidence = [
            f"boot diagnostics: {f.boot_problem}",
            f"Azure runs the VM (power {power}, Resource Health {state}) but its OS did not boot: not a network or firewall problem",
        ]
        evidence += [f"repair on the rescue VM: {command}" for command in f.boot_repair]
        evidence += probe_lines
        return make(GUEST_NOT_ANSWERING, f"the OS did not boot: {f.boot_problem.split(':', 1)[0]}", evidence, "rescue", "boot")

    # 3. Nothing public leads to the port.
    if not f.has_public_path and not answered:
        evidence = ["the VM has no public IP and no load-balancer NAT rule to this port", f"private address: {', '.join(vm.private_ips) or 'none'}"]
        if f.private_path is not None:
            evidence += f.private_path.evidence()
        if f.private_requested:
            if f.nsg is not None:
                evidence += [f"from {f.nsg.flow.source.label}: " + line for line in f.nsg.evidence()]
            evidence += probe_lines
        else:
            evidence.append("from a network that reaches the VNet (VPN), probe again with --private")
        down = [c for c in f.private_path.vpn_connections if not c.connected] if f.private_path is not None else []
        return make(NO_PUBLIC_PATH, "no public path: reach it through the VPN or Bastion", evidence + connectivity_lines, "reset-vpn" if down else None)

    if not results:
        return make(NOT_PROBED, f"not probed: no endpoint for {proto}", health_lines(vm), None)

    nsg_lines = f.nsg.evidence() if f.nsg is not None else []

    # 4. An NSG denies the port (and nothing answered anyway).
    if f.nsg is not None and not f.nsg.allowed and not answered:
        evidence = nsg_lines + probe_lines
        if all(r.status == TIMEOUT for r in public):
            evidence.append("every attempt timed out: an NSG drops packets without an answer")
        return make(BLOCKED_BY_NSG, _nsg_summary(f.nsg), evidence + connectivity_lines + change_lines, "fix-nsg")

    # 5. It answers.
    if answered:
        best = answered[0]
        evidence = [f"{proto} answers: " + _probe_line(best)] + [line for r, line in zip(results, probe_lines) if r is not best]
        if f.nsg is not None and not f.nsg.allowed:
            evidence.append(f"the NSG evaluation for source {f.nsg.flow.source.label} denies, but the probe got through: your address is admitted")
        if change_lines:
            old = ", ".join(f.ip_changes[0].old)
            new = ", ".join(f.ip_changes[0].new)
            evidence = change_lines + [f"connect to {new}: .rdp files, bookmarks and DNS records that name {old} are stale"] + evidence
            scenario = None
            if any((p.allocation or "").lower() == "dynamic" or (p.sku or "").lower() == "basic" for n in vm.nics for p in n.public_ips):
                evidence.append("the public IP is dynamic (Basic): make it Static so it keeps its address")
                scenario = "upgrade-public-ip"
            return make(IP_CHANGED, f"IP changed from {old} to {new}", evidence, scenario)
        if agent and agent != "Ready":
            evidence.append(f"VM agent: {agent} (extensions and run commands will not work until it is Ready)")
        evidence += health_lines(vm)[1:] if vm.health and vm.health.recently_resolved_summary else []
        scenario = None
        if maintenance is not None and maintenance.pending and maintenance.self_service_allowed:
            window = f" until {maintenance.window_end:%Y-%m-%d %H:%M} UTC" if maintenance.window_end else ""
            evidence.append(f"planned maintenance is pending; self-service window open{window}")
            scenario = "perform-maintenance"
        return make(REACHABLE, f"reachable: {proto} answers", evidence + connectivity_lines, scenario)

    # 6. Azure allows it and the guest does not answer properly.
    evidence = [f"Azure allows it: power running, Resource Health {state}"] + nsg_lines + probe_lines
    opened = [r for r in results if r.status == OPEN]
    refused = [r for r in public if r.status == REFUSED]
    dns = [r for r in results if r.status == DNS_FAILED]
    if dns and len(dns) < len(results):
        evidence.append("the FQDN does not resolve: a stale or missing DNS record")
    if agent:
        evidence.append(f"VM agent: {agent}")
    evidence += [f"boot diagnostics: {note}" for note in f.boot_notes]
    evidence += connectivity_lines + change_lines
    if f.connectivity is not None and f.connectivity.connected:
        evidence.append("Azure reaches the port from inside: the problem is on your side (LAN, proxy, VPN, firewall)")
    # A guest that answers wrongly, or refuses, is up: reset its access unless its agent is unwell.
    up_scenario = "reset-access" if agent in (None, "Ready") else "restart"
    if opened:
        wrong = opened[0]
        what = {"silent": "connects but says nothing", "closed": "connects and hangs up", "other": "answers something else"}.get(
            wrong.answered or "", "does not speak it"
        )
        return make(GUEST_NOT_ANSWERING, f"guest not answering though Azure allows it: the port {what}, not {proto}", evidence, up_scenario, "wrong-protocol")
    if refused:
        evidence.append(f"the guest answers with a reset: it is up, but nothing listens on {port} (service stopped or moved)")
        return make(GUEST_NOT_ANSWERING, f"guest not answering though Azure allows it: {proto} refused", evidence, up_scenario, "refused")
    if all(r.status in (UNREACHABLE, DNS_FAILED) for r in results):
        return make(GUEST_NOT_ANSWERING, "guest not checked: no endpoint could be probed from here", evidence, None, "unprobed")
    if agent == "Ready":
        evidence.append("the VM agent is Ready, so the OS is up: the guest firewall or the service drops the port")
        return make(GUEST_NOT_ANSWERING, f"guest not answering though Azure allows it: {proto} times out", evidence, "run-fix", "firewall")
    evidence.append("the OS may be hung or not booted: check boot diagnostics (serial log, screenshot)")
    return make(GUEST_NOT_ANSWERING, f"guest not answering though Azure allows it: {proto} times out", evidence, "restart", "hung")
