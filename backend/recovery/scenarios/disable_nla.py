"""disable-nla: the runbook's way back in when an expired password blocks RDP.

With Network Level Authentication (NLA) required, Remote Desktop authenticates the account
over CredSSP before any session exists: an account whose password has expired is refused
there, and Windows never gets to show its "your password has expired, change it" screen.
Turning NLA off on the RDP-Tcp listener (``UserAuthentication=0``; ``SecurityLayer`` from 2,
TLS only, to 1, negotiate, so a client that does not offer CredSSP is taken) lets a client
with CredSSP switched off (``enablecredsspsupport:i:0`` in its .rdp file) reach the sign-in
screen, where the password can be changed.

It weakens security, and the plan says so: anyone who reaches the port gets a Windows
sign-in screen, and a session is set up before anyone is authenticated. The values are set
by run command (PowerShell as SYSTEM, through the VM agent), which writes the values it found
before; the run's undo (``aztriage runs --undo RUN_ID``) puts exactly those back and turns NLA
on again. Remote Desktop Services is restarted so that the listener takes the new values:
sessions open on the VM are dropped.

The check before and after is the RDP handshake itself, offered TLS without CredSSP as such a
client does: with NLA required the server answers HYBRID_REQUIRED_BY_SERVER.
"""

from __future__ import annotations

import re
import time
from typing import Any

from backend.models import Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.scenarios.run_fix import OUTPUT_KEPT, command_output
from backend.recovery.steps import agent_blocker, preflight_step, rdp_requires_nla, reach_step, running_with_agent

KEY = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp"
WEAKENS = (
    "WEAKENS SECURITY: with NLA off, anyone who reaches port 3389 gets a Windows sign-in screen and a session is set up before "
    "anyone is authenticated. Turn it back on (aztriage runs --undo RUN_ID) as soon as the password is changed."
)
DEFAULTS = (1, 2)  # Windows' own: NLA required, TLS
_VALUES = re.compile(r"before: UserAuthentication=([01]) SecurityLayer=([012])\b")


def disable_script() -> list[str]:
    return [
        f"$key = '{KEY}'",
        "$now = Get-ItemProperty -Path $key",
        'Write-Output "before: UserAuthentication=$($now.UserAuthentication) SecurityLayer=$($now.SecurityLayer)"',
        "Set-ItemProperty -Path $key -Name UserAuthentication -Value 0",
        "if ($now.SecurityLayer -eq 2) { Set-ItemProperty -Path $key -Name SecurityLayer -Value 1 }",
        "Restart-Service -Name TermService -Force",
        "$after = Get-ItemProperty -Path $key",
        'Write-Output "after: UserAuthentication=$($after.UserAuthentication) SecurityLayer=$($after.SecurityLayer)"',
    ]


def restore_script(user_authentication: int, security_layer: int) -> list[str]:
    """The values as they were; only ever the digits read back from the guest's own output (checked)."""
    if user_authentication not in (0, 1) or security_layer not in (0, 1, 2):
        raise ValueError("not an RDP-Tcp UserAuthentication / SecurityLayer value")
    return [
        f"$key = '{KEY}'",
        f"Set-ItemProperty -Path $key -Name UserAuthentication -Value {user_authentication}",
        f"Set-ItemProperty -Path $key -Name SecurityLayer -Value {security_layer}",
        "Restart-Service -Name TermService -Force",
        "$after = Get-ItemProperty -Path $key",
        'Write-Output "after: UserAuthentication=$($after.UserAuthentication) SecurityLayer=$($after.SecurityLayer)"',
    ]


