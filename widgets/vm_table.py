"""The Inventory table: one row per VM, keyed by resource id."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from sys import intern
from typing import Any

from backend.models import Inventory, Vm
from widgets import fmt
from widgets.fast_table import Column, FastTable, Row, sort_text

STATE_ORDER = {"!": 0, "~": 1, " ": 2}
HEALTH_ORDER = {"Unavailable": 0, "Degraded": 1, "Unknown": 2, "Available": 3}

COLUMNS = (
    # priority: what goes first when the terminal is narrow (80 columns keeps the states)
    Column("marker", "", min_width=1, max_width=1),
    Column("name", "NAME", min_width=19, max_width=28, shrink=True),
    Column("verdict", "VERDICT", min_width=9, max_width=18, shrink=True),
    Column("group", "GROUP", min_width=10, max_width=24, shrink=True, priority=3),
    Column("subscription", "SUBSCRIPTION", min_width=12, max_width=24, shrink=True, priority=5),
    Column("location", "LOCATION", min_width=10, max_width=16, shrink=True, priority=4),
    Column("size", "SIZE", min_width=8, max_width=18, shrink=True, priority=6),
    Column("power", "POWER", min_width=8, max_width=14),
    Column("health", "HEALTH", min_width=8, max_width=12),
    Column("sla", "SLA", min_width=4, max_width=10, priority=2),
    Column("public_ip", "PUBLIC IP", min_width=9, max_width=20, priority=1),
    Column("agent", "AGENT", min_width=5, max_width=10, priority=1),
)


def subscription_names(inventory: Inventory | None) -> dict[str, str]:
    if inventory is None:
        return {}
    return {s.subscription_id.lower(): s.display_name for s in inventory.subscriptions}


# The verdict's tone by its attention rank (backend.verdict.KINDS).
VERDICT_TONES = {
    "platform-incident": "bad",
    "not-booting": "bad",
    "platform-unhealthy": "bad",
    "blocked-by-nsg": "bad",
    "guest-firewall": "bad",
    "guest-service-down": "bad",
    "guest-unresponsive": "bad",
    "agent-not-ready": "warn",
    "ip-changed": "warn",
    "no-public-path": "muted",
    "maintenance-pending": "warn",
    "starting": "accent",
    "stopped": "warn",
    "unknown": "muted",
    "reachable": "ok",
}


def verdict_cell(verdict: Any) -> tuple[str, str | None, tuple[int, int]]:
    """(text, tone, sort rank) of a VM's verdict: its label, and 'healed' after a platform restart."""
    if verdict is None:
        return "-", "muted", (99, 0)
    text = verdict.label + (" ↻" if verdict.healed_at else "")  # ↻: restarted by the platform (service healing)
    return text, VERDICT_TONES.get(verdict.id), (verdict.rank, 0 if verdict.healed_at else 1)


def vm_row(vm: Vm, subscription_name: str | None = None, verdict: Any = None, pending: bool = False) -> Row:
    """`pending`: the VM's instance view is still being read; its agent cell shows "…" until then."""
    mark, mark_tone = fmt.marker(vm)
    verdict_text, verdict_tone, verdict_rank = verdict_cell(verdict)
    power, power_tone = fmt.power_cell(vm)
    health, health_tone = fmt.health_cell(vm)
    agent, agent_tone = fmt.agent_cell(vm, pending)
    sla, sla_tone = fmt.sla_cell(vm)
    sub = subscription_name or vm.subscription_id
    public_ips = vm.public_ips  # a property that walks the NICs: read it once
    public_ip = fmt.public_ip_cell(vm, public_ips)
    cells = (mark, vm.name, verdict_text, vm.resource_group, sub, vm.location, fmt.short_size(vm.size), power, health, sla, public_ip, agent)
    tones = (mark_tone, None, verdict_tone, None, "muted", None, None, power_tone, health_tone, sla_tone, None if public_ip != "-" else "muted", agent_tone)
    name = vm.name.lower()
    sort_keys = (
        (STATE_ORDER.get(mark, 3), name),
        name,
        (verdict_rank, name),
        (intern(vm.resource_group.lower()), name),  # shared by the group's VMs: one string, not one per row
        (intern(sub.lower()), name),
        (vm.location, name),
        (intern(vm.size.lower()), name),
        (power, name),
        (HEALTH_ORDER.get(vm.availability_state, 2), name),
        (sla, name),
        (sort_text(public_ip), name),
        (agent, name),
    )
    haystack = " ".join(
        (
            vm.name,
            vm.resource_group,
            sub,
            vm.subscription_id,
            vm.location,
            *public_ips,
            *vm.private_ips,
            vm.fqdn or "",
            vm.power_state,
            vm.availability_state,
            agent,
            verdict_text,
            verdict.id if verdict is not None else "",
        )
    ).lower()
    return Row(vm.id.lower(), cells, tones, sort_keys, haystack, vm)


class VmTable(FastTable):
    """Every VM with name, verdict, group, subscription, location, size, power, health, SLA shape, public IP and agent."""

    def __init__(self, *, sort_column: str = "verdict", empty_text: str = "Loading inventory…", **kwargs) -> None:
        super().__init__(COLUMNS, fixed_columns=2, sort_column=sort_column, empty_text=empty_text, **kwargs)

    def update_vms(
        self, vms: Iterable[Vm], names: Mapping[str, str] | None = None, verdict: Callable[[Vm], Any] | None = None, pending: frozenset[str] = frozenset()
    ) -> int:
        """Update rows by key (resource id); cursor, filter and sort stay. `verdict(vm)` gives each VM's verdict;
        `pending` holds the lower-case ids of the VMs whose instance view is still being read."""
        names = names or {}
        return self.set_rows(vm_row(vm, names.get(vm.subscription_id.lower()), verdict(vm) if verdict else None, vm.id.lower() in pending) for vm in vms)

    @property
    def cursor_vm(self) -> Vm | None:
        return self.cursor_item
