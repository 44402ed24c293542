"""The high-availability checklist: the runbook's "Check List for Higher
Availability", brought up to date with the virtual-machine recommendations of
Azure's Proactive Resiliency Library (APRL v2), evaluated over a whole
inventory at once.

Every rule is a pure function ``(Inventory, CheckContext) -> Iterable[Finding]``.
Facts the inventory does not carry come in through ``CheckContext``:
regional compute usage (the ``Quota`` capability of ``backend.adapter``), Azure Backup protection
(the ``BackupProtection`` capability: Recovery Services vaults, ``backend.backup``) and the role settings. A rule whose input is missing
is reported as *not checked* with the reason; it never guesses.

Scoring (documented here because operators will ask):

- each finding costs points by severity: high 10, medium 5, low 2, info 0;
- a VM's score is ``100 - the points of its findings``, never below 0;
- a subscription's score is the mean score of its VMs, less the points of its
  subscription-wide findings (regional quota), never below 0; a subscription
  without VMs starts at 100;
- the estate's score is the mean score of all VMs less the points of all
  subscription-wide findings, never below 0;
- per rule: how many findings, how many VMs, and the points lost.

"Not checked" costs nothing and is listed separately, so a score is never
raised or lowered by something nobody looked at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from backend import regions, sizes
from backend.adapter import CheckBackend
from backend.backup import BackupBook
from backend.escape import md_inline
from backend.instance_views import choose
from backend.models import Inventory, Vm, id_name, named_fields
from backend.retirements import RETIREMENTS
from backend.settings import DEFAULT_INSTANCE_VIEWS
from backend.shellcmd import sh
from backend.verdict import maintenance_window

SEVERITIES = ("high", "medium", "low", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
SEVERITY_POINTS = {"high": 10, "medium": 5, "low": 2, "info": 0}
DEFAULT_QUOTA_THRESHOLD = 0.8  # share of a vCPU limit in use that raises a finding
HIGH_QUOTA_THRESHOLD = 0.95  # ... and that makes it high
DEFAULT_ROLE_TAG = "role"
# Instance views (agent, maintenance, domains) cost one request per VM: read at most this many per check.
DEFAULT_INSTANCE_VIEW_LIMIT = DEFAULT_INSTANCE_VIEWS

# Premium SSD (v1 and v2) and Ultra: what the single-instance VM SLA requires.
PREMIUM_SKUS = ("premium_lrs", "premium_zrs", "premiumv2_lrs", "ultrassd_lrs")


# A finding's JSON object, in this order (`aztriage check --format json`).
_FINDING_KEYS = ("vm_id", "vm", "rule", "severity", "evidence", "fix", "title", "subscription_id", "resource_group", "location")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    title: str
    evidence: str
    fix: str
    subscription_id: str
    vm_id: str | None = None  # None: the finding is about a subscription and region (quota)
    vm: str | None = None
    resource_group: str = ""
    location: str = ""

    @property
    def points(self) -> int:
        return SEVERITY_POINTS[self.severity]

    def to_json(self) -> dict[str, Any]:
        return named_fields(self, _FINDING_KEYS)


@dataclass(frozen=True)
class NotChecked:
    rule: str
    scope: str  # "estate", or "subscription S in REGION"
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "scope": self.scope, "reason": self.reason}


@dataclass(frozen=True)
class ComputeUsage:
    """One row of the compute usage API (Microsoft.Compute/locations/{loc}/usages)."""

    name: str  # "cores", "standardDSv3Family", "virtualMachines", ...
    display_name: str  # "Total Regional vCPUs"
    current: int
    limit: int
    unit: str = "Count"

    @property
    def share(self) -> float:
        return self.current / self.limit if self.limit > 0 else (1.0 if self.current > 0 else 0.0)

    @property
    def is_vcpu(self) -> bool:
        name = self.name.lower()
        return name == "cores" or name.endswith("family")


# Dev and Spot VMs are not ranked with production: each finding on a VM that is not production
# is one severity lower (high -> medium -> low -> info) and says why. A VM is not production when
# it is a Spot VM (Azure may evict it at any time), when its environment tag (``environment`` or
# ``env``) or its role tag (``role_tag``) has one of NONPROD_VALUES, or, without an environment
# tag, when its name matches ``nonprod_pattern`` (config; DEFAULT_NONPROD_PATTERN otherwise).
ENVIRONMENT_TAGS = ("environment", "env")
NONPROD_VALUES = frozenset(
    {"dev", "development", "test", "testing", "qa", "uat", "staging", "stage", "sandbox", "sbx", "lab", "demo", "poc", "nonprod", "non-prod"}
)
DEFAULT_NONPROD_PATTERN = r"(^|[-_.])(dev|test|tst|qa|uat|sbx|sandbox|lab)([-_.]|\d|$)"
LOWER_SEVERITY = {"high": "medium", "medium": "low", "low": "info", "info": "info"}


@dataclass(frozen=True)
class RoleSettings:
    """How VMs of one role are recognised: a tag (value = role), else a name pattern.

    The pattern is a regular expression matched against the VM name; its group
    named ``role`` (or its first group, or the whole match) is the role.
    ``nonprod_pattern`` picks out dev/test VMs by name (see ENVIRONMENT_TAGS above).
    """

    tag: str | None = DEFAULT_ROLE_TAG
    pattern: str | None = None
    nonprod_pattern: str | None = DEFAULT_NONPROD_PATTERN

    def __post_init__(self) -> None:
        for what, value in (("role pattern", self.pattern), ("non-production pattern", self.nonprod_pattern)):
            if value:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"{what} {value!r} is not a valid regular expression: {exc}") from None

    def nonprod(self, vm: Vm) -> str | None:
        """Why the VM is not ranked with production, or None when it is."""
        if (vm.priority or "").lower() == "spot":
            return "Spot VM"
        environment_tagged = False
        for key, value in vm.tags:
            low = key.lower()
            if low in ENVIRONMENT_TAGS or (self.tag and low == self.tag.lower()):
                if value.strip().lower() in NONPROD_VALUES:
                    return f"tag {key}={value.strip()}"
                environment_tagged = environment_tagged or (low in ENVIRONMENT_TAGS and bool(value.strip()))
        if not environment_tagged and self.nonprod_pattern and re.search(self.nonprod_pattern, vm.name, re.IGNORECASE):
            return "a dev/test name"
        return None

    def role_of(self, vm: Vm) -> tuple[str, str] | None:
        """(role, how it was found) or None."""
        if self.tag:
            want = self.tag.lower()
            for key, value in vm.tags:
                if key.lower() == want and value.strip():
                    return value.strip().lower(), f"tag {key}={value}"
        if self.pattern:
            m = re.search(self.pattern, vm.name, re.IGNORECASE)
            if m:
                role = m.groupdict().get("role") or (m.group(1) if m.re.groups else m.group(0))
                if role:
                    return role.lower(), f"name pattern {self.pattern}"
        return None


UsageKey = tuple[str, str]  # (subscription id lower, region normalised)


@dataclass(frozen=True)
class CheckContext:
    roles: RoleSettings = RoleSettings()
    # None: usage was not read at all. Otherwise per (subscription, region) the rows,
    # and in usage_errors the regions whose read failed (reason as one sentence).
    usages: Mapping[UsageKey, tuple[ComputeUsage, ...]] | None = None
    usage_errors: Mapping[UsageKey, str] = field(default_factory=dict)
    # None: Azure Backup was not read. Otherwise every VM protected in a vault of the subscriptions
    # read (book.read); a subscription whose vaults could not be read is in book.errors.
    backup: BackupBook | None = None
    backup_unavailable_reason: str = "Azure Backup (Recovery Services vaults) was not read; check protection in the portal or with 'az backup item list'"
    quota_threshold: float = DEFAULT_QUOTA_THRESHOLD
    # The VM agent, planned maintenance and fault/update domains live in each VM's
    # instance view. None: the inventory's VMs carry them (hand-built inventories).
    # Otherwise the lower-case ids of the VMs whose instance view was read.
    views_read: frozenset[str] | None = None
    views_not_read_reason: str = "their instance view was not read"

    def view_known(self, vm: Vm) -> bool:
        return self.views_read is None or vm.id.lower() in self.views_read


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str  # the usual severity; a rule may raise or lower it per finding
    source: str
    check: Callable[[Inventory, CheckContext], Iterable[Finding]]
    # Returns the reasons the rule could not be evaluated (empty: it was).
    not_checked: Callable[[Inventory, CheckContext], Iterable[NotChecked]] | None = None


def _finding(rule: Rule | str, vm: Vm, evidence: str, fix: str, severity: str | None = None) -> Finding:
    r = RULES_BY_ID[rule] if isinstance(rule, str) else rule
    return Finding(
        rule=r.id,
        severity=severity or r.severity,
        title=r.title,
        evidence=evidence,
        fix=fix,
        subscription_id=vm.subscription_id,
        vm_id=vm.id,
        vm=vm.name,
        resource_group=vm.resource_group,
        location=vm.location,
    )


def _names(names: Iterable[str], limit: int = 5) -> str:
    """'a, b, c' or 'a, b, c, d, e and 7 more': evidence stays readable in a big estate."""
    ordered = sorted(names)
    if len(ordered) <= limit:
        return ", ".join(ordered)
    return ", ".join(ordered[:limit]) + f" and {len(ordered) - limit} more"


def _now(inv: Inventory) -> datetime:
    """The time the checks judge by: when the inventory was read (this moment, for one never read)."""
    return inv.fetched_at or datetime.now(UTC)


def _az(vm: Vm) -> str:
    return f"-g {vm.resource_group} -n {vm.name}"


def _set_members(inv: Inventory) -> dict[str, list[Vm]]:
    members: dict[str, list[Vm]] = defaultdict(list)
    for vm in inv.vms:
        if vm.availability_set:
            members[vm.availability_set.lower()].append(vm)
    return members


def _set_size(inv: Inventory, set_id: str, members: Mapping[str, list[Vm]]) -> int:
    doc = inv.availability_sets.get(set_id.lower())
    listed = ((doc or {}).get("properties") or {}).get("virtualMachines")
    if listed is not None:
        return max(len(listed), len(members.get(set_id.lower(), ())))
    return len(members.get(set_id.lower(), ()))


def _set_name(inv: Inventory, set_id: str, vm: Vm) -> str:
    """The set's own spelling of its name (a VM's reference is often upper case)."""
    doc = inv.availability_sets.get(set_id.lower()) or {}
    return doc.get("name") or id_name(vm.availability_set)


def is_single_instance(vm: Vm, inv: Inventory, members: Mapping[str, list[Vm]] | None = None) -> bool:
    """Not in a zone, not in a scale set, and not in an availability set with two or more VMs."""
    if vm.zones or vm.vmss_id:
        return False
    if vm.availability_set:
        return _set_size(inv, vm.availability_set, members if members is not None else _set_members(inv)) < 2
    return True


# --- the rules -------------------------------------------------------------------


def check_no_redundancy(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        if vm.zones or vm.availability_set or vm.vmss_id:
            continue
        where = "an availability zone" if regions.offers_zones(vm.location) else "an availability zone (where the region has them) or an availability set"
        yield _finding(
            "no-zone-or-set",
            vm,
            f"{vm.name} is in no availability zone, availability set or scale set in {vm.location}: a host failure or maintenance takes the service down",
            f"Run the service on two or more VMs in {where}; a VM cannot be moved into a zone or set in place: "
            + (
                f"'{sh('aztriage', 'recover', '--vm', vm.name, '--scenario', 'move-to-zone', '--zone', 'N')}' recreates it in one from copies of its disks (the originals kept)."
                if regions.offers_zones(vm.location)
                else f"'{sh('aztriage', 'recover', '--vm', vm.name, '--scenario', 'move-to-set', '--availability-set', 'NAME')}' recreates it in one from copies of its disks (the originals kept)."
            ),
        )


def check_single_vm_set(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    members = _set_members(inv)
    for set_id, vms in members.items():
        if _set_size(inv, set_id, members) != 1:
            continue
        vm = vms[0]
        yield _finding(
            "single-vm-set",
            vm,
            f"availability set {_set_name(inv, set_id, vm)} holds only {vm.name}: a set of one VM has no multi-instance SLA",
            f"Add a second VM doing the same work to {_set_name(inv, set_id, vm)} (or move the service to availability zones: "
            f"'{sh('aztriage', 'recover', '--vm', vm.name, '--scenario', 'move-to-zone', '--zone', 'N')}').",
        )


def check_set_domains(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for set_id, vms in _set_members(inv).items():
        if len(vms) < 2:
            continue
        doc = inv.availability_sets.get(set_id) or {}
        props = doc.get("properties") or {}
        set_name = _set_name(inv, set_id, vms[0])
        problems: list[str] = []
        for count_key, domains, what in (
            ("platformFaultDomainCount", [v.platform_fault_domain for v in vms], "fault domain"),
            ("platformUpdateDomainCount", [v.platform_update_domain for v in vms], "update domain"),
        ):
            known = [d for d in domains if d is not None]
            if props.get(count_key) == 1:
                problems.append(f"the set has a single {what} ({count_key} 1)")
            elif len(known) >= 2 and len(set(known)) == 1:
                problems.append(f"{len(known)} of its VMs share {what} {known[0]}")
        if not problems:
            continue
        names = _names(v.name for v in vms)
        for vm in vms:
            yield _finding(
                "set-domains",
                vm,
                f"availability set {set_name} ({names}): " + "; ".join(problems) + " - one rack or one maintenance batch takes them all",
                f"Give {set_name} at least 2 fault and 5 update domains (only possible while it is empty: "
                f"'{sh('aztriage', 'recover', '--vm', vm.name, '--scenario', 'move-to-set', '--availability-set', 'NEW')}' creates a new set with 2 and 5 and recreates the VM in it from copies of its disks), or move to availability zones (move-to-zone).",
            )


def check_disk_sla(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    members = _set_members(inv)
    for vm in inv.vms:
        if not is_single_instance(vm, inv, members):
            continue
        weak = [d for d in vm.disks if d.sku and not d.ephemeral and d.sku.lower() not in PREMIUM_SKUS]
        if not weak:
            continue
        listed = ", ".join(f"{d.name} ({d.sku})" for d in weak)
        yield _finding(
            "single-instance-disks",
            vm,
            f"{vm.name} runs as a single instance and its disks are not all Premium SSD or Ultra: {listed}; the lowest disk sets its SLA (Standard SSD 99.5%, Standard HDD 95% instead of 99.9%)",
            f"Change those disks to Premium SSD (deallocate the VM, then 'az disk update -g {vm.resource_group} -n DISK --sku Premium_LRS'), or run the service on two or more VMs.",
        )


def check_unmanaged_disks(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        vhds = [d for d in vm.disks if not d.managed or (d.vhd_uri and not d.id)]
        if not vhds:
            continue
        listed = ", ".join(f"{d.name} ({d.vhd_uri})" if d.vhd_uri else d.name for d in vhds)
        yield _finding(
            "unmanaged-disks",
            vm,
            f"{vm.name} uses unmanaged VHD disks, {RETIREMENTS['unmanaged-disks'].when(_now(inv).date())} ({RETIREMENTS['unmanaged-disks'].link}): {listed}",
            f"Convert the VM to managed disks: 'az vm deallocate {_az(vm)}' then 'az vm convert {_az(vm)}' (the VM is down during the conversion).",
        )


def check_shared_storage_account(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    by_account: dict[str, dict[str, Vm]] = defaultdict(dict)
    for vm in inv.vms:
        for d in vm.disks:
            account = d.storage_account
            if account:
                by_account[account][vm.id.lower()] = vm
    for account, vms in sorted(by_account.items()):
        if len(vms) < 2:
            continue
        names = _names(v.name for v in vms.values())
        for vm in vms.values():
            yield _finding(
                "shared-storage-account",
                vm,
                f"the VHDs of {len(vms)} VMs ({names}) live in storage account {account}: one point of failure and one throttling limit for all of them",
                "Convert the VMs to managed disks (which removes the shared account); until then spread the VHDs over separate storage accounts.",
            )


def check_lrs_where_zrs(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        if not regions.offers_zones(vm.location):
            continue  # unknown or no zones: ZRS may not exist there, so say nothing
        lrs = [(d, regions.zrs_for(d.sku)) for d in vm.disks if d.managed and not d.ephemeral and regions.zrs_for(d.sku)]
        if not lrs:
            continue
        listed = ", ".join(f"{d.name} ({d.sku})" for d, _ in lrs)
        target = lrs[0][1]
        yield _finding(
            "lrs-where-zrs",
            vm,
            f"{vm.name} keeps disks on locally redundant storage although {vm.location} offers zone-redundant disks: {listed}; a zone outage makes them unavailable",
            f"Move them to zone-redundant storage: deallocate the VM and 'az disk update -g {vm.resource_group} -n DISK --sku {target}' (a zonal disk goes through a snapshot).",
        )


def _lb_of_pool(pool_id: str) -> str:
    low = pool_id.lower()
    idx = low.find("/backendaddresspools/")
    return pool_id[:idx] if idx >= 0 else pool_id


def check_role_load_balancer(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    groups: dict[tuple[str, str, str], list[tuple[Vm, str]]] = defaultdict(list)
    for vm in inv.vms:
        found = ctx.roles.role_of(vm)
        if found:
            role, how = found
            groups[(vm.subscription_id.lower(), regions.normalize(vm.location), role)].append((vm, how))
    for (_, _, role), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        lbs_of: dict[str, set[str]] = {}
        members_of_lb: dict[str, list[str]] = defaultdict(list)
        for vm, _ in members:
            lbs_of[vm.id] = {_lb_of_pool(p).lower() for nic in vm.nics for p in nic.load_balancer_backend_pool_ids}
            for lb in lbs_of[vm.id]:
                members_of_lb[lb].append(vm.name)
        if not members_of_lb:
            continue
        for vm, how in members:
            # A load balancer this VM is not behind holds only its peers.
            missing = {lb: names for lb, names in members_of_lb.items() if lb not in lbs_of[vm.id]}
            if not missing:
                continue
            lb, names = max(missing.items(), key=lambda kv: len(kv[1]))
            lb_doc = inv.load_balancers.get(lb)
            lb_name = lb_doc.name if lb_doc else id_name(lb)
            yield _finding(
                "role-not-load-balanced",
                vm,
                f"role {role!r} ({how}): {_names(names)} {'is' if len(names) == 1 else 'are'} behind load balancer {lb_name}, {vm.name} is not in any of its backend pools",
                f"Add the ip configuration of {vm.name}'s NIC to the backend pool of {lb_name} (az network nic ip-config address-pool add --lb-name {lb_name} ...), or correct its role if it does other work.",
            )


def check_boot_diagnostics(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        if vm.boot_diagnostics.enabled:
            continue
        yield _finding(
            "boot-diagnostics-off",
            vm,
            f"boot diagnostics is off on {vm.name}: no screenshot and no serial console during an incident",
            f"Enable it with managed storage: 'az vm boot-diagnostics enable {_az(vm)}' (no restart needed).",
        )


def check_vm_agent(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        if vm.power_state != "running":
            continue  # a stopped VM reports no agent; that says nothing about the agent
        if vm.agent_status == "Ready":
            continue
        if vm.agent_status == "Unknown" and not vm.agent_version:
            if not ctx.view_known(vm):
                continue  # not read, so not known: see agent_not_checked
            state = "reports no VM agent (missing, not installed or not started)"
        else:
            state = f"reports its VM agent as {vm.agent_status!r}" + (f" (version {vm.agent_version})" if vm.agent_version else "")
        guide = "walinuxagent" if vm.os_type.lower() == "linux" else "the Windows Guest Agent (RdAgent, WindowsAzureGuestAgent services)"
        yield _finding(
            "vm-agent-not-ready",
            vm,
            f"{vm.name} is running but {state}: password reset, run command and extensions will fail",
            f"Restore the agent from inside the guest or through the serial console: restart or reinstall {guide}; then check the agent status again.",
        )


def _views_not_checked(rule: str, vms: list[Vm], ctx: CheckContext) -> Iterable[NotChecked]:
    if vms:
        yield NotChecked(rule, f"{len(vms)} VMs ({_names((v.name for v in vms), 3)})", ctx.views_not_read_reason)


def agent_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    unknown = [vm for vm in inv.vms if vm.power_state == "running" and vm.agent_status == "Unknown" and not vm.agent_version and not ctx.view_known(vm)]
    yield from _views_not_checked("vm-agent-not-ready", unknown, ctx)


def maintenance_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    unknown = [vm for vm in inv.vms if vm.power_state != "deallocated" and not vm.maintenance.pending and not ctx.view_known(vm)]
    yield from _views_not_checked("planned-maintenance", unknown, ctx)


def domains_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    findings = {f.vm_id for f in check_set_domains(inv, ctx)}
    for set_id, vms in sorted(_set_members(inv).items()):
        running = [v for v in vms if v.power_state != "deallocated"]
        if len(running) < 2 or any(v.id in findings for v in vms):
            continue
        unknown = [v for v in running if v.platform_fault_domain is None or v.platform_update_domain is None]
        if unknown:
            yield NotChecked(
                "set-domains",
                f"availability set {_set_name(inv, set_id, vms[0])}",
                f"the fault and update domains of {_names((v.name for v in unknown), 3)} are not known ({ctx.views_not_read_reason})",
            )


def check_delete_option(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        risky = [d for d in vm.disks if d.data_loss_risk and not d.ephemeral]
        if not risky:
            continue
        listed = ", ".join(("OS disk " if d.lun is None else f"data disk LUN {d.lun} ") + d.name for d in risky)
        sets = []
        if vm.os_disk in risky:
            sets.append("storageProfile.osDisk.deleteOption=Detach")
        for i, d in enumerate(vm.data_disks):
            if d in risky:
                sets.append(f"storageProfile.dataDisks[{i}].deleteOption=Detach")
        yield _finding(
            "disk-delete-option",
            vm,
            f"deleteOption is Delete on {listed}: deleting {vm.name} deletes these disks and their data",
            f"'az vm update {_az(vm)} --set {' '.join(sets)}'",
        )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "?"


def check_planned_maintenance(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        m = vm.maintenance
        if not m.pending:
            continue
        parts = []
        if m.window_start or m.window_end:
            parts.append(f"self-service window {_when(m.window_start)} to {_when(m.window_end)}")
        if m.maintenance_window_start or m.maintenance_window_end:
            parts.append(f"scheduled window {_when(m.maintenance_window_start)} to {_when(m.maintenance_window_end)}")
        when = "; ".join(parts) or "no window published yet"
        # The verdict's reading of the window, so the checklist and every pane say the same.
        now = _now(inv)
        can_start, window = maintenance_window(vm, now)
        if can_start:
            fix = f"Start it yourself at a quiet time: {window} (scenario perform-maintenance, or 'az vm perform-maintenance {_az(vm)}'; the VM restarts); otherwise Azure does it in the scheduled window."
        elif m.window_end and now > m.window_end:
            fix = f"Plan for the restart in the scheduled window (fail over or drain the VM first): {window}."
        else:
            fix = f"Not yet: {window}. Once Azure allows it, start it yourself (scenario perform-maintenance); otherwise plan for the restart in the scheduled window."
        yield _finding("planned-maintenance", vm, f"planned maintenance is pending on {vm.name}: {when}", fix)


def check_vcpu_quota(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    if ctx.usages is None:
        return
    regions_of: dict[UsageKey, Vm] = {}
    for vm in inv.vms:
        regions_of.setdefault((vm.subscription_id.lower(), regions.normalize(vm.location)), vm)
    r = RULES_BY_ID["vcpu-quota"]
    for key, rows in sorted(ctx.usages.items()):
        sample = regions_of.get(key)
        for row in rows:
            if not row.is_vcpu or row.share < ctx.quota_threshold:
                continue
            severity = "high" if row.share >= HIGH_QUOTA_THRESHOLD else "medium"
            sub, region = key
            name = row.display_name or row.name
            yield Finding(
                rule=r.id,
                severity=severity,
                title=r.title,
                evidence=f"{name} in {sample.location if sample else region}: {row.current} of {row.limit} used ({row.share:.0%}); new, resized or redeployed VMs may fail to allocate",
                fix=f"Request a quota increase for {name} in {region} (portal: Subscriptions > Usage + quotas) before you need to recover or scale.",
                subscription_id=sample.subscription_id if sample else sub,
                location=sample.location if sample else region,
            )


def quota_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    if ctx.usages is None:
        yield NotChecked("vcpu-quota", "estate", "regional compute usage was not read")
        return
    for (sub, region), reason in sorted(ctx.usage_errors.items()):
        yield NotChecked("vcpu-quota", f"subscription {sub} in {region}", reason)


def check_temp_disk(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        if sizes.has_temp_disk(vm.size) is not True:
            continue
        where = sizes.temp_disk_location(vm.os_type)
        yield _finding(
            "temporary-disk",
            vm,
            f"size {vm.size} has a temporary disk ({where}): its contents are lost on redeploy, resize, host failure or deallocation",
            f"Keep no data, databases or tempdb you need on {where}; use it for the page/swap file and scratch only.",
        )


def temp_disk_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    unknown = sorted({vm.size for vm in inv.vms if sizes.has_temp_disk(vm.size) is None})
    if unknown:
        yield NotChecked("temporary-disk", "sizes " + ", ".join(unknown), "the size table does not know whether these sizes have a temporary disk")


def check_entry_level_size(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    for vm in inv.vms:
        info = sizes.size_info(vm.size)
        if not info or not info.entry_level:
            continue
        kind = "burstable B-series" if info.family == "B" else "entry-level A-series"
        yield _finding(
            "entry-level-size",
            vm,
            f"{vm.name} runs on {vm.size}, a {kind} size: under constant full CPU load it slows down (credits run out) or falls short",
            f"If it serves production load, resize it to a general-purpose size ('az vm resize {_az(vm)} --size ...'; the VM restarts).",
        )


def check_backup(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    if ctx.backup is None:
        return
    for vm in inv.vms:
        if ctx.backup.known(vm.id) and ctx.backup.item(vm.id) is None:
            yield _finding(
                "azure-backup",
                vm,
                f"{vm.name} is not a protected item in any Recovery Services vault of its subscription",
                f"Protect it from a vault in {vm.location}: 'az backup protection enable-for-vm --vm {vm.id} --vault-name VAULT --policy-name POLICY -g VAULT_GROUP'.",
            )


def check_backup_health(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    """A protected VM whose last good backup is older than its policy allows, whose backups
    fail, or whose protection is stopped (backend/backup.py: how old a policy allows)."""
    if ctx.backup is None:
        return
    now = _now(inv)
    for vm in inv.vms:
        item = ctx.backup.item(vm.id)
        if item is None:
            continue
        problems = item.problems(now)
        if not problems:
            continue
        if item.stopped:
            fix = (
                f"Resume protection in vault {item.vault} ('az backup protection resume -g {item.resource_group} --vault-name {item.vault} "
                f"--container-name {item.container} --item-name {item.item} --policy-name POLICY'), then take a backup now "
                f"('aztriage recover --vm {vm.name} --scenario backup-now')."
            )
        else:
            fix = (
                f"Take a backup now ('aztriage recover --vm {vm.name} --scenario backup-now') and find why the scheduled ones "
                f"do not succeed (the vault's Backup jobs: 'az backup job list -g {item.resource_group} --vault-name {item.vault}')."
            )
        yield _finding(
            "backup-health",
            vm,
            f"{vm.name} ({item.describe(now)}): " + "; ".join(problems),
            fix,
            severity="high" if item.stale(now) or item.stopped else "medium",
        )


def check_retirements(inv: Inventory, ctx: CheckContext) -> Iterable[Finding]:
    """Retiring Azure features a VM uses (backend/retirements.py: one table of dates and links).
    Unmanaged disks have their own rule; NSG flow logs are not read (see retirements_not_checked)."""
    from backend.retirements import extension_retirements, retiring_size

    today = _now(inv).date()

    def finding(vm: Vm, key: str, uses: str) -> Finding:
        r = RETIREMENTS[key]
        return _finding(
            "retirement",
            vm,
            f"{vm.name} uses {uses}: {r.what}, {r.when(today)}",
            f"Move to {r.move_to} {r.deadline(today)} ({r.link}).",
            severity=r.severity(today),
        )

    for vm in inv.vms:
        for nic in vm.nics:
            for pip in nic.public_ips:
                known = inv.public_ips.get(pip.id.lower()) or pip
                if (known.sku or "").lower() == "basic":
                    yield finding(vm, "basic-public-ip", f"Basic SKU public IP {pip.name}")
            pools = nic.load_balancer_backend_pool_ids + nic.load_balancer_inbound_nat_rule_ids
            for lb_id in sorted({_lb_of_pool(p).split("/inboundNatRules/")[0].lower() for p in pools}):
                lb = inv.load_balancers.get(lb_id)
                if lb is not None and (lb.sku or "").lower() == "basic":
                    yield finding(vm, "basic-load-balancer", f"Basic load balancer {lb.name}")
        for r, name in extension_retirements(vm):
            yield finding(vm, r.id, f"extension {name}")
        if retiring_size(vm.size):
            yield finding(vm, "d-ls-series", f"size {vm.size}")


def retirements_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    r = RETIREMENTS["nsg-flow-logs"]
    if inv.vms:
        yield NotChecked(
            "retirement",
            "estate",
            f"NSG flow logs are not read by aztriage ({r.what}, {r.when(_now(inv).date())}): list them with "
            f"'az network watcher flow-log list --location REGION' and move them to {r.move_to} ({r.link})",
        )


def _backup_not_checked(rule: str, inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    if ctx.backup is None:
        yield NotChecked(rule, "estate", ctx.backup_unavailable_reason)
        return
    for sub, reason in sorted(ctx.backup.errors.items()):
        if any(vm.subscription_id.lower() == sub for vm in inv.vms):
            yield NotChecked(rule, f"subscription {sub}", f"its Recovery Services vaults could not be read: {reason}")


def backup_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    yield from _backup_not_checked("azure-backup", inv, ctx)


def backup_health_not_checked(inv: Inventory, ctx: CheckContext) -> Iterable[NotChecked]:
    yield from _backup_not_checked("backup-health", inv, ctx)


RULES: tuple[Rule, ...] = (
    Rule("no-zone-or-set", "No availability zone or availability set", "high", "runbook: Availability Set; APRL 2bd0be95, 273f6b30", check_no_redundancy),
    Rule("single-vm-set", "Availability set holds a single VM", "medium", "runbook: Availability Set", check_single_vm_set),
    Rule(
        "set-domains", "Availability set crowded into one fault or update domain", "medium", "runbook: Availability Set", check_set_domains, domains_not_checked
    ),
    Rule("single-instance-disks", "Single-instance VM without Premium SSD or Ultra disks", "high", "APRL df0ff862", check_disk_sla),
    Rule("unmanaged-disks", "Unmanaged (VHD) disks", "high", "APRL 122d11d7", check_unmanaged_disks),
    Rule("shared-storage-account", "Several VMs' VHDs in one storage account", "medium", "runbook: Mitigating Storage Failure", check_shared_storage_account),
    Rule("lrs-where-zrs", "Disks on LRS where zone-redundant storage is offered", "low", "runbook: Geo Replication; APRL fa0cf4f5", check_lrs_where_zrs),
    Rule("role-not-load-balanced", "VM of a role not behind its peers' load balancer", "medium", "runbook: Load Balance", check_role_load_balancer),
    Rule("boot-diagnostics-off", "Boot diagnostics off", "low", "aztriage: screenshot and serial console for recovery", check_boot_diagnostics),
    Rule(
        "vm-agent-not-ready",
        "VM agent missing or not ready",
        "medium",
        "aztriage: password reset and run command need the agent",
        check_vm_agent,
        agent_not_checked,
    ),
    Rule("disk-delete-option", "Disks deleted with the VM (deleteOption Delete)", "high", "aztriage: never lose a disk in a recovery", check_delete_option),
    Rule("planned-maintenance", "Planned maintenance pending", "medium", "runbook: reasons for restarts", check_planned_maintenance, maintenance_not_checked),
    Rule("vcpu-quota", "Regional vCPU quota nearly used", "medium", "runbook: Limits of the platform", check_vcpu_quota, quota_not_checked),
    Rule("temporary-disk", "Temporary disk: data there is not kept", "info", "runbook: Temporary Disk D:", check_temp_disk, temp_disk_not_checked),
    Rule("entry-level-size", "A- or B-series size for production load", "low", "APRL 3201dba8", check_entry_level_size),
    Rule("azure-backup", "Not protected by Azure Backup", "medium", "runbook: VM Backups; APRL 1981f704", check_backup, backup_not_checked),
    Rule(
        "backup-health",
        "Azure Backup older than its policy allows, failing or stopped",
        "high",
        "runbook: VM Backups",
        check_backup_health,
        backup_health_not_checked,
    ),
    Rule(
        "retirement",
        "Uses an Azure feature that is retired or retiring",
        "medium",
        "Microsoft's retirement list (backend/retirements.py)",
        check_retirements,
        retirements_not_checked,
    ),
)
RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
_RULE_ORDER = {r.id: i for i, r in enumerate(RULES)}


# --- running and rolling up ---------------------------------------------------------


def sort_key(f: Finding) -> tuple[Any, ...]:
    return (SEVERITY_RANK.get(f.severity, 9), (f.vm or "").lower(), f.subscription_id, _RULE_ORDER.get(f.rule, 99), f.evidence)


@dataclass(frozen=True)
class CheckResult:
    inventory: Inventory
    findings: tuple[Finding, ...]  # worst first
    not_checked: tuple[NotChecked, ...]
    rules: tuple[Rule, ...] = RULES

    @cached_property
    def _by_vm(self) -> dict[str, tuple[Finding, ...]]:
        grouped: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            if f.vm_id:
                grouped[f.vm_id.lower()].append(f)
        return {k: tuple(v) for k, v in grouped.items()}

    def for_vm(self, vm_id: str) -> tuple[Finding, ...]:
        """This VM's findings, worst first."""
        return self._by_vm.get(vm_id.lower(), ())

    def vm_scores(self) -> dict[str, int]:
        by_vm = self._by_vm
        return {vm.id.lower(): max(0, 100 - sum(f.points for f in by_vm.get(vm.id.lower(), ()))) for vm in self.inventory.vms}

    def summary(self) -> dict[str, Any]:
        inv = self.inventory
        vm_scores = self.vm_scores()
        by_sev = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}
        wide = [f for f in self.findings if not f.vm_id]

        per_vm: list[dict[str, Any]] = []
        for vm in inv.vms:
            mine = self.for_vm(vm.id)
            per_vm.append(
                {
                    "vm_id": vm.id,
                    "vm": vm.name,
                    "subscription_id": vm.subscription_id,
                    "score": vm_scores[vm.id.lower()],
                    "findings": len(mine),
                    "worst": mine[0].severity if mine else None,
                }
            )
        per_vm.sort(key=lambda r: (r["score"], r["vm"].lower()))

        names = {s.subscription_id.lower(): s.display_name for s in inv.subscriptions}
        sub_ids = list(dict.fromkeys([s.subscription_id for s in inv.subscriptions] + [v.subscription_id for v in inv.vms]))
        scores_of: dict[str, list[int]] = defaultdict(list)
        for v in inv.vms:
            scores_of[v.subscription_id.lower()].append(vm_scores[v.id.lower()])
        count_of: dict[str, int] = defaultdict(int)
        for f in self.findings:
            count_of[f.subscription_id.lower()] += 1
        per_sub: list[dict[str, Any]] = []
        for sub in sub_ids:
            low = sub.lower()
            scores = scores_of.get(low, [])
            sub_wide = sum(f.points for f in wide if f.subscription_id.lower() == low)
            base = sum(scores) / len(scores) if scores else 100.0
            per_sub.append(
                {
                    "subscription_id": sub,
                    "name": names.get(low, sub),
                    "score": max(0, round(base - sub_wide)),
                    "vms": len(scores),
                    "findings": count_of.get(low, 0),
                }
            )
        per_sub.sort(key=lambda r: (r["score"], r["name"].lower()))

        skipped = {n.rule for n in self.not_checked if n.scope == "estate"}
        of_rule: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            of_rule[f.rule].append(f)
        per_rule: list[dict[str, Any]] = []
        for rule in self.rules:
            rule_findings = of_rule.get(rule.id, [])
            per_rule.append(
                {
                    "rule": rule.id,
                    "title": rule.title,
                    "severity": rule.severity,
                    "status": "not checked" if rule.id in skipped else ("findings" if rule_findings else "passed"),
                    "findings": len(rule_findings),
                    "vms": len({f.vm_id.lower() for f in rule_findings if f.vm_id}),
                    "points": sum(f.points for f in rule_findings),
                    "source": rule.source,
                }
            )
        per_rule.sort(key=lambda r: (-r["points"], -r["findings"], SEVERITY_RANK[r["severity"]], r["rule"]))

        base = sum(vm_scores.values()) / len(vm_scores) if vm_scores else 100.0
        return {
            "score": max(0, round(base - sum(f.points for f in wide))),
            "vms": len(inv.vms),
            "vms_with_findings": len({f.vm_id.lower() for f in self.findings if f.vm_id and f.severity != "info"}),
            "findings": len(self.findings),
            "by_severity": by_sev,
            "by_rule": per_rule,
            "by_vm": per_vm,
            "by_subscription": per_sub,
            "not_checked": [n.to_json() for n in self.not_checked],
            "errors": [{"subscription_id": e.subscription_id, "code": e.code, "message": e.message} for e in inv.errors],
            "scoring": "VM score = 100 - points of its findings (high 10, medium 5, low 2, info 0), floor 0; subscription and estate score = mean VM score less subscription-wide findings; not-checked rules cost nothing",
        }

    def to_json(self) -> dict[str, Any]:
        return {"findings": [f.to_json() for f in self.findings], "summary": self.summary()}


