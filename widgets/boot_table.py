"""The Boot pane's table: one row per VM with where its boot diagnostics go
and, once read, what its serial log says about the last boot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backend.models import BootDiagnosticsData, Vm
from widgets import fmt
from widgets.fast_table import Column, FastTable, Row

if TYPE_CHECKING:
    from backend.bootdiag import BootVerdict

COLUMNS = (
    Column("marker", "", min_width=1, max_width=1),
    Column("name", "NAME", min_width=16, max_width=28, shrink=True),
    Column("os", "OS", min_width=7, max_width=7, priority=3),
    Column("power", "POWER", min_width=8, max_width=12),
    Column("diagnostics", "BOOT DIAG", min_width=9, max_width=22, shrink=True, priority=2),
    Column("verdict", "LAST BOOT", min_width=26, max_width=40, shrink=True),
    Column("recovery", "RECOVERY", min_width=8, max_width=14, priority=1),
)

VERDICT_ORDER = {"bad": 0, "warn": 1, "muted": 3, "ok": 4, None: 2}


@dataclass
class BootState:
    """What is known about one VM's boot diagnostics in this session."""

    vm: Vm
    data: BootDiagnosticsData | None = None
    verdict: BootVerdict | None = None
    lines: list[str] = field(default_factory=list)  # the serial log as shown (backend.bootdiag.clean_lines)
    error: str = ""
    off: bool = False  # boot diagnostics are disabled
    fetching: bool = False
    vm_verdict: Any = None  # the VM's verdict (backend.verdict) when the pane knows it: it decides the recovery

    @property
    def recommended(self) -> str | None:
        if self.off or not self.vm.boot_diagnostics.enabled:
            return "enable-boot-diagnostics"
        if self.vm_verdict is not None:
            return self.vm_verdict.scenario
        return self.verdict.recommended_scenario if self.verdict is not None else None


def diagnostics_cell(vm: Vm) -> tuple[str, str | None]:
    boot = vm.boot_diagnostics
    if not boot.enabled:
        return "OFF", "warn"
    if boot.managed_storage:
        return "managed", None
    from urllib.parse import urlparse

    return (urlparse(boot.storage_uri or "").hostname or "storage").split(".", 1)[0], None


def verdict_cell(state: BootState) -> tuple[str, str | None]:
    if state.fetching:
        return "reading…", "accent"
    if state.off or not state.vm.boot_diagnostics.enabled:
        return "no log (off)", "muted"
    if state.error:
        return "ERROR: " + state.error, "warn"
    verdict = state.verdict
    if verdict is None:
        return "-", "muted"
    if verdict.line_count == 0:
        return "empty log", "muted"
    primary = verdict.primary
    if primary is not None and primary.signature.blocks_boot:
        return "NO BOOT: " + primary.signature.title, "bad"
    if primary is not None:
        return primary.signature.title, "warn"
    if verdict.booted:
        return "booted", "ok"
    return "no login prompt", "warn"


def boot_row(state: BootState) -> Row:
    vm = state.vm
    power, power_tone = fmt.power_cell(vm)
    diag, diag_tone = diagnostics_cell(vm)
    verdict, verdict_tone = verdict_cell(state)
    recovery = state.recommended or "-"
    marker = "!" if verdict_tone == "bad" else ("~" if verdict_tone == "warn" or diag == "OFF" else " ")
    cells = (marker, vm.name, vm.os_type, power, diag, verdict, recovery)
    tones = (
        "bad" if marker == "!" else "warn" if marker == "~" else None,
        None,
        None,
        power_tone,
        diag_tone,
        verdict_tone,
        "accent" if recovery != "-" else "muted",
    )
    name = vm.name.lower()
    sort_keys = (
        ({"!": 0, "~": 1}.get(marker, 2), name),
        name,
        (vm.os_type, name),
        (power, name),
        (diag, name),
        (VERDICT_ORDER.get(verdict_tone, 2), verdict, name),
        (recovery, name),
    )
    haystack = " ".join((vm.name, vm.resource_group, vm.os_type, vm.location, power, diag, verdict, recovery, vm.power_state)).lower()
    return Row(vm.id.lower(), cells, tones, sort_keys, haystack, state)


class BootTable(FastTable):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(COLUMNS, fixed_columns=2, sort_column="marker", empty_text="Loading inventory…", **kwargs)

    def update_states(self, states: Iterable[BootState]) -> int:
        return self.set_rows(boot_row(s) for s in states)

    @property
    def cursor_state(self) -> BootState | None:
        return self.cursor_item
