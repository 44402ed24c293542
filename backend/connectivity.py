"""One connectivity run, shared by `aztriage probe` and the Connectivity pane.

From an inventory and a choice of VMs: the endpoints to probe (public IPs,
FQDNs, load-balancer NAT frontends, private IPs on request), how to reach them
from this machine (resolver, demo port map, loopback-only), the probes
themselves (results stream out as they arrive), the last-known address
store, the private path of VMs without a public endpoint, the VM agent and
maintenance state where the inventory lacks them, optionally Network
Watcher's view from inside Azure, and finally one diagnosis per VM and port.

No Textual. The adapter is used only through its public calls.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backend.diagnose import Diagnosis, Facts, diagnose
from backend.lastknown import EndpointChange, LastKnownStore, scope_for
from backend.models import Inventory, Maintenance, Vm
from backend.network import ConnectivityCheck, Endpoint, PrivatePath, Source, default_ports, endpoints, has_public_path, vm_flow_verdict
from backend.probe import OPEN, ProbeOptions, ProbeResult, ProbeTarget, StaticResolver, iter_probes
from backend.settings import is_loopback_url
from backend.turns import Turns

if TYPE_CHECKING:
    from backend.adapter import BootDiagnostics, ConnectivityBackend, NetworkDiagnostics
    from backend.bootdiag import BootVerdict

log = logging.getLogger("aztriage.connectivity")

SOURCE_ENV = "AZTRIAGE_SOURCE_IP"
# Beyond this many VMs, instance views are read only for VMs whose port did not answer.
RUNTIME_FOR_ALL_LIMIT = 100
SIDE_CONCURRENCY = 8
# VMs planned at a time (plan() takes a list); the loop gets a turn every few ms (backend.turns):
# a background sweep of 10,000 held it 80-160 ms at once.
PLAN_SLICE = 50
# A serial log up to this many characters is analysed on the event loop: 0.3-0.8 ms here, less than
# handing it to a thread costs (the hop, and the loop waiting for the GIL while the thread
# has it; a headless probe's threads spent four times longer waiting than analysing).
# Larger logs (a real one is often hundreds of KiB) go to a thread.
INLINE_LOG_CHARS = 16 * 1024


@dataclass(frozen=True)
class Request:
    vm_ids: tuple[str, ...] | None = None  # None: every VM of the inventory
    private: bool = False
    source: str | None = None  # None: the config / AZTRIAGE_SOURCE_IP / "Internet"
    extra_ports: tuple[int, ...] = ()
    timeout: float = 2.0
    attempts: int = 2
    concurrency: int = 256
    from_azure: bool = False  # also ask Network Watcher, for ports that do not answer

    def source_text(self) -> str:
        return self.source or os.environ.get(SOURCE_ENV) or "Internet"


@dataclass
class Environment:
    """How this machine reaches the endpoints."""

    resolver: StaticResolver
    loopback_only: bool = False
    port_map: dict[tuple[str, int], int] = field(default_factory=dict)
    previous_ips: dict[str, str] = field(default_factory=dict)  # vm id (lower) -> address (demo story)
    emulator: bool = False
    note: str = ""

    def map_port(self, address: str, port: int) -> int:
        return self.port_map.get((address, port), port)


@dataclass
class Report:
    results: list[ProbeResult] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    changes: dict[str, list[EndpointChange]] = field(default_factory=dict)
    checks: dict[tuple[str, int], ConnectivityCheck] = field(default_factory=dict)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    vm_names: dict[str, str] = field(default_factory=dict)  # vm id (lower) -> name
    # Side facts read during the run, by vm id (lower): (agent status, maintenance) and boot-log verdicts.
    runtimes: dict[str, tuple[str, Maintenance]] = field(default_factory=dict)
    boot_verdicts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "results": [r.to_json() for r in self.results],
            "diagnoses": [d.to_json() for d in self.diagnoses],
            "ip_changes": [
                {"vm": c.vm_name, "what": c.what, "old": list(c.old), "new": list(c.new), "seen_at": c.seen_at}
                for changes in self.changes.values()
                for c in changes
            ],
            "network_watcher": [
                {"vm": self.vm_names.get(vm_id, vm_id), "port": port, "source": c.source_vm, "status": c.status, "issues": [i.describe() for i in c.issues]}
                for (vm_id, port), c in self.checks.items()
            ],
            "stats": {"probes": len(self.results), "elapsed_s": round(self.elapsed_s, 3)},
        }


# --- where the endpoints are ---------------------------------------------------------


def name_table(inventory: Inventory) -> dict[str, list[str]]:
    """FQDN -> addresses from the inventory (public IPs and load-balancer frontends)."""
    table: dict[str, list[str]] = {}
    for pip in inventory.public_ips.values():
        if pip.fqdn:
            table.setdefault(pip.fqdn.lower(), [])
            if pip.ip_address:
                table[pip.fqdn.lower()].append(pip.ip_address)
    for vm in inventory.vms:
        for nic in vm.nics:
            for pip in nic.public_ips:
                if pip.fqdn:
                    table.setdefault(pip.fqdn.lower(), [])
                    if pip.ip_address and pip.ip_address not in table[pip.fqdn.lower()]:
                        table[pip.fqdn.lower()].append(pip.ip_address)
    for lb in inventory.load_balancers.values():
        for rule in lb.inbound_nat_rules:
            if rule.frontend_fqdn:
                table.setdefault(rule.frontend_fqdn.lower(), [])
                if rule.frontend_ip and rule.frontend_ip not in table[rule.frontend_fqdn.lower()]:
                    table[rule.frontend_fqdn.lower()].append(rule.frontend_ip)
    return table


async def fetch_emulator_guests(settings: Any) -> dict[str, Any] | None:
    """The emulator's guest endpoint map (GET /_emulator/guest), or None when it has none."""
    import ssl

    import aiohttp

    ctx = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else ssl.create_default_context()
    url = settings.endpoint.rstrip("/") + "/_emulator/guest"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    return None
                return await resp.json()
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        log.warning("the emulator's guest map could not be read from %s", url, exc_info=True)
        return None


