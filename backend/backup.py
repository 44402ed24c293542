"""Azure Backup protection of the estate's VMs, read from Recovery Services.

One read per subscription: its Recovery Services vaults (one list), then for each
vault its protected Azure VMs and its VM backup policies (two lists): O(vaults)
requests, however many VMs there are. A VM is *protected* when a vault lists it
as a protected item (``virtualMachineId``), whatever its protection state.

How old a backup may be: a policy that runs every ``period`` (hourly policies:
their interval; daily: 24 h; weekly: 7 days) allows the last good backup (the
item's ``lastRecoveryPoint``, else its ``lastBackupTime`` when that backup
completed) to be ``period`` plus a grace of a quarter of it (at least two hours:
Azure starts a scheduled VM backup up to two hours after its time, and the
snapshot phase takes a while). Older than that, or never backed up, it is
*stale*. An item whose policy cannot be read is held to a day.

Everything here is built from wire documents whose strings are made safe first
(``safe_json``): tenant names and Azure's messages are hostile until then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.mapping import parse_time
from backend.safetext import safe_json

DAY = timedelta(days=1)
MIN_GRACE = timedelta(hours=2)
DEFAULT_PERIOD = DAY  # an item whose policy is not known is held to a daily backup
# Protection states that mean no scheduled backup is being taken.
STOPPED_STATES = ("protectionstopped", "protectionpaused", "protectionerror", "invalid")
# The VM backup workload filter (Recovery Services' own spelling).
VM_ITEMS_FILTER = "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"
VM_POLICIES_FILTER = "backupManagementType eq 'AzureIaasVM'"


def _props(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (doc or {}).get("properties") or {}


def _utc(value: Any) -> datetime | None:
    when = parse_time(value)
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


@dataclass(frozen=True)
class BackupPolicy:
    """What a VM backup policy promises: how often, at what time."""

    id: str
    name: str
    period: timedelta | None  # None: not a schedule aztriage understands
    schedule: str  # in words: "daily at 02:00 UTC", "every 4 hours from 08:00", "weekly on Sunday at 23:00"

    @property
    def allowed_age(self) -> timedelta:
        period = self.period or DEFAULT_PERIOD
        return period + max(MIN_GRACE, period / 4)


def _times(values: Iterable[Any]) -> str:
    out = []
    for value in values or ():
        when = _utc(value)
        if when is not None:
            out.append(when.strftime("%H:%M"))
    return ", ".join(out)


def policy_from(doc: Mapping[str, Any]) -> BackupPolicy:
    """A policy document (AzureIaasVM: SimpleSchedulePolicy or SimpleSchedulePolicyV2) in aztriage's terms."""
    props = _props(doc)
    zone = props.get("timeZone") or "UTC"
    schedule = props.get("schedulePolicy") or {}
    frequency = str(schedule.get("scheduleRunFrequency") or "").lower()
    period: timedelta | None = None
    words = "a schedule aztriage does not read"
    if frequency == "hourly":
        hourly = schedule.get("hourlySchedule") or {}
        interval = int(hourly.get("interval") or 4)
        period = timedelta(hours=interval)
        start = _times([hourly.get("scheduleWindowStartTime")])
        words = f"every {interval} hours" + (f" from {start} {zone}" if start else "")
    elif frequency == "daily":
        period = DAY
        times = _times(schedule.get("scheduleRunTimes") or (schedule.get("dailySchedule") or {}).get("scheduleRunTimes") or ())
        words = "daily" + (f" at {times} {zone}" if times else "")
    elif frequency == "weekly":
        period = 7 * DAY
        weekly = schedule.get("weeklySchedule") or {}
        days = schedule.get("scheduleRunDays") or weekly.get("scheduleWeekDays") or ()
        times = _times(schedule.get("scheduleRunTimes") or weekly.get("scheduleRunTimes") or ())
        words = "weekly" + (f" on {', '.join(str(d) for d in days)}" if days else "") + (f" at {times} {zone}" if times else "")
    return BackupPolicy(id=str(doc.get("id") or ""), name=str(doc.get("name") or ""), period=period, schedule=words)


