"""upgrade-public-ip: make the VM's public IP Static and, when it is Basic, upgrade it to Standard.

Basic SKU public IPs were retired on 30 September 2025, and a Dynamic one changes its
address whenever the VM is deallocated (the ip-changed verdict: stale .rdp files, bookmarks
and DNS records). The plan follows Microsoft Learn's "Upgrade a public IP address":

1. make it Static while it is still associated: Azure keeps the address it has now (a
   Dynamic IP that is disassociated first loses its address, so this comes first);
2. make sure an NSG will admit RDP/SSH: a Standard IP is closed to inbound traffic unless an
   NSG on the NIC or its subnet allows it (when neither has one, the plan creates one that
   allows only the VM's RDP/SSH port, and attaches it to the NIC with the association);
3. disassociate it from the NIC's IP configuration (Azure refuses to change the SKU of an IP
   in use: PublicIPAddressInUseCannotUpdate);
4. upgrade the SKU to Standard (the address is kept);
5. associate it again, on the same IP configuration;
6. probe RDP/SSH on the final address.

A Dynamic IP that has no address now (its VM is deallocated) cannot keep one: Azure gives it a
new static address, and the plan says so. Every step re-reads the IP and the NIC before acting,
so a run resumed after a crash recognises what already happened.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.adapter import RecoveryBackend
from backend.models import ResourceId, Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import SETTLE_TIMEOUT, poll_interval, preflight_step, protocol_name, reach_step, remote_port

RETIRED = (
    "Basic SKU public IP addresses were retired on 30 September 2025: Azure no longer supports them, and upgrading to Standard is the way Azure documents."
)
NSG_RULE_PRIORITY = 300


def _props(doc: dict[str, Any] | None) -> dict[str, Any]:
    return (doc or {}).get("properties") or {}


def _sku(doc: dict[str, Any] | None) -> str:
    return str(((doc or {}).get("sku") or {}).get("name") or "Basic")


def _allocation(doc: dict[str, Any] | None) -> str:
    return str(_props(doc).get("publicIPAllocationMethod") or "Dynamic")


@dataclass(frozen=True)
class Layout:
    """Names and ids of one plan, computed once from the VM's documents."""

    pip_id: str
    pip_name: str
    nic_id: str
    nic_name: str
    config_name: str
    address: str | None  # the address it has now (None: a dynamic IP of a deallocated VM)
    sku: str  # Basic / Standard
    allocation: str  # Dynamic / Static
    fqdn: str | None
    nsgs: tuple[str, ...]  # names of the NSGs on the NIC and its subnet
    new_nsg_id: str | None  # the NSG the plan creates when there is none

    @property
    def basic(self) -> bool:
        return self.sku.lower() == "basic"

    @property
    def dynamic(self) -> bool:
        return self.allocation.lower() == "dynamic"

    @property
    def config_id(self) -> str:
        return f"{self.nic_id}/ipConfigurations/{self.config_name}"


def _candidate(vm: Vm) -> str | None:
    """The name of the first public IP that is Basic or Dynamic."""
    for nic in vm.nics:
        for pip in nic.public_ips:
            if (pip.sku or "Basic").lower() == "basic" or (pip.allocation or "").lower() == "dynamic":
                return pip.name
    return None


def ip_choices(vm: Vm) -> list[tuple[str, str, str | None]]:
    """(name, what it is now, why it needs no change or None) for each public IP of the VM's NICs."""
    out = []
    for nic in vm.nics:
        for pip in nic.public_ips:
            sku, allocation = pip.sku or "Basic", pip.allocation or "Dynamic"
            now = f"{pip.ip_address or 'no address'}, {sku}, {allocation}, NIC {nic.name}"
            done = sku.lower() != "basic" and allocation.lower() != "dynamic"
            out.append((pip.name, now, "already Standard and Static" if done else None))
    return out


