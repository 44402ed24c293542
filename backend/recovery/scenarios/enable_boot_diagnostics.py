"""enable-boot-diagnostics: turn boot diagnostics on, so the next boot leaves
a serial log and a screenshot to diagnose from.

One PATCH of ``diagnosticsProfile.bootDiagnostics.enabled = true`` (managed
storage, unless the VM already names a storage account). It does not restart
the VM: Azure captures from the VM's next start, which the plan says.
"""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts, provisioning
from backend.recovery.plan import Check, Kind, Plan, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import preflight_step, settled, wait_for_model


def _boot_settings(model: dict[str, Any]) -> dict[str, Any]:
    return (((model.get("properties") or {}).get("diagnosticsProfile") or {}).get("bootDiagnostics")) or {}


def unavailable(vm: Vm) -> str | None:
    if vm.boot_diagnostics.enabled:
        where = "managed storage" if vm.boot_diagnostics.managed_storage else vm.boot_diagnostics.storage_uri
        return f"boot diagnostics are already on ({where})"
    return None


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    reason = unavailable(vm)
    where = vm.boot_diagnostics.storage_uri or "managed storage (no storage account to create or pay for separately)"
    next_boot = (
        f"{vm.name} is {vm.power_state}: the serial log and screenshot appear once it starts"
        if vm.power_state != "running"
        else f"{vm.name} keeps running: nothing is captured until its next start; restart it when that suits you (scenario restart)"
    )

    async def precondition(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        state, _ = provisioning(model)
        if _boot_settings(model).get("enabled"):
            if state == "failed":
                # The setting is in the model but the update that put it there failed: send it again.
                return ready(f"boot diagnostics are set on {vm.name} but its last update failed: it is sent again")
            return already_done(f"boot diagnostics are on for {vm.name}")
        if state in ("updating", "creating", "deleting"):
            return blocked(f"another operation is in progress on {vm.name} (provisioning state {state}): wait for it to finish, then resume")
        return ready(f"boot diagnostics are off for {vm.name}")

    async def run(ctx: StepContext) -> str:
        await ctx.backend.enable_boot_diagnostics(vm.id, **await ctx.lro("enable-boot-diagnostics"))
        return f"Azure accepted boot diagnostics for {vm.name}"

    async def verify(ctx: StepContext) -> Verification:
        model = await wait_for_model(ctx, lambda m: settled(m) and bool(_boot_settings(m).get("enabled")))
        settings = _boot_settings(model)
        if not settings.get("enabled"):
            return not_verified(f"boot diagnostics are still off for {vm.name}")
        storage = settings.get("storageUri") or "managed storage"
        return verified(f"boot diagnostics are on for {vm.name} ({storage})", storage=storage)

    enable = Step(
        key="enable-boot-diagnostics",
        title=f"Enable boot diagnostics on {vm.name}",
        why="Without boot diagnostics there is no serial log and no screenshot: when RDP/SSH is dead they are the only window into the guest.",
        changes=f"sets diagnosticsProfile.bootDiagnostics.enabled on {vm.name} ({where}); the VM is not restarted",
        kind=Kind.CHANGE,
        warnings=(next_boot,),
        undo=f"turn boot diagnostics off again (PATCH diagnosticsProfile.bootDiagnostics.enabled = false on {vm.name})",
        precondition=precondition,
        run=run,
        verify=verify,
    )
    return plan(
        "enable-boot-diagnostics",
        "Enable boot diagnostics",
        facts,
        [preflight_step(facts), enable],
        f"Turn boot diagnostics on for {vm.name} so its next boot can be diagnosed.",
        warnings=[next_boot],
        blockers=[reason] if reason else [],
    )
