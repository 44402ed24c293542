"""run-fix: guest fixes through the VM agent's run command.

Windows: enable Remote Desktop and its firewall rule, reset the RDP
certificate, set the RDP port back to 3389. Linux: restart sshd, open port 22
in ufw or firewalld. Each fix is skipped when RDP/SSH already answers: the
goal is a VM the operator can reach, not a list of commands run."""

from __future__ import annotations

import time
from typing import Any

from backend.models import Vm
from backend.recovery.context import StepContext
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Kind, Plan, Step, Verification, not_verified, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import agent_blocker, already_answers, preflight_step, reach_step

# Run command keeps the last 4,096 bytes of output; the journal keeps less.
OUTPUT_KEPT = 1000

ENABLE_RDP = [
    "Set-ItemProperty -Path 'HKLM:\\System\\CurrentControlSet\\Control\\Terminal Server' -Name fDenyTSConnections -Value 0",
    "Set-Service -Name TermService -StartupType Automatic",
    "Start-Service -Name TermService",
    "Enable-NetFirewallRule -DisplayGroup 'Remote Desktop'",
    "Write-Output 'Remote Desktop enabled; firewall rule group Remote Desktop enabled'",
]
RESTART_SSHD = [
    "systemctl enable --now sshd 2>/dev/null || systemctl enable --now ssh",
    "systemctl restart sshd 2>/dev/null || systemctl restart ssh",
    "systemctl is-active sshd 2>/dev/null || systemctl is-active ssh",
]
OPEN_SSH_PORT = [
    "if command -v ufw >/dev/null 2>&1 && ufw status | grep -q 'Status: active'; then ufw allow 22/tcp; fi",
    "if command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then firewall-cmd --permanent --add-service=ssh && firewall-cmd --reload; fi",
    "echo 'port 22 open in the guest firewall'",
]


def unavailable(vm: Vm) -> str | None:
    return agent_blocker(vm)


def command_output(result: dict[str, Any]) -> tuple[str, str]:
    """(stdout, stderr) of a finished run command, from its instance view's status messages."""
    stdout = stderr = ""
    for status in result.get("value") or ():
        code = (status.get("code") or "").lower()
        if "stdout" in code:
            stdout = status.get("message") or ""
        elif "stderr" in code:
            stderr = status.get("message") or ""
    return stdout, stderr


def command_step(
    facts: VmFacts,
    *,
    key: str,
    title: str,
    why: str,
    changes: str,
    command_id: str,
    script: list[str] | None = None,
    parameters: dict[str, str] | None = None,
) -> Step:
    vm = facts.vm

    async def run(ctx: StepContext) -> str:
        started = time.monotonic()
        result = await ctx.backend.run_command(vm.id, command_id, script=script, parameters=parameters, **await ctx.lro(key))
        stdout, stderr = command_output(result)
        await ctx.save(stdout=stdout[-OUTPUT_KEPT:], stderr=stderr[-OUTPUT_KEPT:])
        if stdout.strip():
            await ctx.log(stdout.strip().splitlines()[-1][:200])
        return f"{command_id} ran in {time.monotonic() - started:.0f} s"

    async def verify(ctx: StepContext) -> Verification:
        if ctx.recognised:
            return verified(ctx.recognised)
        stderr = (ctx.outputs.get("stderr") or "").strip()
        if stderr:
            return not_verified(f"{command_id} wrote errors: {stderr.splitlines()[-1][:200]}")
        return verified(f"{command_id} finished without errors")

    return Step(
        key=key,
        title=title,
        why=why,
        changes=changes,
        kind=Kind.CHANGE,
        warnings=("Run command runs as SYSTEM/root, one at a time, cannot be cancelled and needs outbound HTTPS from the VM to Azure.",),
        needs_agent=True,
        undo=None,
        precondition=already_answers(),
        run=run,
        verify=verify,
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    if vm.os_type.lower() == "windows":
        fixes = [
            command_step(
                facts,
                key="enable-rdp",
                title="Enable Remote Desktop and its firewall rule",
                why="RDP switched off (fDenyTSConnections) or its firewall rule disabled is the most common reason RDP is silent while the VM runs.",
                changes="sets fDenyTSConnections to 0, starts TermService, enables the 'Remote Desktop' firewall rules",
                command_id="RunPowerShellScript",
                script=ENABLE_RDP,
            ),
            command_step(
                facts,
                key="reset-rdp-cert",
                title="Reset the RDP certificate",
                why="An expired or broken RDP listener certificate makes the handshake fail although the port answers.",
                changes="removes the RDP listener's certificate; Windows makes a new self-signed one",
                command_id="ResetRDPCert",
            ),
            command_step(
                facts,
                key="rdp-port",
                title="Set the RDP port back to 3389",
                why="An RDP listener moved to another port is refused on 3389, which is the port the NSG and the operators use.",
                changes="sets the RDP listener port to 3389 and opens it in the Windows firewall",
                command_id="SetRDPPort",
                parameters={"RDPPORT": "3389"},
            ),
        ]
    else:
        fixes = [
            command_step(
                facts,
                key="restart-sshd",
                title="Restart sshd",
                why="A stopped or hung sshd refuses SSH connections while the VM itself is fine.",
                changes="enables and restarts the sshd service",
                command_id="RunShellScript",
                script=RESTART_SSHD,
            ),
            command_step(
                facts,
                key="open-ssh-port",
                title="Open port 22 in the guest firewall",
                why="A ufw or firewalld rule dropping port 22 makes SSH silent although sshd runs.",
                changes="allows 22/tcp in ufw, or the ssh service in firewalld, when that firewall is active",
                command_id="RunShellScript",
                script=OPEN_SSH_PORT,
            ),
        ]
    reason = unavailable(vm)
    return plan(
        "run-fix",
        "Guest fixes by run command",
        facts,
        [preflight_step(facts, needs_agent=True, needs_running=True), *fixes, reach_step(facts)],
        f"Fix remote access inside {vm.name} through the VM agent, one fix at a time, until it answers.",
        blockers=[reason] if reason else [],
    )