def unavailable(vm: Vm) -> str | None:
    if not any(nic.public_ips for nic in vm.nics):
        return f"{vm.name} has no public IP address"
    if _candidate(vm) is None:
        return f"the public IP of {vm.name} is already Standard and Static"
    return None


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The subnets of the VM's NICs: whether an NSG there would admit traffic to a Standard IP."""
    subnets: list[dict[str, Any]] = []
    for nic in documents.get("nics") or ():
        for cfg in _props(nic).get("ipConfigurations") or ():
            subnet_id = (_props(cfg).get("subnet") or {}).get("id")
            if subnet_id and subnet_id.lower() not in {(s.get("id") or "").lower() for s in subnets}:
                doc = await backend.get_subnet(subnet_id)
                if doc is not None:
                    subnets.append(doc)
    documents["subnets"] = subnets


def layout(facts: VmFacts, params: dict[str, Any]) -> Layout:
    vm = facts.vm
    wanted = params.get("public_ip") or _candidate(vm)
    pips = {(p.get("id") or "").lower(): p for p in facts.documents.get("public_ips") or ()}
    subnets = {(s.get("id") or "").lower(): s for s in facts.documents.get("subnets") or ()}
    for nic in facts.documents.get("nics") or ():
        for cfg in _props(nic).get("ipConfigurations") or ():
            pip = pips.get(((_props(cfg).get("publicIPAddress") or {}).get("id") or "").lower())
            if pip is None or (wanted and (pip.get("name") or "").lower() != str(wanted).lower()):
                continue
            nsgs = []
            nic_nsg = (_props(nic).get("networkSecurityGroup") or {}).get("id")
            if nic_nsg:
                nsgs.append(ResourceId.parse(nic_nsg).name)
            subnet = subnets.get(((_props(cfg).get("subnet") or {}).get("id") or "").lower())
            subnet_nsg = (_props(subnet).get("networkSecurityGroup") or {}).get("id")
            if subnet_nsg:
                nsgs.append(ResourceId.parse(subnet_nsg).name)
            rid = ResourceId.parse(nic["id"])
            new_nsg = None
            if not nsgs and _sku(pip).lower() == "basic":
                new_nsg = (
                    f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}/providers/Microsoft.Network/networkSecurityGroups/{vm.name}-nsg"
                )
            return Layout(
                pip_id=pip["id"],
                pip_name=pip.get("name") or ResourceId.parse(pip["id"]).name,
                nic_id=nic["id"],
                nic_name=nic.get("name") or rid.name,
                config_name=cfg.get("name") or "ipconfig1",
                address=_props(pip).get("ipAddress"),
                sku=_sku(pip),
                allocation=_allocation(pip),
                fqdn=(_props(pip).get("dnsSettings") or {}).get("fqdn"),
                nsgs=tuple(nsgs),
                new_nsg_id=new_nsg,
            )
    if wanted and params.get("public_ip"):
        raise PlanError(f"{vm.name} has no public IP named {wanted!r}")
    raise PlanError(unavailable(vm) or f"{vm.name} has no public IP this plan can change")


# --- fresh reads ------------------------------------------------------------------------------


async def _pip(ctx: StepContext, lay: Layout) -> dict[str, Any]:
    doc = await ctx.backend.get_public_ip_document(lay.pip_id)
    if doc is None:
        raise StepFailed(f"public IP {lay.pip_name} no longer exists")
    return doc


async def _nic(ctx: StepContext, lay: Layout) -> dict[str, Any]:
    doc = await ctx.backend.get_nic(lay.nic_id)
    if doc is None:
        raise StepFailed(f"NIC {lay.nic_name} no longer exists")
    return doc


