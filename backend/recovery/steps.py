"""Building blocks shared by the scenarios: the pre-flight check, power
actions, waiting for the VM to settle, and the check that RDP/SSH answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from backend import mapping
from backend.models import Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts, power_state, provisioning
from backend.recovery.plan import INTERRUPTS_WARNING, NO_SLA_WARNING, Check, Kind, Step, Verification, already_done, blocked, not_verified, ready, verified

# How long a verify waits for Azure (or the guest) to settle, in seconds of real time.
SETTLE_TIMEOUT = 600.0
# A guest needs a minute or two after Azure reports it running before RDP/SSH
# answer; the emulator's guests answer at once (AZTRIAGE_REACH_TIMEOUT overrides).
REACH_TIMEOUT = 180.0
EMULATOR_REACH_TIMEOUT = 10.0

T = TypeVar("T")


def reach_timeout(settings: Any) -> float:
    import os

    from backend.settings import is_loopback_url

    if os.environ.get("AZTRIAGE_REACH_TIMEOUT"):
        return float(os.environ["AZTRIAGE_REACH_TIMEOUT"])
    return EMULATOR_REACH_TIMEOUT if is_loopback_url(settings.endpoint) else REACH_TIMEOUT


def poll_interval(settings: Any) -> float:
    return float(getattr(settings, "polling_interval", None) or 5.0)


def parse_time(value: str | None) -> datetime | None:
    """An ARM timestamp; one without a zone is UTC (ARM writes both forms)."""
    if not value:
        return None
    parsed = mapping.parse_time(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def remote_port(vm: Vm) -> tuple[int, str]:
    return (3389, "rdp") if vm.os_type.lower() == "windows" else (22, "ssh")


def protocol_name(protocol: str) -> str:
    return {"rdp": "RDP", "ssh": "SSH"}.get(protocol, protocol.upper())


# --- plan-time analysis ----------------------------------------------------------


def common_warnings(vm: Vm, *, interrupts: bool) -> list[str]:
    out = []
    if interrupts:
        out.append(INTERRUPTS_WARNING)
        if vm.sla_shape == "none":
            out.append(NO_SLA_WARNING)
    if (vm.priority or "").lower() == "spot":
        out.append("Spot VM: Azure can evict it at any time, and a stopped Spot VM may not start again until Spot capacity is back.")
    if vm.vmss_id:
        out.append(f"Member of scale set {vm.vmss_id.rsplit('/', 1)[-1]}: the scale set's automatic repairs or autoscale may act on it too.")
    return out


def lock_blockers(facts: VmFacts) -> list[str]:
    return [
        f"{lock.describe()}: Azure refuses every change (even start, stop and restart) while it is there; remove it or ask its owner first"
        for lock in facts.read_only_locks()
    ]


def lock_warnings(facts: VmFacts) -> list[str]:
    out = []
    if facts.locks is None:
        out.append(f"The management locks could not be read ({facts.locks_error or 'unknown error'}): a ReadOnly lock would make every change fail.")
    for lock in facts.locks or ():
        if lock.level.lower() == "cannotdelete":
            out.append(f"{lock.describe()}: nothing in this plan deletes anything, so it does not get in the way.")
    return out


def agent_blocker(vm: Vm) -> str | None:
    if vm.power_state != "running":
        return f"the VM is {vm.power_state}: the VM agent only answers on a running VM (start it first)"
    if vm.agent_status != "Ready":
        # What to do instead is the VM's verdict's next step (an agent that is not Ready on a
        # guest whose SSH answers is restarted from a sign-in, not repaired on a rescue VM).
        from backend.verdict import decide

        verdict = decide(vm)
        return f"the VM agent reports '{vm.agent_status}': run command and VMAccess need a working agent. Instead: {verdict.next_step}"
    return None


# --- pre-flight ---------------------------------------------------------------------


def preflight_step(facts: VmFacts, *, needs_agent: bool = False, needs_running: bool = False) -> Step:
    """The first step of every plan: re-read the VM and its locks right before anything changes."""
    vm = facts.vm
    looks_at = ["management locks", "provisioning state"]
    if needs_agent:
        looks_at.append("VM agent")

    async def run(ctx: StepContext) -> str:
        model = await ctx.current_model()
        state, _ = provisioning(model)
        power = power_state(model)
        if state in ("updating", "creating", "deleting"):
            raise StepFailed(f"another operation is in progress on {vm.name} (provisioning state {state}): wait for it to finish, then resume")
        try:
            locks = await ctx.backend.list_locks(vm.id)
        except Exception as exc:
            await ctx.log(f"the management locks could not be read: {exc}")
            locks = []
        read_only = [lock for lock in locks if ((lock.get("properties") or {}).get("level") or "").lower() == "readonly"]
        if read_only:
            raise StepFailed(f"a ReadOnly lock ('{read_only[0].get('name')}') now covers {vm.name}: Azure refuses every change while it is there")
        if needs_running and power != "running":
            raise StepFailed(f"{vm.name} is {power}: this plan needs it running")
        if needs_agent:
            agent = _agent_from_model(model)
            if agent != "Ready":
                raise StepFailed(f"the VM agent on {vm.name} reports '{agent}': this plan needs a working agent")
        await ctx.save(power=power, provisioning=state, locks=[lock.get("name") for lock in locks])
        return f"{vm.name} is {power}, provisioning {state}, {len(locks)} lock{'s' if len(locks) != 1 else ''}, nothing in the way"

    return Step(
        key="preflight",
        title="Pre-flight checks",
        why="Azure refuses changes under a ReadOnly lock or while another operation runs; checking first means the run never stops half-way for a reason known in advance.",
        changes="nothing (reads the VM, its instance view and the management locks)",
        kind=Kind.CHECK,
        needs_agent=needs_agent,
        run=run,
    )


def _agent_from_model(model: dict[str, Any]) -> str:
    agent = ((model.get("properties") or {}).get("instanceView") or {}).get("vmAgent") or {}
    for status in agent.get("statuses") or ():
        if status.get("displayStatus"):
            return status["displayStatus"]
    return "Unknown"


# --- waiting for Azure -----------------------------------------------------------------


async def poll_until(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], settings: Any, *, timeout: float | None = None) -> T:
    """Call `read` until `done(result)` holds or the timeout (SETTLE_TIMEOUT unless given)
    passes, every polling interval; returns the last result, done or not."""
    deadline = time.monotonic() + (SETTLE_TIMEOUT if timeout is None else timeout)
    interval = poll_interval(settings)
    while True:
        result = await read()
        if done(result) or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(interval)


async def wait_for_model(ctx: StepContext, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = SETTLE_TIMEOUT) -> dict[str, Any]:
    """Read the VM until `predicate(model)` holds or the timeout passes; returns the last model."""
    return await poll_until(ctx.current_model, predicate, ctx.settings, timeout=timeout)


def settled(model: dict[str, Any]) -> bool:
    state, _ = provisioning(model)
    return state not in ("updating", "creating") and power_state(model) not in ("starting", "stopping", "deallocating")


def _took_effect_since(model: dict[str, Any], sent_at: str) -> bool:
    """Evidence that an operation sent at `sent_at` reached the VM: an operation
    is running now, or the last one ended after that time."""
    state, when = provisioning(model)
    if state in ("updating", "creating"):
        return True
    ended, sent = parse_time(when), parse_time(sent_at)
    return bool(ended and sent and ended >= sent)


# --- power actions -----------------------------------------------------------------------


def already_in(vm: Vm, state: str) -> Callable[[dict[str, Any]], str | None]:
    """A power step's `done_when`: the VM is already in the power state `state`."""
    return lambda model: f"{vm.name} is already {state}" if power_state(model) == state else None


