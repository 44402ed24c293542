"""The Connectivity table: one row per VM and port (22 / 3389 / extra ports),
filled in as probe results and diagnoses arrive."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from backend.diagnose import (
    BLOCKED_BY_NSG,
    GUEST_NOT_ANSWERING,
    IP_CHANGED,
    NO_PUBLIC_PATH,
    NOT_PROBED,
    PLATFORM_UNHEALTHY,
    REACHABLE,
    VM_NOT_RUNNING,
    Diagnosis,
)
from backend.models import Vm
from backend.probe import OPEN, REFUSED, STATUS_RANK, TIMEOUT, ProbeResult, most_telling
from widgets.fast_table import Column, FastTable, Row

VERDICT_TEXT = {
    REACHABLE: ("reachable", "ok"),
    VM_NOT_RUNNING: ("NOT RUNNING", "bad"),
    PLATFORM_UNHEALTHY: ("UNHEALTHY", "bad"),
    BLOCKED_BY_NSG: ("NSG BLOCKS", "bad"),
    IP_CHANGED: ("IP CHANGED", "warn"),
    NO_PUBLIC_PATH: ("NO PUBLIC PATH", "warn"),
    GUEST_NOT_ANSWERING: ("GUEST", "bad"),
    NOT_PROBED: ("-", "muted"),
}
VERDICT_ORDER = {
    GUEST_NOT_ANSWERING: 0,
    BLOCKED_BY_NSG: 1,
    PLATFORM_UNHEALTHY: 2,
    VM_NOT_RUNNING: 3,
    NO_PUBLIC_PATH: 4,
    IP_CHANGED: 5,
    REACHABLE: 6,
    NOT_PROBED: 7,
}

COLUMNS = (
    Column("marker", "", min_width=1, max_width=1),
    Column("name", "NAME", min_width=16, max_width=26, shrink=True),
    Column("port", "PORT", min_width=4, max_width=5, align_right=True),
    Column("endpoint", "ENDPOINT", min_width=12, max_width=30, shrink=True, priority=4),
    Column("status", "STATUS", min_width=8, max_width=11),
    Column("ms", "MS", min_width=5, max_width=7, align_right=True, priority=2),
    Column("answer", "ANSWER", min_width=6, max_width=7, priority=3),
    Column("verdict", "VERDICT", min_width=10, max_width=15),
    Column("recovery", "RECOVERY", min_width=8, max_width=19, priority=1),
)


@dataclass
class PortState:
    """What the pane knows about one VM's port."""

    vm: Vm
    port: int
    results: dict[tuple[str, str, int], ProbeResult] = field(default_factory=dict)  # (kind, host, port)
    probing: bool = False
    diagnosis: Diagnosis | None = None
    marked: bool = False
    # The session's evidence of this port (the background probe's, another pane's, this pane's
    # last run): shown while the pane has no result of its own for it.
    seen: ProbeResult | None = None

    @property
    def key(self) -> str:
        return row_key(self.vm.id, self.port)

    def best(self) -> ProbeResult | None:
        """The result that says the most (backend.probe.most_telling) of this pane's own, else the
        session's evidence (none while this pane probes the port)."""
        if not self.results:
            return None if self.probing else self.seen
        return most_telling(self.results.values())


def row_key(vm_id: str, port: int) -> str:
    return f"{vm_id.lower()}:{port}"


def _status_cell(state: PortState, best: ProbeResult | None) -> tuple[str, str | None]:
    if best is None:
        if state.probing:
            return "probing…", "accent"
        if state.diagnosis is not None and state.diagnosis.verdict == NO_PUBLIC_PATH:
            return "no path", "warn"
        return "-", "muted"
    if best.status == OPEN:
        return ("open", "ok") if best.protocol_ok is not False else ("open?", "warn")
    return best.status.upper(), "bad" if best.status in (REFUSED, TIMEOUT) else "warn"


def _answer_cell(best: ProbeResult | None) -> tuple[str, str | None]:
    if best is None or best.status != OPEN:
        return "-", "muted"
    answered = best.answered or "tcp"
    if best.protocol_ok is False:
        return answered.upper(), "bad"
    return answered, "ok"


def port_row(state: PortState) -> Row:
    best = state.best()
    status, status_tone = _status_cell(state, best)
    answer, answer_tone = _answer_cell(best)
    d = state.diagnosis
    verdict, verdict_tone = VERDICT_TEXT.get(d.verdict, (d.verdict, None)) if d else (("probing…", "accent") if state.probing else ("-", "muted"))
    recovery = (d.recommended_scenario or "-") if d else "-"
    endpoint = f"{best.target.host}:{best.target.port}" if best else "-"
    ms = f"{best.latency_ms:.1f}" if best is not None and best.latency_ms is not None else "-"
    if state.marked:
        marker, marker_tone = "*", "accent"
    elif d is not None and d.verdict not in (REACHABLE, NOT_PROBED):
        marker, marker_tone = "!", "bad" if verdict_tone == "bad" else "warn"
    else:
        marker, marker_tone = " ", None
    vm = state.vm
    cells = (marker, vm.name, str(state.port), endpoint, status, ms, answer, verdict, recovery)
    tones = (
        marker_tone,
        None,
        None,
        None if best else "muted",
        status_tone,
        None if ms != "-" else "muted",
        answer_tone,
        verdict_tone,
        "accent" if recovery != "-" else "muted",
    )
    name = vm.name.lower()
    sort_keys = (
        (0 if state.marked else 1, VERDICT_ORDER.get(d.verdict, 9) if d else 9, name),
        (name, state.port),
        (state.port, name),
        (endpoint, name),
        (STATUS_RANK.get(best.status, 9) if best else 9, name),
        (best.latency_ms if best is not None and best.latency_ms is not None else float("inf"), name),
        (answer, name),
        (VERDICT_ORDER.get(d.verdict, 9) if d else 9, name),
        (recovery, name),
    )
    haystack = " ".join(
        (
            vm.name,
            vm.resource_group,
            vm.location,
            vm.os_type,
            str(state.port),
            *vm.public_ips,
            *vm.private_ips,
            vm.fqdn or "",
            status,
            answer,
            verdict,
            d.verdict if d else "",
            d.summary if d else "",
            recovery,
        )
    ).lower()
    return Row(state.key, cells, tones, sort_keys, haystack, state)


class ConnectivityTable(FastTable):
    """VM, port, the endpoint that says the most, its status, latency, what answered, the verdict and the recovery."""

    def __init__(self, **kwargs) -> None:
        super().__init__(COLUMNS, fixed_columns=2, empty_text="No VMs.", **kwargs)

    def update_states(self, states: Iterable[PortState]) -> int:
        return self.set_rows(port_row(s) for s in states)

    @property
    def cursor_state(self) -> PortState | None:
        item = self.cursor_item
        return item if isinstance(item, PortState) else None