async def demo_port_map(settings: Any) -> dict[tuple[str, int], int] | None:
    """(address, port) -> the loopback port the demo's stand-in for that guest port listens on.
    Demo mode only (--demo): anywhere else a VM's port is probed where it is, and None is returned
    without asking. Also None when the emulator has no guest map."""
    if not getattr(settings, "demo", False):
        return None
    guests = await fetch_emulator_guests(settings)
    if guests is None:
        return None
    return {(ep["address"], int(ep["port"])): int(ep["listen_port"]) for ep in guests.get("endpoints") or ()}


async def environment(settings: Any, inventory: Inventory) -> Environment:
    """Real Azure: system DNS for real names. ARM on loopback (the emulator, a test's
    stand-in): the inventory resolves the reserved .azure.test names and only loopback is
    probed, at each VM's own address and port. The demo (--demo) also follows the
    emulator's port map to where its stand-in for each guest port really listens; with
    --arm-endpoint alone the map is never read, so a real server at a VM's loopback
    address and port is what the probe reaches."""
    table = name_table(inventory)
    if not is_loopback_url(settings.endpoint):
        return Environment(resolver=StaticResolver(system_dns=True))
    env = Environment(resolver=StaticResolver(table, system_dns=False), loopback_only=True, emulator=bool(settings.demo))
    if not settings.demo:
        return env
    guests = await fetch_emulator_guests(settings)
    if guests is None:
        env.note = "the emulator runs no guest listeners: ports will not answer"
        return env
    for ep in guests.get("endpoints") or ():
        env.port_map[(ep["address"], int(ep["port"]))] = int(ep["listen_port"])
    for vm_id, facts in (guests.get("vms") or {}).items():
        if facts.get("previous_public_ip"):
            env.previous_ips[vm_id.lower()] = facts["previous_public_ip"]
    return env


