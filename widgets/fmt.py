"""How states, times and sizes read on screen: text first (readable in
monochrome, upper case marks a bad state), a tone for colour second."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from backend.models import Vm

TRANSITIONS = ("starting", "stopping", "deallocating", "restarting", "updating", "creating", "deleting")


def power_cell(vm: Vm) -> tuple[str, str | None]:
    power = vm.power_state or "unknown"
    if power == "running":
        return "running", "ok"
    if power in TRANSITIONS:
        return power.upper() + "…", "warn"
    if power in ("stopped", "deallocated"):
        return power.upper(), "bad"
    return power.upper(), "warn"


def health_cell(vm: Vm) -> tuple[str, str | None]:
    state = vm.availability_state
    if state == "Available":
        return "Available", "ok"
    if state == "Unavailable":
        return "UNAVAILABLE", "bad"
    if state == "Degraded":
        return "DEGRADED", "warn"
    return state.upper(), "muted"


# The cell of a fact from the VM's instance view while that view is still being read.
PENDING = "…"


def agent_cell(vm: Vm, pending: bool = False) -> tuple[str, str | None]:
    """`pending`: the VM's instance view is still being read (the first load, as it comes)."""
    if pending and not vm.instance_view_read:
        return PENDING, "muted"
    if vm.agent_status == "Ready":
        return "ready", "ok"
    if vm.power_state != "running":
        # A stopped VM has no running agent: not news.
        return "-", "muted"
    if vm.agent_status == "Not Ready":
        return "NOT READY", "bad"
    # Unknown: the list call did not say; not an alarm by itself.
    return vm.agent_status.lower(), "muted"


def sla_cell(vm: Vm) -> tuple[str, str | None]:
    shape = vm.sla_shape
    return shape, ("warn" if shape == "none" else None)


def marker(vm: Vm) -> tuple[str, str | None]:
    """One character that flags a VM needing attention: '!' broken, '~' watch, ' ' fine."""
    if (
        vm.availability_state == "Unavailable"
        or vm.power_state in ("stopped", "deallocated")
        or (vm.power_state == "running" and vm.agent_status == "Not Ready")
    ):
        return "!", "bad"
    if vm.availability_state != "Available" or vm.power_state != "running" or vm.maintenance.pending:
        return "~", "warn"
    return " ", None


def public_ip_cell(vm: Vm, ips: tuple[str, ...] | None = None) -> str:
    ips = vm.public_ips if ips is None else ips
    if not ips:
        return "-"
    return ips[0] + (f" +{len(ips) - 1}" if len(ips) > 1 else "")


def short_size(size: str) -> str:
    return size.removeprefix("Standard_")


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def when(value: datetime | None) -> str:
    """An absolute UTC time, the same on every operator's screen in an incident bridge."""
    value = utc(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def clock(value: datetime | None) -> str:
    value = utc(value)
    return value.astimezone(UTC).strftime("%H:%M:%S UTC") if value else "-"


def ago(value: datetime | None, now: datetime) -> str:
    """'3h 05m ago' / 'in 2d 4h' relative to the app's clock."""
    value = utc(value)
    if value is None:
        return "-"
    seconds = int((utc(now) - value).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    elif minutes:
        text = f"{minutes}m"
    else:
        text = "now" if seconds < 30 else "<1m"
    if text == "now":
        return text
    return f"in {text}" if future else f"{text} ago"