@dataclass(frozen=True)
class BackupItem:
    """One VM as a Recovery Services vault protects it."""

    vm_id: str
    vault: str
    vault_id: str
    item_id: str  # the protected item: .../backupFabrics/Azure/protectionContainers/{c}/protectedItems/{i}
    container: str
    item: str
    policy: str
    schedule: str
    allowed_age: timedelta
    protection_state: str  # Protected, IRPending, ProtectionStopped, ProtectionPaused, ProtectionError
    health: str  # Passed, ActionRequired, ActionSuggested, Invalid
    last_backup_status: str  # Completed, Failed, ...
    last_backup_time: datetime | None
    last_recovery_point: datetime | None

    @property
    def resource_group(self) -> str:
        parts = self.vault_id.split("/")
        lower = [p.lower() for p in parts]
        return parts[lower.index("resourcegroups") + 1] if "resourcegroups" in lower else ""

    @property
    def last_good(self) -> datetime | None:
        """When the newest usable backup was taken."""
        if self.last_recovery_point is not None:
            return self.last_recovery_point
        if self.last_backup_status.lower() in ("completed", "healthy", "completedwithwarnings"):
            return self.last_backup_time
        return None

    @property
    def stopped(self) -> bool:
        return self.protection_state.lower() in STOPPED_STATES

    def stale(self, now: datetime) -> bool:
        """The last good backup is older than the policy allows (or there is none yet)."""
        good = self.last_good
        if good is None:
            return self.protection_state.lower() != "irpending"  # the first backup is still to come
        return now - good > self.allowed_age

    def last_backup(self, now: datetime) -> str:
        """The last attempt in words: "Completed 21 h ago", "Failed 22 h ago", "never"."""
        if self.last_backup_time is None:
            return "never"
        return f"{self.last_backup_status or 'unknown'} {age(now - self.last_backup_time)} ago"

    def problems(self, now: datetime) -> list[str]:
        """What is wrong with this VM's protection, in words (empty: nothing)."""
        out = []
        if self.stopped:
            out.append(f"protection is {self.protection_state} in vault {self.vault}: no scheduled backup is taken")
        good = self.last_good
        if self.stale(now):
            if good is None:
                out.append(f"it has no good backup yet (last backup {self.last_backup_status or 'never'})")
            else:
                out.append(f"its last good backup is {age(now - good)} old, more than policy {self.policy} ({self.schedule}) allows ({age(self.allowed_age)})")
        if self.last_backup_status.lower() == "failed" and not (good is None and self.stale(now)):
            out.append(f"its last backup failed ({self.last_backup(now)})")
        if self.health.lower() in ("actionrequired", "actionsuggested") and not out:
            out.append(f"Azure Backup reports its health as {self.health}")
        return out

    def describe(self, now: datetime) -> str:
        """One line: where, policy, how old the last good backup is (ages, not times: a report
        reads the same whichever clock it was made on)."""
        good = self.last_good
        last = f"last good backup {age(now - good)} ago" if good else "no good backup yet"
        return f"vault {self.vault}, policy {self.policy} ({self.schedule}), {last}"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "protected": True,
            "vault": self.vault,
            "vault_id": self.vault_id,
            "item_id": self.item_id,
            "policy": self.policy,
            "schedule": self.schedule,
            "protection_state": self.protection_state,
            "health": self.health,
            "last_backup_status": self.last_backup_status,
            "last_backup_time": _iso(self.last_backup_time),
            "last_recovery_point": _iso(self.last_recovery_point),
            "allowed_age_hours": round(self.allowed_age.total_seconds() / 3600, 1),
            "stale": self.stale(now),
            "problems": self.problems(now),
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def age(delta: timedelta) -> str:
    """'21 h' under two days, else '3 days'."""
    hours = delta.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