def power_step(
    facts: VmFacts,
    *,
    action: str,
    key: str,
    title: str,
    why: str,
    changes: str,
    kind: Kind,
    allowed_from: tuple[str, ...],
    final_power: str | None,
    warnings: tuple[str, ...] = (),
    undo: str | None = None,
    done_when: Callable[[dict[str, Any]], str | None] | None = None,
    verify_done: bool = False,
) -> Step:
    """One VM power action (start, restart, deallocate, redeploy, reapply, perform_maintenance).

    `done_when(model)` returns a reason when the world already shows the
    action's effect (the VM is already running, maintenance already done):
    the step is then recognised as done and not sent again. With
    `verify_done`, verification also needs `done_when` to see the effect."""
    vm = facts.vm
    word = action.replace("_", " ")

    async def precondition(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        sent_at = ctx.unconfirmed_send(action)
        if sent_at and _took_effect_since(model, sent_at):
            return already_done(f"the {word} sent before the interruption reached Azure")
        if done_when is not None:
            reason = done_when(model)
            if reason:
                return already_done(reason)
        state, _ = provisioning(model)
        if state in ("updating", "creating", "deleting"):
            return blocked(f"another operation is in progress on {vm.name} (provisioning state {state}): wait for it to finish, then resume")
        power = power_state(model)
        if allowed_from and power not in allowed_from:
            return blocked(f"{vm.name} is {power}, and {word} needs it {' or '.join(allowed_from)}")
        return ready(f"{vm.name} is {power}")

    async def run(ctx: StepContext) -> str:
        started = time.monotonic()
        await ctx.backend.vm_action(vm.id, action, **await ctx.lro(action))
        return f"Azure finished the {word} in {time.monotonic() - started:.0f} s"

    async def verify(ctx: StepContext) -> Verification:
        def good(model: dict[str, Any]) -> bool:
            return settled(model) and (final_power is None or power_state(model) == final_power)

        model = await wait_for_model(ctx, good)
        state, _ = provisioning(model)
        power = power_state(model)
        if state == "failed":
            return not_verified(f"Azure reports provisioning failed after the {word}", power=power, provisioning=state)
        if final_power is not None and power != final_power:
            return not_verified(f"{vm.name} is {power}, not {final_power}", power=power, provisioning=state)
        if not settled(model):
            return not_verified(f"{vm.name} did not settle (power {power}, provisioning {state})", power=power, provisioning=state)
        message = f"{vm.name} is {power}, provisioning {state}"
        if verify_done and done_when is not None:
            effect = done_when(model)
            if not effect:
                return not_verified(f"{message}, but the {word} shows no effect", power=power, provisioning=state)
            message += f"; {effect}"
        return verified(message, power=power, provisioning=state)

    return Step(
        key=key,
        title=title,
        why=why,
        changes=changes,
        kind=kind,
        warnings=warnings,
        undo=undo,
        precondition=precondition,
        run=run,
        verify=verify,
    )


# --- does RDP/SSH answer? ---------------------------------------------------------------------


async def probe_options(settings: Any, timeout: float = 2.0) -> Any:
    """Probe options for this connection. ARM on loopback: probe loopback only. The demo
    (--demo) also follows the emulator's guest map to where each stand-in listens
    (backend.connectivity.demo_port_map); otherwise the VM's own address and port."""
    from backend.probe import ProbeOptions
    from backend.settings import is_loopback_url

    if not is_loopback_url(settings.endpoint):
        return ProbeOptions(timeout=timeout, attempts=1)
    from backend.connectivity import demo_port_map

    ports = await demo_port_map(settings)
    if ports is None:
        return ProbeOptions(timeout=timeout, attempts=1, loopback_only=True)
    return ProbeOptions(timeout=timeout, attempts=1, loopback_only=True, port_map=lambda address, port: ports.get((address, port), port))


async def public_address(ctx: StepContext) -> str | None:
    """The VM's public IP address as it is now (a deallocated VM's dynamic address changes)."""
    for nic in ctx.vm.nics:
        for pip in nic.public_ips:
            doc = await ctx.backend.get_public_ip_document(pip.id)
            address = ((doc or {}).get("properties") or {}).get("ipAddress")
            if address:
                return address
    return None


async def probe_remote(ctx: StepContext, *, timeout: float = 2.0, rdp_protocols: int | None = None) -> tuple[bool, str, dict[str, Any]]:
    """(answers, what was seen, data) for the VM's RDP/SSH port on its public IP; `rdp_protocols`:
    what the RDP check offers, when not what a client offers by default (TLS and CredSSP)."""
    import dataclasses

    from backend.probe import ProbeTarget, probe_one

    port, protocol = remote_port(ctx.vm)
    address = await public_address(ctx)
    if not address:
        return False, "the VM has no public IP address now", {}
    target = ProbeTarget(host=address, port=port, protocol=protocol, vm=ctx.vm.name, vm_id=ctx.vm.id, kind="public-ip")
    options = await probe_options(ctx.settings, timeout)
    if rdp_protocols is not None:
        options = dataclasses.replace(options, rdp_protocols=rdp_protocols)
    result = await probe_one(target, options)
    answered = result.protocol_ok is True
    seen = f"{protocol_name(protocol)} on {address}:{port}: {result.status}" + (f" ({result.detail})" if result.detail and not answered else "")
    if answered:
        seen = f"{protocol_name(protocol)} answers on {address}:{port}" + (f" ({result.banner})" if result.banner else "")
    return answered, seen, {"address": address, "port": port, "status": result.status, "answered": result.answered, "banner": result.banner}


async def rdp_requires_nla(ctx: StepContext) -> tuple[bool | None, str]:
    """Whether the VM's RDP listener requires NLA, asked as a client without CredSSP asks
    (TLS only): HYBRID_REQUIRED_BY_SERVER says it does. None: RDP could not be reached."""
    from backend.probe import PROTOCOL_SSL

    answers, seen, data = await probe_remote(ctx, rdp_protocols=PROTOCOL_SSL)
    if not answers:
        return None, seen
    where = f"RDP on {data['address']}:{data['port']}"
    if "HYBRID_REQUIRED_BY_SERVER" in (data.get("banner") or ""):
        return True, f"{where} requires NLA: a client without CredSSP is refused (HYBRID_REQUIRED_BY_SERVER)"
    return False, f"{where} takes a client without CredSSP ({data.get('banner') or 'answered'}): NLA is off, the sign-in screen is shown"


async def verdict_now(ctx: StepContext) -> Any:
    """The VM's verdict (backend.verdict) from a fresh read of its subscription and a probe of
    its RDP/SSH port: the same diagnosis the Connectivity pane makes. None when it cannot be made."""
    import logging

    from backend import connectivity
    from backend.verdict import VerdictBook

    try:
        inventory = await ctx.backend.inventory([ctx.vm.subscription_id], instance_views=0)
        vm = inventory.vm_by_id(ctx.vm.id)
        if vm is None:
            return None
        report = await connectivity.run(ctx.backend, inventory, [vm], connectivity.Request(timeout=2.0, attempts=1))
    except Exception:
        logging.getLogger("aztriage.recovery").warning("the final diagnosis of %s failed", ctx.vm.name, exc_info=True)
        return None
    now = datetime.now(UTC)
    book = VerdictBook()
    book.record_report(report, [vm], now)
    return book.verdict(vm, inventory, now)


def reach_step(facts: VmFacts) -> Step | None:
    """A final check that RDP (Windows) or SSH (Linux) answers on the public IP.
    None when the VM has no public IP: nothing here can reach it to check."""
    vm = facts.vm
    if not any(nic.public_ips for nic in vm.nics):
        return None
    port, protocol = remote_port(vm)
    name = protocol_name(protocol)

    async def verify(ctx: StepContext) -> Verification:
        timeout = reach_timeout(ctx.settings)
        deadline = time.monotonic() + timeout
        interval = max(0.2, min(poll_interval(ctx.settings) * 5, 5.0))
        attempts = 0
        while True:
            attempts += 1
            answers, seen, data = await probe_remote(ctx)
            if answers:
                return verified(seen, **data)
            if not data or time.monotonic() >= deadline:
                message = f"{seen} after {attempts} attempt{'s' if attempts != 1 else ''}"
                if data:
                    # Why, in the words every pane uses: the VM's verdict from a fresh diagnosis.
                    verdict = await verdict_now(ctx)
                    if verdict is not None:
                        data["verdict"] = verdict.to_json()
                        message += f"; verdict: {verdict.summary}; next: {verdict.next_step}"
                    else:
                        message += "; probe it in the Connectivity pane (or aztriage probe) for the reason"
                return not_verified(message, **data)
            if attempts == 1:
                await ctx.log(f"{seen}; trying again for up to {timeout:.0f} s while the guest starts")
            await asyncio.sleep(interval)

    return Step(
        key=f"reach-{protocol}",
        title=f"Check that {name} answers",
        why=f"Azure saying the VM runs is not the same as {name} answering: this is what the people waiting on the VM will try first.",
        changes=f"nothing (connects to port {port} on the VM's public IP and checks the {name} handshake)",
        kind=Kind.CHECK,
        verify=verify,
    )


async def running_with_agent(ctx: StepContext, what: str) -> Check | None:
    """Blocked unless the VM runs with a Ready agent, as `what` (run command, an extension) needs; None: it does."""
    model = await ctx.current_model()
    if power_state(model) != "running":
        return blocked(f"{ctx.vm.name} is {power_state(model)}: {what} needs it running")
    if _agent_from_model(model) != "Ready":
        return blocked(f"the VM agent on {ctx.vm.name} reports '{_agent_from_model(model)}': {what} needs a working agent")
    return None


def already_answers(reason_prefix: str = "") -> Callable[[StepContext], Any]:
    """A precondition: a guest fix is not needed when RDP/SSH already answers."""

    async def precondition(ctx: StepContext) -> Check:
        blocker = await running_with_agent(ctx, "run command")
        if blocker is not None:
            return blocker
        answers, seen, _ = await probe_remote(ctx)
        if answers:
            return already_done(f"{reason_prefix}{seen}: not needed")
        return ready(seen)

    return precondition