def values_before(stdout: str) -> tuple[int, int] | None:
    """(UserAuthentication, SecurityLayer) as the script found them, from its output."""
    found = _VALUES.search(stdout or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def unavailable(vm: Vm) -> str | None:
    if vm.os_type.lower() != "windows":
        return f"NLA is a Windows Remote Desktop setting; {vm.name} runs {vm.os_type or 'another OS'}"
    return agent_blocker(vm)


def nla_step(facts: VmFacts) -> Step:
    vm = facts.vm

    async def precondition(ctx: StepContext) -> Check:
        blocker = await running_with_agent(ctx, "run command")
        if blocker is not None:
            return blocker
        required, seen = await rdp_requires_nla(ctx)
        if required is False:
            return already_done(seen)
        return ready(seen)

    async def run(ctx: StepContext) -> str:
        started = time.monotonic()
        result = await ctx.backend.run_command(vm.id, "RunPowerShellScript", script=disable_script(), **await ctx.lro("disable-nla"))
        stdout, stderr = command_output(result)
        found = values_before(stdout)
        await ctx.save(stdout=stdout[-OUTPUT_KEPT:], stderr=stderr[-OUTPUT_KEPT:], before=list(found) if found else None)
        if found is None and not stderr.strip():
            await ctx.log("the script did not say the values it found: undo restores Windows' defaults (NLA required, TLS)")
        return f"RunPowerShellScript ran in {time.monotonic() - started:.0f} s"

    async def verify(ctx: StepContext) -> Verification:
        stderr = (ctx.outputs.get("stderr") or "").strip()
        if stderr:
            return not_verified(f"RunPowerShellScript wrote errors: {stderr.splitlines()[-1][:200]}")
        required, seen = await rdp_requires_nla(ctx)
        if required:
            return not_verified(f"{seen}: the change did not take")
        if required is None:
            return verified(f"UserAuthentication set to 0 (RDP could not be reached to check it: {seen})")
        return verified(seen)

    async def undo(ctx: StepContext) -> str:
        user_authentication, security_layer = tuple(ctx.outputs.get("before") or DEFAULTS)
        script = restore_script(int(user_authentication), int(security_layer))
        result = await ctx.backend.run_command(vm.id, "RunPowerShellScript", script=script)
        _, stderr = command_output(result)
        if stderr.strip():
            raise StepFailed(f"turning NLA back on wrote errors: {stderr.strip().splitlines()[-1][:200]}")
        return f"NLA is required again on {vm.name} (UserAuthentication={user_authentication}, SecurityLayer={security_layer}, as they were)"

    return Step(
        key="disable-nla",
        title="Turn NLA off on the RDP listener (weakens security)",
        why=(
            "With NLA required, an account whose password has expired is refused before Windows can ask for a new one; with NLA off, "
            "a client with CredSSP switched off (enablecredsspsupport:i:0) reaches the sign-in screen, where the password can be changed."
        ),
        changes=(
            "sets UserAuthentication to 0 (and SecurityLayer 2 to 1) on the RDP-Tcp listener by run command, and restarts Remote Desktop "
            "Services (open sessions are dropped)"
        ),
        kind=Kind.CHANGE,
        warnings=(WEAKENS, "Run command runs as SYSTEM, one at a time, cannot be cancelled and needs outbound HTTPS from the VM to Azure."),
        needs_agent=True,
        undo="aztriage runs --undo RUN_ID turns NLA back on with the values the script found",
        precondition=precondition,
        run=run,
        verify=verify,
        undo_run=undo,
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    if vm.os_type.lower() != "windows":
        raise PlanError(unavailable(vm) or "NLA is a Windows setting")
    reason = unavailable(vm)
    return plan(
        "disable-nla",
        "Turn NLA off (expired password)",
        facts,
        [preflight_step(facts, needs_agent=True, needs_running=True), nla_step(facts), reach_step(facts)],
        f"Turn Network Level Authentication off on {vm.name} so that a client without CredSSP reaches the sign-in screen and an "
        "expired password can be changed there; undo turns it back on.",
        warnings=[WEAKENS, "Connect with CredSSP off: add the line enablecredsspsupport:i:0 to the .rdp file (mstsc cannot do it from its dialog)."],
        blockers=[reason] if reason else [],
    )
