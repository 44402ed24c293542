"""reset-access: reset remote access through the VM agent's VMAccess extension.

Windows (VMAccessAgent): the Remote Desktop configuration, and optionally the
administrator's password. Linux (VMAccessForLinux): the SSH configuration
and/or a user's password or SSH public key. The extension is PUT under the
handler name the portal and the CLI use (``enablevmaccess``, or the VM's
existing VMAccess extension: a VM takes one handler per extension type).
Secrets travel only in ``protectedSettings``; they are never journaled.

A re-run is recognised by the extension's ``forceUpdateTag``, which carries
the run id: after a crash the step sees its own PUT and does not send it again.
"""

from __future__ import annotations

import re
import time
from typing import Any

from backend.models import Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts, power_state
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import _agent_from_model, agent_blocker, poll_until, preflight_step, reach_step

HANDLER_NAME = "enablevmaccess"
WINDOWS = {"publisher": "Microsoft.Compute", "type": "VMAccessAgent", "typeHandlerVersion": "2.0"}
LINUX = {"publisher": "Microsoft.OSTCExtensions", "type": "VMAccessForLinux", "typeHandlerVersion": "1.4"}

_KEY_PREFIXES = ("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com ", "sk-ecdsa-sha2-", "ssh-dss ")


def unavailable(vm: Vm) -> str | None:
    return agent_blocker(vm)


def check_password(password: str, os_type: str) -> None:
    """Azure's rules for a VM password; the message never repeats the password."""
    low, high = (12, 123) if os_type.lower() == "windows" else (6, 72)
    if not (low <= len(password) <= high):
        raise PlanError(f"the password must be {low} to {high} characters long")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
    if classes < 3:
        raise PlanError("the password needs three of: a lower-case letter, an upper-case letter, a digit, a special character")


def check_ssh_key(key: str) -> str:
    """A public key on one line; a private key is refused (it must never leave the operator's machine)."""
    text = key.strip()
    if "PRIVATE KEY" in text:
        raise PlanError("that is a private key: give the public key (the .pub file)")
    if "\n" in text or not text.startswith(_KEY_PREFIXES):
        raise PlanError("that is not an OpenSSH public key (one line starting with ssh-rsa, ssh-ed25519 or ecdsa-sha2-...)")
    return text


# What useradd takes (and VMAccessForLinux passes to it): a lower-case letter or _, then letters, digits, _ or -.
_LINUX_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Windows: no \ / [ ] : ; | = , + * ? < > " @, at most 20 characters, not only dots and spaces.
_WINDOWS_USER = re.compile(r"[^\\/\[\]:;|=,+*?<>\"@\x00-\x1f]{1,20}")
RESERVED_USERS = {"root", "admin", "administrator", "guest", "daemon", "bin", "sys", "nobody", "sshd"}


def check_username(name: str, os_type: str) -> str:
    """An account name VMAccess can take on this OS, or PlanError (one sentence)."""
    value = name.strip()
    pattern = _WINDOWS_USER if os_type.lower() == "windows" else _LINUX_USER
    if not pattern.fullmatch(value) or not value.strip(". "):
        shape = (
            'up to 20 characters, none of \\ / [ ] : ; | = , + * ? < > " @'
            if os_type.lower() == "windows"
            else ("a lower-case letter or _, then up to 31 lower-case letters, digits, _ or -")
        )
        raise PlanError(f"{value!r} is not an account name VMAccess can use ({shape})")
    if value.lower() in RESERVED_USERS:
        raise PlanError(f"{value} is a reserved account: choose the administrator or another user")
    return value


def known_accounts(facts: VmFacts) -> list[tuple[str, str]]:
    """(account, how it is known) from the VM's model: its administrator, and on Linux every user
    whose SSH key the model places (/home/USER/.ssh/authorized_keys). Names that are not account
    names are left out: they are the tenant's text, not accounts."""
    vm = facts.vm
    out: dict[str, str] = {}
    if vm.admin_username:
        out[vm.admin_username] = "the VM's administrator"
    profile = ((facts.documents.get("model") or {}).get("properties") or {}).get("osProfile") or {}
    keys = ((profile.get("linuxConfiguration") or {}).get("ssh") or {}).get("publicKeys") or ()
    for key in keys:
        found = re.fullmatch(r"/home/([a-z_][a-z0-9_-]{0,31})/\.ssh/authorized_keys", str(key.get("path") or ""))
        if found and found.group(1) not in out:
            out[found.group(1)] = "has an SSH key in the VM's model"
    return list(out.items())