def seed_demo_history(store: LastKnownStore, env: Environment, inventory: Inventory) -> None:
    """The demo's story: last time, these VMs had another address (estate guest facts)."""
    if not env.previous_ips:
        return
    for vm in inventory.vms:
        old = env.previous_ips.get(vm.id.lower())
        if old:
            store.seed(vm.id, [old], overwrite=True)


# --- the run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    target: ProbeTarget
    endpoint: Endpoint


def extra_ports(configured: Iterable[int]) -> tuple[int, ...]:
    """Configured ports beyond the OS's own (22 for Linux, 3389 for Windows)."""
    return tuple(p for p in dict.fromkeys(int(x) for x in configured) if p not in (22, 3389))


def plan(inventory: Inventory, vms: Sequence[Vm], request: Request) -> list[Planned]:
    out = []
    for vm in vms:
        ports = default_ports(vm, request.extra_ports)
        for ep in endpoints(vm, inventory, ports, private=request.private):
            out.append(Planned(ProbeTarget.from_endpoint(ep), ep))
    return out


def choose_vms(inventory: Inventory, names: Sequence[str] | None) -> list[Vm]:
    """VMs by name (case-insensitive; a name in two subscriptions gives both), or all. KeyError names the unknown one."""
    if not names:
        return list(inventory.vms)
    chosen: dict[str, Vm] = {}
    for name in names:
        found = inventory.vm_by_name(name)
        if not found:
            raise KeyError(name)
        for vm in found:
            chosen[vm.id.lower()] = vm
    return list(chosen.values())


def pick_source_vm(inventory: Inventory, vm: Vm) -> Vm | None:
    """Another running VM for Network Watcher: same VNet first, then same subscription and region."""

    def vnet(v: Vm) -> str:
        return (v.vnet_id or "").lower()  # the primary NIC's, as the probe's private path reads it

    candidates = [v for v in inventory.vms if v.id != vm.id and v.power_state == "running" and v.availability_state != "Unavailable"]
    same_vnet = [v for v in candidates if vnet(v) and vnet(v) == vnet(vm)]
    if same_vnet:
        return same_vnet[0]
    same_region = [v for v in candidates if v.subscription_id == vm.subscription_id and v.location == vm.location]
    return same_region[0] if same_region else None


