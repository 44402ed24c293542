"""The recovery scenarios. Each module has ``build(facts, params) -> Plan`` and
``unavailable(vm) -> str | None`` (why it cannot be used on this VM now);
this registry lists them in the order the wizard offers them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.adapter import RecoveryBackend
from backend.models import Vm
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Plan, PlanError


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    summary: str  # one line, in an operator's words
    module: str
    needs_sizes: bool = False
    changes_vm: bool = True

    def _mod(self) -> Any:
        """The module that builds this scenario, or its row in the module's
        ``TABLE`` when one module holds several scenarios (the power actions)."""
        module = importlib.import_module(f"backend.recovery.scenarios.{self.module}")
        table = getattr(module, "TABLE", None)
        return module if table is None else table[self.id]

    def build(self, facts: VmFacts, params: dict[str, Any]) -> Plan:
        made = self._mod().build(facts, dict(params))
        if self.id in OFFERS_BACKUP_FIRST:
            from backend.recovery.scenarios.backup_now import offer_first

            made = offer_first(made, facts, dict(params))
        return made

    def unavailable(self, vm: Vm, now: datetime | None = None) -> str | None:
        """Why this scenario cannot be used on the VM, or None. ``now``: the time the VM's
        times are judged at (``VmFacts.fetched_at``, when it was read); a power action's row
        takes it (perform-maintenance says why its self-service window refuses it), and
        without it judges at this machine's clock now."""
        if vm.uniform_instance:
            scale_set = (vm.vmss_id or "").rsplit("/", 1)[-1]
            return f"{vm.name} is an instance of the Uniform scale set {scale_set}: Azure acts on it only through the scale set (az vmss restart, reimage or redeploy --instance-ids)"
        mod = self._mod()
        if self.module == "power":
            return mod.unavailable(vm, now)
        return mod.unavailable(vm)

    async def gather(self, backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
        """Add what this scenario's plan is built from beyond the VM's own documents
        (a module's optional ``gather``: e.g. the rescue VM the operator picked)."""
        extra = getattr(self._mod(), "gather", None)
        if extra is not None:
            await extra(backend, vm_id, dict(params), documents)
        if self.id in OFFERS_BACKUP_FIRST:
            # Whether Azure Backup protects the VM: its plan then offers a backup as the first step.
            from backend.recovery.scenarios import backup_now

            await backup_now.gather(backend, vm_id, dict(params), documents)


# Plans that recreate, move, repair or resize a VM offer an on-demand Azure Backup of a protected VM
# as their optional first step (backup_now.offer_first; `backup_first` in their parameters).
OFFERS_BACKUP_FIRST = ("recreate", "move-to-zone", "move-to-set", "rescue", "resize")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("restart", "Restart", "Reboot the VM on its host; disks, IPs and the temporary disk stay.", "power"),
    Scenario("start", "Start", "Start a stopped or deallocated VM.", "power"),
    Scenario("deallocate", "Stop and deallocate", "Stop the VM and release its host (compute billing stops); the temporary disk is erased.", "power"),
    Scenario("redeploy", "Redeploy to a new host", "Move the VM to a new Azure host and start it there; the temporary disk is erased.", "power"),
    Scenario("resize", "Resize", "Change the VM size to one it can take, showing the difference first.", "resize", needs_sizes=True),
    Scenario("reapply", "Reapply", "Send the VM's own model back to its host to clear a failed provisioning state; no reboot.", "power"),
    Scenario(
        "reset-access", "Reset remote access", "Reset the RDP/SSH configuration and/or an account's password or SSH key through the VM agent.", "reset_access"
    ),
    Scenario(
        "run-fix",
        "Guest fixes by run command",
        "Re-enable RDP or SSH inside the guest through the VM agent (firewall rule, service, port, certificate).",
        "run_fix",
    ),
    Scenario(
        "perform-maintenance",
        "Planned maintenance now",
        "Start the pending platform maintenance now, at a time that suits you, instead of in Azure's window.",
        "power",
    ),
    Scenario(
        "disable-nla",
        "Turn NLA off (expired password)",
        "Let a client without CredSSP reach the sign-in screen to change an expired password; weakens security until undone.",
        "disable_nla",
    ),
    Scenario(
        "fix-nsg",
        "Fix the NSG rule",
        "Let RDP/SSH from your address past the NSG rule that denies it: a temporary allow rule (or delete the rule).",
        "fix_nsg",
        changes_vm=False,
    ),
    Scenario(
        "backup-now",
        "Back up now (Azure Backup)",
        "Take an on-demand Azure Backup of a protected VM: a recovery point of every disk, in its vault.",
        "backup_now",
        changes_vm=False,
    ),
    Scenario(
        "restore-point",
        "Restore point of every disk",
        "Take an application- or crash-consistent restore point of all the VM's disks at one instant.",
        "restore_point",
        changes_vm=False,
    ),
    Scenario(
        "restore-disk",
        "Restore a disk (snapshot or restore point)",
        "Swap the OS disk or a data disk for a disk made from a snapshot or a restore point of it, keeping the old disk.",
        "restore_disk",
    ),
    Scenario(
        "snapshot-disks",
        "Snapshot every disk",
        "Take a snapshot of each managed disk: the safety net before anything risky.",
        "snapshot_disks",
        changes_vm=False,
    ),
    Scenario(
        "enable-boot-diagnostics",
        "Enable boot diagnostics",
        "Turn on boot diagnostics (managed storage) so the next boot leaves a serial log and a screenshot.",
        "enable_boot_diagnostics",
    ),
    Scenario(
        "rescue",
        "Repair the OS disk on a rescue VM",
        "Copy the OS disk, attach the copy to a rescue VM, repair it there, and swap it in as the OS disk.",
        "rescue",
    ),
    Scenario("recreate", "Recreate from its disks", "Delete the VM, keeping every disk, NIC and public IP, and create it again from them.", "recreate"),
    Scenario(
        "reset-vpn",
        "Reset the site-to-site VPN",
        "Reset the VPN connection a private-only VM is reached through and, as a heavier option, its gateway.",
        "reset_vpn",
        changes_vm=False,
    ),
    Scenario(
        "upgrade-public-ip",
        "Static public IP, Standard SKU",
        "Make a Basic or Dynamic public IP Static and upgrade it to Standard, keeping its address.",
        "upgrade_public_ip",
    ),
    Scenario(
        "move-to-zone",
        "Move to an availability zone",
        "Create the VM again in an availability zone from copies of its disks; the originals are kept until released.",
        "move",
    ),
    Scenario(
        "move-to-set",
        "Move to an availability set",
        "Create the VM again in an availability set (made with 2 fault and 5 update domains if new) from copies of its disks.",
        "move",
    ),
)