def _extension_name(facts: VmFacts, handler: dict[str, str]) -> tuple[str, str]:
    existing = facts.extension(handler["type"])
    if existing:
        version = (existing.get("properties") or {}).get("typeHandlerVersion") or handler["typeHandlerVersion"]
        return existing.get("name") or HANDLER_NAME, version
    return HANDLER_NAME, handler["typeHandlerVersion"]


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    windows = vm.os_type.lower() == "windows"
    credential = params.get("credential")  # "password", "ssh_key" or None
    if credential not in (None, "password", "ssh_key"):
        raise PlanError(f"unknown credential {credential!r}")
    if windows and credential == "ssh_key":
        raise PlanError("Windows VMs take a password, not an SSH key")
    username = params.get("username") or vm.admin_username
    if credential and not username:
        raise PlanError("name the account (--username, or choose it in the Recovery pane): the VM's model names no administrator")
    if credential and params.get("username") and params["username"] != vm.admin_username:
        username = check_username(str(params["username"]), vm.os_type)
    if windows and credential and vm.admin_username and (username or "").lower() != vm.admin_username.lower():
        raise PlanError(f"on Windows VMAccess only resets the administrator's password ({vm.admin_username}); it cannot add another account")
    reset_config = params.get("reset_config")
    if reset_config is None:
        reset_config = True if windows else credential is None
    handler = WINDOWS if windows else LINUX
    name, version = _extension_name(facts, handler)

    what: list[str] = []
    if windows:
        what.append("resets the Remote Desktop configuration (RDP enabled, port 3389, its firewall rule)")
        if credential == "password":
            what.append(f"sets a new password for {username}")
    else:
        if reset_config:
            what.append("restores the default sshd configuration and restarts sshd")
        if credential == "password":
            what.append(f"sets a new password for {username} (the account is created if it does not exist)")
        elif credential == "ssh_key":
            what.append(f"adds the SSH public key to {username} (the account is created if it does not exist)")
    step_warnings = []
    if credential == "password":
        step_warnings.append(f"Whatever signs in as {username} with the old password stops working.")
    if reset_config and not windows:
        step_warnings.append("Custom sshd settings (port, allowed users, ciphers) are replaced by the defaults.")

    def tag(ctx: StepContext) -> str:
        return f"aztriage-{ctx.run_id}"

    async def precondition(ctx: StepContext) -> Check:
        ext = await ctx.backend.get_extension(vm.id, name)
        props = (ext or {}).get("properties") or {}
        if ext and props.get("forceUpdateTag") == tag(ctx):
            state = props.get("provisioningState") or ""
            if state.lower() == "succeeded":
                return already_done("this run's VMAccess reset already ran")
            if state.lower() in ("creating", "updating"):
                return already_done("this run's VMAccess reset is still running")
        model = await ctx.current_model()
        if power_state(model) != "running":
            return blocked(f"{vm.name} is {power_state(model)}: VMAccess needs it running")
        agent = _agent_from_model(model)
        if agent != "Ready":
            return blocked(f"the VM agent on {vm.name} reports '{agent}': VMAccess needs a working agent")
        return ready(f"the VM agent on {vm.name} is ready")

    async def run(ctx: StepContext) -> str:
        protected: dict[str, Any] = {}
        settings: dict[str, Any] = {}
        if credential == "password" and not ctx.secrets.get("password"):
            raise StepFailed("the new password was not given (secrets are never kept: give it again)")
        if credential == "ssh_key" and not ctx.secrets.get("ssh_key"):
            raise StepFailed("the SSH public key was not given (give it again with --ssh-key)")
        if windows:
            if credential == "password":
                settings["UserName"] = username
                protected["Password"] = ctx.secrets["password"]
        else:
            if reset_config:
                protected["reset_ssh"] = True
            if credential == "password":
                protected.update(username=username, password=ctx.secrets["password"])
            elif credential == "ssh_key":
                protected.update(username=username, ssh_key=ctx.secrets["ssh_key"])
        body = {
            "location": vm.location,
            "properties": {
                "publisher": handler["publisher"],
                "type": handler["type"],
                "typeHandlerVersion": version,
                "autoUpgradeMinorVersion": True,
                "forceUpdateTag": tag(ctx),
                "settings": settings,
                "protectedSettings": protected,
            },
        }
        started = time.monotonic()
        # No continuation token is journaled for this PUT: the extension's own
        # forceUpdateTag tells a resumed run that it was sent.
        await ctx.backend.put_extension(vm.id, name, body, **await ctx.lro("vmaccess", journal_token=False))
        return f"{handler['type']} finished in {time.monotonic() - started:.0f} s"

    async def verify(ctx: StepContext) -> Verification:
        def finished(ext: dict[str, Any] | None) -> bool:
            props = (ext or {}).get("properties") or {}
            state = (props.get("provisioningState") or "").lower()
            return bool(ext) and props.get("forceUpdateTag") == tag(ctx) and state in ("succeeded", "failed")

        ext = await poll_until(lambda: ctx.backend.get_extension(vm.id, name), finished, ctx.settings)
        props = (ext or {}).get("properties") or {}
        state = (props.get("provisioningState") or "").lower()
        if not finished(ext):
            return not_verified(f"the {handler['type']} extension did not finish (provisioning {state or 'unknown'})")
        statuses = ((props.get("instanceView") or {}).get("statuses")) or []
        detail = "; ".join(s.get("message") or s.get("displayStatus") or "" for s in statuses if s.get("message") or s.get("displayStatus"))
        if state != "succeeded":
            return not_verified(f"{handler['type']} failed" + (f": {detail}" if detail else ""))
        return verified(f"{handler['type']} succeeded" + (f": {detail}" if detail else ""))

    step = Step(
        key="vmaccess",
        title=f"Reset remote access with {handler['type']}",
        why=(
            "The runbook's 'enable RDP or reset the password with the VM agent': the agent applies the reset inside the guest, "
            "so it works when you cannot sign in at all."
        ),
        changes="; ".join(what),
        kind=Kind.CHANGE,
        warnings=tuple(step_warnings),
        needs_agent=True,
        uses_secrets=bool(credential),
        undo=None,
        precondition=precondition,
        run=run,
        verify=verify,
    )
    reason = unavailable(vm)
    needs = ("password",) if credential == "password" else ("ssh_key",) if credential == "ssh_key" else ()
    return plan(
        "reset-access",
        "Reset remote access",
        facts,
        [preflight_step(facts, needs_agent=True, needs_running=True), step, reach_step(facts)],
        f"Reset remote access to {vm.name} through its VM agent ({handler['type']}) and check it answers.",
        warnings=step_warnings,
        blockers=[reason] if reason else [],
        params={"credential": credential, "username": username if credential else None, "reset_config": reset_config, "extension": name},
        needs_secrets=needs,
    )