async def run(
    backend: ConnectivityBackend,
    inventory: Inventory,
    vms: Sequence[Vm],
    request: Request,
    *,
    env: Environment | None = None,
    store: LastKnownStore | None = None,
    on_result: Callable[[ProbeResult], Any] | None = None,
    on_diagnosis: Callable[[Diagnosis], Any] | None = None,
) -> Report:
    """Probe, remember, gather the side facts, diagnose."""
    started = time.perf_counter()
    source = Source.parse(request.source_text())  # ValueError: one sentence for the caller
    env = env or await environment(backend.settings, inventory)
    store = store or LastKnownStore(scope=scope_for(backend.settings))
    report = Report(vm_names={vm.id.lower(): vm.name for vm in vms})
    if env.note:
        report.notes.append(env.note)

    planned: list[Planned] = []
    turns = Turns()
    for start in range(0, len(vms), PLAN_SLICE):  # a background sweep plans thousands: a few ms per turn of the loop
        planned += plan(inventory, vms[start : start + PLAN_SLICE], request)
        if turns.due():
            await turns.next()
    options = ProbeOptions(
        timeout=request.timeout,
        attempts=request.attempts,
        concurrency=request.concurrency,
        loopback_only=env.loopback_only,
        port_map=env.map_port if env.port_map else None,
    ).validate()
    by_target = {id(p.target): p for p in planned}
    results: list[ProbeResult] = []
    async for result in iter_probes([p.target for p in planned], options, env.resolver):
        results.append(result)
        if on_result is not None:
            on_result(result)
    order = {id(p.target): i for i, p in enumerate(planned)}
    results.sort(key=lambda r: order.get(id(r.target), 0))
    report.results = results

    # What each FQDN resolved to, for the last-known store.
    resolved: dict[str, list[str]] = {}
    for r in results:
        if r.target.kind == "fqdn" and r.address:
            resolved.setdefault(r.target.host.lower(), [])
            if r.address not in resolved[r.target.host.lower()]:
                resolved[r.target.host.lower()].append(r.address)
    try:
        # In a thread: comparing thousands of VMs and the file's fsync are not the event loop's work.
        report.changes = await asyncio.to_thread(store.record, vms, resolved)
    except OSError as exc:
        report.notes.append(f"the last-known addresses could not be saved: {exc.strerror or exc}")

    # Group results per VM and guest port.
    await asyncio.sleep(0)
    grouped: dict[tuple[str, int], list[ProbeResult]] = {}
    for r in results:
        p = by_target.get(id(r.target))
        guest_port = p.endpoint.guest_port if p else r.target.port
        grouped.setdefault((r.target.vm_id.lower(), guest_port), []).append(r)
        if turns.due():
            await turns.next()

    semaphore = asyncio.Semaphore(SIDE_CONCURRENCY)
    private_paths: dict[str, PrivatePath] = {}  # by private_key
    private_paths_asked: set[str] = set()
    runtimes: dict[str, tuple[str, Maintenance]] = {}
    boot_verdicts: dict[str, BootVerdict | None] = {}  # vm id (lower) -> the serial log's verdict

    async def side(coro_factory, key, sink):
        async with semaphore:
            try:
                sink[key] = await coro_factory()
            except Exception as exc:  # a side fact must not sink the run
                from backend.errors import BackendError

                if not isinstance(exc, BackendError):
                    log.warning("side fact %s failed", key, exc_info=True)
                report.notes.append(str(exc))

    answered_vms = {vm_id for (vm_id, _port), rs in grouped.items() if any(r.status == OPEN and r.protocol_ok for r in rs)}

    def private_key(vm: Vm) -> str:
        # A private path is the VNet's (its gateways and Bastion hosts): read once per VNet.
        return (vm.vnet_id or vm.id).lower()

    def side_jobs() -> Iterator[tuple[Callable[[], Awaitable[Any]], str, dict[str, Any]]]:
        for vm in vms:
            if not has_public_path(vm, inventory) and vm.power_state == "running" and private_key(vm) not in private_paths_asked:
                private_paths_asked.add(private_key(vm))
                yield functools.partial(backend.private_path, vm), private_key(vm), private_paths
            wants_runtime = vm.power_state == "running" and (len(vms) <= RUNTIME_FOR_ALL_LIMIT or vm.id.lower() not in answered_vms)
            if wants_runtime and vm.agent_status == "Unknown":
                yield functools.partial(backend.vm_runtime, vm), vm.id.lower(), runtimes
            if vm.power_state == "running" and vm.boot_diagnostics.enabled and vm.id.lower() not in answered_vms:
                # Runs but does not answer: did its OS boot at all? (the serial log from boot diagnostics)
                yield functools.partial(boot_verdict, backend, vm), vm.id.lower(), boot_verdicts

    # A fixed pool pulling from one generator, as iter_probes does: a background sweep of
    # 10,000 VMs made a task per side fact (19,500 of them waiting on the semaphore, about
    # 60 MB, in the soak).
    jobs = side_jobs()

    async def side_worker() -> None:
        for factory, key, sink in jobs:
            await side(factory, key, sink)

    await asyncio.gather(*(side_worker() for _ in range(SIDE_CONCURRENCY)))
    report.runtimes, report.boot_verdicts = runtimes, boot_verdicts

    if request.from_azure:
        await _network_watcher(backend, inventory, vms, grouped, answered_vms, report, semaphore)

    for vm in vms:
        if turns.due():
            await turns.next()  # diagnosed a few ms per turn of the loop, as they were planned
        runtime = runtimes.get(vm.id.lower())
        for port in default_ports(vm, request.extra_ports):
            facts = Facts(
                vm=vm,
                port=port,
                results=tuple(grouped.get((vm.id.lower(), port), ())),
                nsg=vm_flow_verdict(vm, inventory, port, source),
                has_public_path=has_public_path(vm, inventory),
                private_requested=request.private,
                ip_changes=tuple(report.changes.get(vm.id, ())),
                private_path=private_paths.get(private_key(vm)),
                events=inventory.events,
                connectivity=report.checks.get((vm.id.lower(), port)),
                agent_status=runtime[0] if runtime else None,
                maintenance=runtime[1] if runtime else None,
                **boot_facts(boot_verdicts.get(vm.id.lower())),
            )
            diagnosis = diagnose(facts)
            report.diagnoses.append(diagnosis)
            if on_diagnosis is not None:
                on_diagnosis(diagnosis)
    report.elapsed_s = time.perf_counter() - started
    return report