def item_from(vault: Mapping[str, Any], doc: Mapping[str, Any], policies: Mapping[str, BackupPolicy]) -> BackupItem | None:
    """A protected item document of a vault, or None when it is not an Azure VM."""
    props = _props(doc)
    vm_id = str(props.get("virtualMachineId") or props.get("sourceResourceId") or "")
    if "/microsoft.compute/virtualmachines/" not in vm_id.lower():
        return None
    item_id = str(doc.get("id") or "")
    parts = item_id.split("/")
    lower = [p.lower() for p in parts]
    container = parts[lower.index("protectioncontainers") + 1] if "protectioncontainers" in lower else str(props.get("containerName") or "")
    policy_id = str(props.get("policyId") or "")
    policy = policies.get(policy_id.lower())
    return BackupItem(
        vm_id=vm_id,
        vault=str(vault.get("name") or ""),
        vault_id=str(vault.get("id") or ""),
        item_id=item_id,
        container=container,
        item=str(doc.get("name") or ""),
        policy=str(props.get("policyName") or (policy.name if policy else policy_id.rsplit("/", 1)[-1]) or "none"),
        schedule=policy.schedule if policy else "policy not read",
        allowed_age=policy.allowed_age if policy else DEFAULT_PERIOD + max(MIN_GRACE, DEFAULT_PERIOD / 4),
        protection_state=str(props.get("protectionState") or ""),
        health=str(props.get("healthStatus") or ""),
        last_backup_status=str(props.get("lastBackupStatus") or ""),
        last_backup_time=_utc(props.get("lastBackupTime")),
        last_recovery_point=_utc(props.get("lastRecoveryPoint")),
    )


@dataclass(frozen=True)
class BackupBook:
    """The protection of every VM of the subscriptions read: lower-case VM id -> its item.
    A VM of a subscription in ``read`` without an item is not protected; a VM of a
    subscription in ``errors`` (or not read at all) is not known."""

    items: Mapping[str, BackupItem] = field(default_factory=dict)
    read: frozenset[str] = frozenset()  # lower-case subscription ids whose vaults were all read
    errors: Mapping[str, str] = field(default_factory=dict)  # lower-case subscription id -> why not
    vaults: int = 0
    read_at: datetime | None = None  # when it was read: ages are measured from here

    def known(self, vm_id: str) -> bool:
        sub = vm_id.split("/")[2].lower() if vm_id.count("/") > 2 else ""
        return sub in self.read

    def item(self, vm_id: str) -> BackupItem | None:
        return self.items.get(vm_id.lower())

    def merged(self, other: BackupBook) -> BackupBook:
        return BackupBook(
            items={**self.items, **other.items},
            read=self.read | other.read,
            errors={**{k: v for k, v in self.errors.items() if k not in other.read}, **other.errors},
            vaults=self.vaults + other.vaults,
            read_at=max((t for t in (self.read_at, other.read_at) if t is not None), default=None),
        )


def subscription_book(subscription_id: str, vaults: list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]) -> BackupBook:
    """One subscription's book from (vault, protected items, policies) wire documents, read in full."""
    items: dict[str, BackupItem] = {}
    for vault, item_docs, policy_docs in vaults:
        vault = safe_json(vault)
        policies = {}
        for doc in policy_docs:
            policy = policy_from(safe_json(doc))
            policies[policy.id.lower()] = policy
        for doc in item_docs:
            item = item_from(vault, safe_json(doc), policies)
            if item is None:
                continue
            seen = items.get(item.vm_id.lower())
            # A VM protected in two vaults (a stopped old one, a new one): the one still protecting wins.
            if seen is None or (seen.stopped and not item.stopped):
                items[item.vm_id.lower()] = item
    return BackupBook(items=items, read=frozenset({subscription_id.lower()}), vaults=len(vaults), read_at=datetime.now(UTC))


def vm_backup_json(book: BackupBook | None, vm_id: str, now: datetime) -> dict[str, Any]:
    """A VM's protection for JSON output: protected (with its item), not protected, or unknown (why)."""
    if book is None:
        return {"protected": None, "reason": "Azure Backup was not read"}
    item = book.item(vm_id)
    if item is not None:
        return item.to_json(now)
    if book.known(vm_id):
        return {"protected": False}
    sub = vm_id.split("/")[2].lower() if vm_id.count("/") > 2 else ""
    return {"protected": None, "reason": book.errors.get(sub, "its subscription's vaults were not read")}