def run_checks(inv: Inventory, ctx: CheckContext | None = None, *, rules: Iterable[Rule] = RULES) -> CheckResult:
    ctx = ctx or CheckContext()
    chosen = tuple(rules)
    findings: list[Finding] = []
    skipped: list[NotChecked] = []
    for rule in chosen:
        findings.extend(rule.check(inv, ctx))
        if rule.not_checked is not None:
            skipped.extend(rule.not_checked(inv, ctx))
    findings = _ranked_by_environment(inv, findings, ctx.roles)
    findings.sort(key=sort_key)
    return CheckResult(inventory=inv, findings=tuple(findings), not_checked=tuple(skipped), rules=chosen)


def _ranked_by_environment(inv: Inventory, findings: list[Finding], roles: RoleSettings) -> list[Finding]:
    """Findings on VMs that are not production one severity lower, saying why (RoleSettings.nonprod)."""
    why_of: dict[str, str | None] = {}
    by_id = {vm.id.lower(): vm for vm in inv.vms} if findings else {}
    out = []
    for f in findings:
        vm = by_id.get((f.vm_id or "").lower())
        if vm is None or f.severity == "info":
            out.append(f)
            continue
        key = vm.id.lower()
        if key not in why_of:
            why_of[key] = roles.nonprod(vm)
        why = why_of[key]
        if why is None:
            out.append(f)
            continue
        lower = LOWER_SEVERITY[f.severity]
        out.append(dataclasses.replace(f, severity=lower, evidence=f"{f.evidence} (not production, {why}: {lower}, not {f.severity})"))
    return out