async def boot_verdict(backend: BootDiagnostics, vm: Vm) -> BootVerdict | None:
    """The verdict of the VM's serial log (boot diagnostics), or None when there is no log."""
    from backend import bootdiag

    data = await backend.boot_diagnostics(vm, screenshot=False)
    if data.serial_log is None:
        return None
    if len(data.serial_log) <= INLINE_LOG_CHARS:
        return bootdiag.analyze(data.serial_log, vm.os_type)
    # The guest's text, possibly megabytes of it: analysed in a worker thread, never on the event loop.
    return await asyncio.to_thread(bootdiag.analyze, data.serial_log, vm.os_type)


def boot_facts(verdict: BootVerdict | None) -> dict[str, Any]:
    """diagnose.Facts fields from a boot verdict."""
    if verdict is None:
        return {}
    return {"boot_problem": verdict.problem, "boot_repair": verdict.repair if verdict.problem else (), "boot_notes": verdict.notes}


async def _network_watcher(
    backend: NetworkDiagnostics,
    inventory: Inventory,
    vms: Sequence[Vm],
    grouped: dict[tuple[str, int], list[ProbeResult]],
    answered_vms: set[str],
    report: Report,
    semaphore: asyncio.Semaphore,
) -> None:
    async def one(vm: Vm, port: int) -> None:
        source_vm = pick_source_vm(inventory, vm)
        if source_vm is None:
            report.notes.append(f"{vm.name}: no running VM nearby to check from inside Azure")
            return
        same_vnet = (
            next((n.subnet_id for n in source_vm.nics if n.subnet_id), "").lower().rsplit("/subnets/", 1)[0]
            == next((n.subnet_id for n in vm.nics if n.subnet_id), "").lower().rsplit("/subnets/", 1)[0]
        )
        async with semaphore:
            try:
                if same_vnet:
                    check = await backend.check_connectivity(source_vm, port, destination=vm)
                else:
                    # From another VNet the VM is reached like from the Internet: its public endpoint.
                    first = next(iter(grouped.get((vm.id.lower(), port), ())), None)
                    if first is None:
                        return
                    address = first.address or first.target.host
                    check = await backend.check_connectivity(source_vm, first.target.port, address=address)
            except Exception as exc:
                report.notes.append(f"{vm.name}: {exc}")
                return
        report.checks[(vm.id.lower(), port)] = check

    tasks = []
    for vm in vms:
        if vm.power_state != "running" or vm.id.lower() in answered_vms:
            continue
        for vm_id, port in list(grouped):
            if vm_id == vm.id.lower():
                tasks.append(one(vm, port))
        if not has_public_path(vm, inventory):
            for port in default_ports(vm):
                tasks.append(one(vm, port))
    await asyncio.gather(*tasks)