IDS = tuple(s.id for s in SCENARIOS)


def get(scenario_id: str) -> Scenario:
    for s in SCENARIOS:
        if s.id == scenario_id:
            return s
    raise PlanError(f"unknown scenario {scenario_id!r}: use one of {', '.join(IDS)}")


def build_plan(scenario_id: str, facts: VmFacts, params: dict[str, Any]) -> Plan:
    return get(scenario_id).build(facts, params)


def recommended_for(vm: Vm, verdict: Any = None) -> str | None:
    """The scenario the VM's verdict (backend.verdict) recommends; a failed provisioning
    state of a running VM is cleared by reapply first."""
    if vm.power_state == "running" and vm.provisioning_state.lower() == "failed":
        return "reapply"
    if verdict is None:
        from backend.verdict import decide

        verdict = decide(vm)
    return verdict.scenario


def choices(vm: Vm, recommended: str | None = None, *, verdict: Any = None, now: datetime | None = None) -> list[tuple[Scenario, str | None, bool]]:
    """(scenario, why it is unavailable or None, recommended) with the recommended one first:
    `recommended`, else what the VM's verdict recommends (none during an Azure incident).
    ``now``: as ``Scenario.unavailable`` takes it."""
    first = recommended or recommended_for(vm, verdict)
    out = [(s, s.unavailable(vm, now), s.id == first) for s in SCENARIOS]
    out.sort(key=lambda item: (not item[2], item[1] is not None))
    return out