async def _settled(ctx: StepContext, read: Callable[[StepContext, Layout], Awaitable[dict[str, Any]]], lay: Layout) -> dict[str, Any]:
    """The resource once no operation runs on it (a run resumed after a crash may find its own
    write still Updating); still busy after SETTLE_TIMEOUT, it is returned as it is."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    said = False
    while True:
        doc = await read(ctx, lay)
        if not _busy(doc) or time.monotonic() >= deadline:
            return doc
        if not said:
            said = True
            await ctx.log(f"{doc.get('name') or 'the resource'} is {_busy(doc)}: waiting for the operation on it to end before going on")
        await asyncio.sleep(poll_interval(ctx.settings))


async def _settled_pip(ctx: StepContext, lay: Layout) -> dict[str, Any]:
    return await _settled(ctx, _pip, lay)


async def _settled_nic(ctx: StepContext, lay: Layout) -> dict[str, Any]:
    """The NIC once its write has ended: Azure moves the public IP's association (the IP's
    ``ipConfiguration``) only when the NIC's operation succeeds, so while it runs the IP still
    names the configuration the NIC no longer references."""
    return await _settled(ctx, _nic, lay)


def _config(nic: dict[str, Any], lay: Layout) -> dict[str, Any]:
    for cfg in _props(nic).get("ipConfigurations") or ():
        if (cfg.get("name") or "").lower() == lay.config_name.lower():
            return cfg
    raise StepFailed(f"NIC {lay.nic_name} no longer has the IP configuration {lay.config_name}")


def _references(nic: dict[str, Any], lay: Layout) -> bool:
    """Whether the NIC's IP configuration names the public IP (what the NIC write changes)."""
    ref = (_props(_config(nic, lay)).get("publicIPAddress") or {}).get("id") or ""
    return str(ref).lower() == lay.pip_id.lower()


def _holder(pip: dict[str, Any]) -> str:
    return str((_props(pip).get("ipConfiguration") or {}).get("id") or "")


def _associated_here(pip: dict[str, Any], lay: Layout) -> bool:
    return _holder(pip).lower() == lay.config_id.lower()


def _busy(pip: dict[str, Any]) -> str | None:
    state = str(_props(pip).get("provisioningState") or "")
    return state if state.lower() in ("updating", "deleting") else None


async def _kept_address(ctx: StepContext, pip: dict[str, Any]) -> Verification | None:
    """Not verified when the address this run started with is gone (None: it is still there)."""
    before = ctx.plan.params.get("address_before")
    now = _props(pip).get("ipAddress")
    if before and now != before:
        return not_verified(f"the address changed from {before} to {now or 'none'}", address=now)
    return None


async def _put_static(ctx: StepContext, lay: Layout, operation: str, *, sku: str | None = None) -> dict[str, Any]:
    """Write the public IP as it is now, made Static (and of `sku`); Azure's answer."""
    body = copy.deepcopy(await _pip(ctx, lay))
    if sku:
        body["sku"] = {"name": sku, "tier": "Regional"}
    body.setdefault("properties", {})["publicIPAllocationMethod"] = "Static"
    return await ctx.backend.put_public_ip(lay.pip_id, body, **await ctx.lro(operation, journal_token=False))


async def _settled_as(ctx: StepContext, lay: Layout, read: Callable[[dict[str, Any]], str], wanted: str) -> tuple[dict[str, Any], Verification | None]:
    """The public IP once no operation runs on it, and why it is not verified: `read` of it is
    not `wanted`, an operation still runs, or the address this run started with is gone (None: it is verified)."""
    pip = await _settled_pip(ctx, lay)
    if read(pip).lower() != wanted.lower() or _busy(pip):
        return pip, not_verified(f"{lay.pip_name} is {read(pip)} ({_props(pip).get('provisioningState')})")
    return pip, await _kept_address(ctx, pip)


async def _nic_then_pip(ctx: StepContext, lay: Layout) -> tuple[dict[str, Any], dict[str, Any], Check | None]:
    """The NIC, then the public IP, for a step that writes the NIC; blocked while an operation
    still runs on the NIC (None: free). The NIC first, and settled: a run killed while its NIC
    write ran finds the NIC without the IP (the write is in Azure) while the IP still names the
    configuration until that write ends."""
    nic = await _settled_nic(ctx, lay)
    if _busy(nic):
        return nic, {}, blocked(f"another operation is running on NIC {lay.nic_name} ({_busy(nic)}): resume when it has finished")
    return nic, await _pip(ctx, lay), None


# --- steps --------------------------------------------------------------------------------------