# --- text -------------------------------------------------------------------------


def render_markdown(result: CheckResult, *, title: str = "High-availability checklist") -> str:
    s = result.summary()
    sev = s["by_severity"]
    lines = [
        f"# {title}",
        "",
        f"Score **{s['score']}/100** over {s['vms']} VMs in {len(s['by_subscription'])} subscriptions: "
        f"{sev['high']} high, {sev['medium']} medium, {sev['low']} low, {sev['info']} info.",
        "",
        "## Rules",
        "",
        "| rule | severity | status | findings | VMs | points |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["by_rule"]:
        lines.append("| " + " | ".join(md_inline(r[k]) for k in ("rule", "severity", "status", "findings", "vms", "points")) + " |")
    lines += ["", "## Subscriptions", "", "| subscription | score | VMs | findings |", "|---|---|---|---|"]
    for sub in s["by_subscription"]:
        lines.append("| " + " | ".join(md_inline(sub[k]) for k in ("name", "score", "vms", "findings")) + " |")
    lines += ["", "## Findings", ""]
    if not result.findings:
        lines.append("No findings.")
    for f in result.findings:
        who = f.vm or f"subscription {f.subscription_id}"
        lines += [
            f"### {md_inline(f.severity.upper())} {md_inline(f.rule)}: {md_inline(who)}",
            "",
            f"- Evidence: {md_inline(f.evidence)}",
            f"- Fix: {md_inline(f.fix)}",
            "",
        ]
    if result.not_checked:
        lines += ["## Not checked", ""]
        lines += [f"- {md_inline(n.rule)} ({md_inline(n.scope)}): {md_inline(n.reason)}" for n in result.not_checked]
        lines.append("")
    if s["errors"]:
        lines += ["## Subscriptions not read", ""]
        lines += [f"- {md_inline(e['subscription_id'])}: {md_inline(e['code'])}: {md_inline(e['message'])}" for e in s["errors"]]
        lines.append("")
    lines.append(f"_Scoring: {s['scoring']}._")
    return "\n".join(lines).rstrip() + "\n"


def role_settings(config: Any) -> RoleSettings:
    """The role settings from ``backend.config.Config`` (role_tag, role_pattern)."""
    tag = getattr(config, "role_tag", DEFAULT_ROLE_TAG)
    pattern = getattr(config, "role_pattern", "")
    nonprod = getattr(config, "nonprod_pattern", None)
    return RoleSettings(tag=tag or None, pattern=pattern or None, nonprod_pattern=DEFAULT_NONPROD_PATTERN if nonprod is None else (nonprod or None))


# --- reading what the rules need through the adapter ---------------------------------


_VIEW_FIELDS = ("agent_status", "agent_version", "maintenance", "platform_fault_domain", "platform_update_domain", "instance_view_read")


@dataclass(frozen=True)
class CheckFacts:
    """What the rules need beyond the inventory, as read at one time."""

    views: Mapping[str, Vm]  # lower-case VM id -> the VM with its instance-view facts
    view_errors: Mapping[str, str]
    usages: Mapping[UsageKey, tuple[ComputeUsage, ...]]
    usage_errors: Mapping[UsageKey, str]
    instance_view_limit: int | None
    backup: BackupBook | None = None

    def apply(self, inv: Inventory) -> tuple[Inventory, frozenset[str]]:
        """``inv`` with the instance-view facts of the VMs read (a newer inventory keeps them)."""
        if not self.views:
            return inv, frozenset()
        vms = []
        read = set()
        for vm in inv.vms:
            seen = self.views.get(vm.id.lower())
            if seen is None:
                vms.append(vm)
                continue
            read.add(vm.id.lower())
            vms.append(dataclasses.replace(vm, **{f: getattr(seen, f) for f in _VIEW_FIELDS}))
        return dataclasses.replace(inv, vms=tuple(vms)), frozenset(read)

    def context(self, roles: RoleSettings | None, read: frozenset[str]) -> CheckContext:
        if self.view_errors:
            reason = f"their instance view could not be read ({len(self.view_errors)} reads failed, e.g. {next(iter(self.view_errors.values()))})"
        else:
            reason = (
                f"their instance view was not read (at most {self.instance_view_limit} VMs per check; 'aztriage check --instance-views all' reads every VM)"
            )
        return CheckContext(
            roles=roles or RoleSettings(), usages=self.usages, usage_errors=self.usage_errors, backup=self.backup, views_read=read, views_not_read_reason=reason
        )


def view_facts_present(vm: Vm) -> bool:
    """The VM carries facts that only its instance view has (the inventory read it)."""
    return vm.instance_view_read


async def read_facts(
    backend: CheckBackend, inv: Inventory, *, instance_view_limit: int | None = DEFAULT_INSTANCE_VIEW_LIMIT, first: Iterable[str] = ()
) -> CheckFacts:
    """Instance views of at most ``instance_view_limit`` VMs (None: all that are not
    deallocated; ``first`` are read first), the compute usage of every region in use and
    the Azure Backup protection of every subscription that holds a VM, read at once.

    VMs the inventory already enriched with their instance view are not read again:
    they count as read."""
    wanted = {i.lower() for i in first}
    already = {vm.id.lower(): vm for vm in inv.vms if view_facts_present(vm)}
    candidates = choose(inv, None, first)  # most useful first; deallocated VMs never
    named = [vm for vm in candidates if vm.id.lower() in wanted]  # always read (a report's VM)
    rest = [vm for vm in candidates if vm.id.lower() not in wanted and vm.id.lower() not in already]
    if instance_view_limit is not None:
        rest = rest[: max(0, instance_view_limit - len(already) - len(named))]
    to_read = named + rest
    subscriptions = list(dict.fromkeys(vm.subscription_id for vm in inv.vms))
    (views, view_errors), (usages, usage_errors), backup = await asyncio.gather(
        backend.read_instance_views(to_read), backend.inventory_usages(inv), backend.backup_protection(subscriptions)
    )
    return CheckFacts({**already, **views}, view_errors, usages, usage_errors, instance_view_limit, backup)


async def run_with_facts(inv: Inventory, facts: CheckFacts, roles: RoleSettings | None = None) -> tuple[Inventory, CheckResult]:
    enriched, read = facts.apply(inv)
    # A big estate takes a noticeable moment: keep the caller's event loop free.
    return enriched, await asyncio.to_thread(run_checks, enriched, facts.context(roles, read))


async def evaluate(
    backend: CheckBackend,
    subscription_ids: list[str] | None = None,
    roles: RoleSettings | None = None,
    *,
    instance_view_limit: int | None = DEFAULT_INSTANCE_VIEW_LIMIT,
    first: Iterable[str] = (),
    inventory: Inventory | None = None,
) -> tuple[Inventory, CheckResult]:
    """Read through the adapter what the rules need, then run every rule: what
    `aztriage check` and `aztriage report` share. Returns the inventory enriched
    with the instance-view facts, and the result."""
    # The inventory's own instance-view reads are skipped: read_facts reads them and
    # knows which VMs it read, so "not checked" is exact.
    inv = inventory if inventory is not None else await backend.inventory(subscription_ids, instance_views=0)
    facts = await read_facts(backend, inv, instance_view_limit=instance_view_limit, first=first)
    return await run_with_facts(inv, facts, roles)


class CheckSession:
    """Checks each new inventory (the console refreshes every minute) but reads
    the per-VM instance views and the compute usage again only when they are
    older than ``max_age_s`` or when asked: one request per VM is not a thing
    to repeat every minute."""

    def __init__(self, *, max_age_s: float = 600.0, instance_view_limit: int | None = DEFAULT_INSTANCE_VIEW_LIMIT, clock: Callable[[], float] | None = None):
        import time

        self.max_age_s = max_age_s
        self.instance_view_limit = instance_view_limit
        self._clock = clock or time.monotonic
        self.facts: CheckFacts | None = None
        self.read_at: float | None = None

    def stale(self) -> bool:
        return self.facts is None or self.read_at is None or self._clock() - self.read_at >= self.max_age_s

    async def run(self, backend: CheckBackend, inv: Inventory, roles: RoleSettings | None = None, *, force: bool = False) -> tuple[Inventory, CheckResult]:
        if force or self.stale():
            self.facts = await read_facts(backend, inv, instance_view_limit=self.instance_view_limit)
            self.read_at = self._clock()
        assert self.facts is not None
        return await run_with_facts(inv, self.facts, roles)