def static_step(lay: Layout) -> Step:
    async def precondition(ctx: StepContext) -> Check:
        pip = await _pip(ctx, lay)
        if _allocation(pip).lower() == "static":
            return already_done(f"{lay.pip_name} is Static ({_props(pip).get('ipAddress') or 'no address yet'})")
        if _busy(pip):
            return blocked(f"another operation is running on {lay.pip_name} ({_busy(pip)}): resume when it has finished")
        return ready(f"{lay.pip_name} is {_allocation(pip)}, address {_props(pip).get('ipAddress') or 'none'}")

    async def run(ctx: StepContext) -> str:
        doc = await _put_static(ctx, lay, "static")
        return f"{lay.pip_name} is Static with address {_props(doc).get('ipAddress') or 'none'}"

    async def verify(ctx: StepContext) -> Verification:
        pip, failed = await _settled_as(ctx, lay, _allocation, "Static")
        if failed is not None:
            return failed
        address = _props(pip).get("ipAddress")
        kept = "kept its address" if lay.address else "got a new address"
        return verified(f"{lay.pip_name} is Static and {kept}: {address or 'none'}", address=address)

    if lay.address:
        changes = f"sets {lay.pip_name} to Static allocation; it keeps {lay.address} (Azure keeps the address of an IP made Static while it has one)"
    else:
        changes = f"sets {lay.pip_name} to Static allocation: it has no address now (its VM is deallocated), so Azure gives it a new one; the old address cannot be had back"
    return Step(
        key="static",
        title=f"Make public IP {lay.pip_name} Static",
        why=(
            "A Dynamic address is released whenever the VM is deallocated, which is what made the .rdp files and DNS records stale; "
            "a Static one stays until the IP is deleted. It comes first because a Dynamic IP that is disassociated loses its address."
        ),
        changes=changes,
        kind=Kind.CHANGE,
        undo=f"set {lay.pip_name} back to Dynamic (only while it is Basic; its address is released at the next deallocation)",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def nsg_rule(port: int, protocol: str, vm_name: str) -> dict[str, Any]:
    return {
        "name": f"Allow-{protocol_name(protocol)}",
        "properties": {
            "priority": NSG_RULE_PRIORITY,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": "Internet",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": str(port),
            "description": f"aztriage upgrade-public-ip: {protocol_name(protocol)} to {vm_name} through its Standard public IP",
        },
    }


def create_nsg_step(lay: Layout, facts: VmFacts) -> Step:
    assert lay.new_nsg_id is not None
    nsg_id = lay.new_nsg_id
    name = ResourceId.parse(nsg_id).name
    port, protocol = remote_port(facts.vm)

    async def precondition(ctx: StepContext) -> Check:
        if await ctx.backend.get_nsg(nsg_id) is not None:
            return already_done(f"NSG {name} exists")
        return ready(f"no NSG on NIC {lay.nic_name} or its subnet")

    async def run(ctx: StepContext) -> str:
        await ctx.record_resource(nsg_id, kind="nsg", note=f"admits {protocol_name(protocol)} to {facts.vm.name}'s Standard public IP")
        body = {"location": facts.vm.location, "properties": {"securityRules": [nsg_rule(port, protocol, facts.vm.name)]}}
        await ctx.backend.put_nsg(nsg_id, body, **await ctx.lro("create-nsg", journal_token=False))
        await ctx.record_resource(nsg_id, kind="nsg", state="created", note=f"admits {protocol_name(protocol)} to {facts.vm.name}'s Standard public IP")
        return f"created NSG {name} allowing {protocol_name(protocol)} (TCP {port}) from the Internet"

    async def read(ctx: StepContext, lay: Layout) -> dict[str, Any]:
        return await ctx.backend.get_nsg(nsg_id) or {}

    async def verify(ctx: StepContext) -> Verification:
        # Settled: the NIC write of the association must not meet the NSG's create still running.
        doc = await _settled(ctx, read, lay) or None
        rules = [r for r in _props(doc).get("securityRules") or () if str(_props(r).get("destinationPortRange")) == str(port)]
        if doc is None or not rules or _busy(doc):
            return not_verified(f"NSG {name} does not allow port {port}" if doc is None or not rules else f"NSG {name} is {_busy(doc)}")
        # A run killed while its create ran finds the NSG there on resume: the ledger, which says
        # "creating" (this run sent it), now says created. An NSG this run never sent stays out of it.
        if any(r.resource_id.lower() == nsg_id.lower() and r.state == "creating" for r in ctx.journal.resources(ctx.run_id)):
            await ctx.record_resource(nsg_id, kind="nsg", state="created", note=f"admits {protocol_name(protocol)} to {facts.vm.name}'s Standard public IP")
        return verified(f"NSG {name} allows {protocol_name(protocol)} (TCP {port})")

    return Step(
        key="create-nsg",
        title=f"Create NSG {name} for the Standard public IP",
        why=(
            "A Standard public IP is closed to inbound traffic unless an NSG allows it, and neither the NIC nor its subnet has one: "
            f"without it {protocol_name(protocol)} would stop answering after the upgrade."
        ),
        changes=(
            f"creates NSG {name} in {ResourceId.parse(nsg_id).resource_group} with one rule: allow TCP {port} ({protocol_name(protocol)}) from the Internet; "
            "it is attached to the NIC with the association. The Basic IP admitted every port from the Internet: this admits one"
        ),
        kind=Kind.CHANGE,
        undo=f"detach NSG {name} from NIC {lay.nic_name} and delete it (it is in the run's ledger); with no NSG the Standard IP admits nothing",
        precondition=precondition,
        run=run,
        verify=verify,
        creates="nsg",
    )


def disassociate_step(lay: Layout, vm: Vm) -> Step:
    async def precondition(ctx: StepContext) -> Check:
        nic, pip, busy = await _nic_then_pip(ctx, lay)
        if busy is not None:
            return busy
        if _sku(pip).lower() == "standard":
            return already_done(f"{lay.pip_name} is already Standard")
        if not _references(nic, lay) and (not _holder(pip) or _associated_here(pip, lay)):
            return already_done(f"{lay.pip_name} is not on {lay.nic_name}/{lay.config_name}")
        if not _holder(pip):
            return already_done(f"{lay.pip_name} is not associated")
        if not _associated_here(pip, lay):
            return blocked(f"{lay.pip_name} is now used by {_holder(pip)}, not by {lay.nic_name}")
        if _allocation(pip).lower() != "static":
            return blocked(f"{lay.pip_name} is Dynamic: disassociating it would release its address (the Static step must come first)")
        return ready(f"{lay.pip_name} ({_props(pip).get('ipAddress')}) is on {lay.nic_name}/{lay.config_name}")

    async def run(ctx: StepContext) -> str:
        nic = copy.deepcopy(await _nic(ctx, lay))
        if _references(nic, lay):
            _props(_config(nic, lay)).pop("publicIPAddress", None)
            await ctx.backend.put_nic(lay.nic_id, nic, **await ctx.lro("disassociate", journal_token=False))
        return f"{lay.pip_name} is off {lay.nic_name}/{lay.config_name}"

    async def verify(ctx: StepContext) -> Verification:
        await _settled_nic(ctx, lay)
        pip = await _pip(ctx, lay)
        if _holder(pip):
            return not_verified(f"{lay.pip_name} is still associated with {_holder(pip)}")
        changed = await _kept_address(ctx, pip)
        return changed or verified(f"{lay.pip_name} is disassociated and keeps {_props(pip).get('ipAddress') or 'no address'}")

    return Step(
        key="disassociate",
        title=f"Disassociate {lay.pip_name} from NIC {lay.nic_name}",
        why="Azure does not change the SKU of a public IP that is in use (PublicIPAddressInUseCannotUpdate): it must be off the NIC's IP configuration first.",
        changes=f"removes the public IP from IP configuration {lay.config_name} of NIC {lay.nic_name}; the Static address stays with the IP resource",
        kind=Kind.DESTRUCTIVE,
        warnings=(
            f"From here until the association step, nothing reaches {vm.name} on {lay.address or 'its public address'} and its outbound "
            "connections through that address drop (about a minute).",
        ),
        undo=f"associate it again: NIC {lay.nic_name}, IP configuration {lay.config_name}, public IP {lay.pip_name} (the association step does)",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def upgrade_step(lay: Layout) -> Step:
    async def precondition(ctx: StepContext) -> Check:
        pip = await _pip(ctx, lay)
        if _sku(pip).lower() == "standard":
            return already_done(f"{lay.pip_name} is Standard")
        if _holder(pip):
            return blocked(f"{lay.pip_name} is associated with {_holder(pip)}: Azure refuses to change its SKU")
        if _busy(pip):
            return blocked(f"another operation is running on {lay.pip_name}: resume when it has finished")
        return ready(f"{lay.pip_name} is Basic and free")

    async def run(ctx: StepContext) -> str:
        doc = await _put_static(ctx, lay, "upgrade", sku="Standard")
        return f"{lay.pip_name} is {_sku(doc)} with address {_props(doc).get('ipAddress') or 'none'}"

    async def verify(ctx: StepContext) -> Verification:
        pip, failed = await _settled_as(ctx, lay, _sku, "Standard")
        return failed or verified(f"{lay.pip_name} is Standard and keeps {_props(pip).get('ipAddress') or 'no address'}")

    return Step(
        key="upgrade",
        title=f"Upgrade {lay.pip_name} to the Standard SKU",
        why=RETIRED,
        changes=f"changes the SKU of {lay.pip_name} from Basic to Standard (regional, no zone); Azure keeps the address",
        kind=Kind.CHANGE,
        warnings=("A Standard IP is closed to inbound traffic unless an NSG allows it.",),
        undo=None,
        precondition=precondition,
        run=run,
        verify=verify,
    )


def associate_step(lay: Layout) -> Step:
    nsg_name = ResourceId.parse(lay.new_nsg_id).name if lay.new_nsg_id else None

    def wanted(nic: dict[str, Any]) -> bool:
        nsg = str((_props(nic).get("networkSecurityGroup") or {}).get("id") or "")
        return _references(nic, lay) and (not lay.new_nsg_id or nsg.lower() == lay.new_nsg_id.lower())

    async def precondition(ctx: StepContext) -> Check:
        # As for the disassociation: the NIC tells whether the association was already sent.
        nic, pip, busy = await _nic_then_pip(ctx, lay)
        if busy is not None:
            return busy
        if _associated_here(pip, lay) and wanted(nic):
            return already_done(f"{lay.pip_name} is on {lay.nic_name}/{lay.config_name}")
        if _holder(pip) and not _associated_here(pip, lay):
            return blocked(f"{lay.pip_name} is now used by {_holder(pip)}")
        return ready(f"{lay.pip_name} is free")

    async def run(ctx: StepContext) -> str:
        nic = copy.deepcopy(await _nic(ctx, lay))
        if not wanted(nic):
            _config(nic, lay).setdefault("properties", {})["publicIPAddress"] = {"id": lay.pip_id}
            if lay.new_nsg_id:
                nic.setdefault("properties", {})["networkSecurityGroup"] = {"id": lay.new_nsg_id}
            await ctx.backend.put_nic(lay.nic_id, nic, **await ctx.lro("associate", journal_token=False))
        return f"{lay.pip_name} is on {lay.nic_name}/{lay.config_name} again" + (f", with NSG {nsg_name}" if nsg_name else "")

    async def verify(ctx: StepContext) -> Verification:
        nic = await _settled_nic(ctx, lay)
        pip = await _pip(ctx, lay)
        if not _associated_here(pip, lay):
            return not_verified(f"{lay.pip_name} is not on {lay.nic_name}/{lay.config_name}")
        if lay.new_nsg_id and wanted(nic) and any(r.resource_id.lower() == lay.new_nsg_id.lower() for r in ctx.journal.resources(ctx.run_id)):
            # The NSG this run created guards the NIC now: runs --release keeps it (in use).
            await ctx.record_resource(lay.new_nsg_id, kind="nsg", state="in-use", note=f"guards NIC {lay.nic_name} and its Standard public IP")
        changed = await _kept_address(ctx, pip)
        return changed or verified(f"{lay.pip_name} ({_props(pip).get('ipAddress')}) is on {lay.nic_name} again", address=_props(pip).get("ipAddress"))

    changes = f"puts {lay.pip_name} back on IP configuration {lay.config_name} of NIC {lay.nic_name}"
    if nsg_name:
        changes += f" and attaches NSG {nsg_name} to the NIC"
    return Step(
        key="associate",
        title=f"Associate {lay.pip_name} with NIC {lay.nic_name} again",
        why="The upgraded IP serves the VM again on the same address.",
        changes=changes,
        kind=Kind.CHANGE,
        undo=f"disassociate it (NIC {lay.nic_name}, IP configuration {lay.config_name}, without a public IP)",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def final_address_step(lay: Layout, vm: Vm) -> Step:
    """For a VM that is not running: what the final address is, since nothing answers to probe."""

    async def verify(ctx: StepContext) -> Verification:
        pip = await _settled_pip(ctx, lay)
        address = _props(pip).get("ipAddress")
        if _allocation(pip).lower() != "static" or not address:
            return not_verified(f"{lay.pip_name} is {_allocation(pip)} with address {address or 'none'}")
        return verified(f"{lay.pip_name} is {_sku(pip)} and Static at {address}: {vm.name} keeps it when started", address=address)

    return Step(
        key="final-address",
        title=f"Check the final address of {lay.pip_name}",
        why=f"{vm.name} is {vm.power_state}, so RDP/SSH cannot be probed: the address it will have when started is checked instead.",
        changes="nothing (reads the public IP)",
        kind=Kind.CHECK,
        verify=verify,
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    reason = unavailable(vm)
    if reason and not params.get("public_ip"):
        raise PlanError(reason)
    lay = layout(facts, params)
    port, protocol = remote_port(vm)
    warnings: list[str] = []
    if lay.basic:
        warnings.append(RETIRED)
    if lay.address:
        warnings.append(f"The address {lay.address} is kept: Azure keeps it when a Basic IP is made Static while it has one, and through the SKU upgrade.")
    else:
        warnings.append(
            f"{lay.pip_name} has no address now ({vm.name} is {vm.power_state}, so its Dynamic address was released): Azure gives it a new "
            "static address, and the old one cannot be had back. Update DNS records and saved .rdp/ssh lines."
        )
    if lay.fqdn:
        warnings.append(f"Its DNS name {lay.fqdn} stays and follows the address: connect by that name.")
    steps: list[Step | None] = [preflight_step(facts)]
    if lay.dynamic:
        steps.append(static_step(lay))
    if lay.basic:
        warnings.append(
            f"From the disassociation to the association (about a minute), nothing reaches {vm.name} on its public address and its outbound "
            "connections through that address drop."
        )
        if lay.new_nsg_id:
            warnings.append(
                f"Neither NIC {lay.nic_name} nor its subnet has an NSG, and a Standard IP admits nothing without one: the plan creates "
                f"{ResourceId.parse(lay.new_nsg_id).name}, allowing only {protocol_name(protocol)} (TCP {port}) from the Internet."
            )
            steps.append(create_nsg_step(lay, facts))
        else:
            warnings.append(
                f"A Standard IP admits only what an NSG allows: {', '.join(lay.nsgs)} decide{'s' if len(lay.nsgs) == 1 else ''} what reaches {vm.name}."
            )
        steps += [disassociate_step(lay, vm), upgrade_step(lay), associate_step(lay)]
    steps.append(reach_step(facts) if vm.power_state == "running" else final_address_step(lay, vm))
    before = f"{lay.sku}, {lay.allocation}, {lay.address or 'no address'}"
    after = f"Standard, Static, {lay.address or 'a new address'}" if lay.basic else f"{lay.sku}, Static, {lay.address or 'a new address'}"
    what = "Upgrade to Standard and make Static" if lay.basic else "Make Static"
    return plan(
        "upgrade-public-ip",
        "Static public IP, Standard SKU",
        facts,
        steps,
        f"{what}: public IP {lay.pip_name} of {vm.name}" + (f", keeping {lay.address}" if lay.address else "") + ".",
        warnings=warnings,
        details=((f"public IP {lay.pip_name}", before, after),),
        params={"public_ip": lay.pip_name, "public_ip_id": lay.pip_id, "address_before": lay.address},
    )
