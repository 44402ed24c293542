"""fix-nsg: the recovery for the blocked-by-NSG verdict.

Default: a temporary allow rule for the operator's source address (given: an address or a
CIDR; from AZTRIAGE_SOURCE_IP; the demo's; or detected, backend.source_address, when this
machine's address on the route to the VM is public; ``*``/Internet/0.0.0.0/0
only with a typed confirmation that says so) for the VM's RDP/SSH port, at a free
priority above the rule that denies it, in each NSG where a deny sits (subnet and/or
NIC). The rule's name carries the run id and its description says which run made it,
for which VM and until when; it is written to the ledger before it is created, and
``aztriage runs --release RUN_ID`` (or the run's undo) deletes exactly those rules.

Option (``disable_rule``): delete the blocking rule itself. Destructive (typed name):
it stops denying every source, not only the operator's; the rule as it was is captured
in the journal before the delete, and the run's undo puts it back.

The plan is evaluated with the Connectivity diagnosis's own evaluator
(``backend.network.evaluate_inbound``) against each NSG's whole rule set after the
change: a change that would leave the port denied anyway (another rule still wins)
is refused, with that rule named.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend import mapping, source_address
from backend.adapter import RecoveryBackend
from backend.errors import BackendError
from backend.models import NetworkSecurityGroup, SecurityRule, Vm, id_name
from backend.network import Flow, NsgDecision, Source, evaluate_inbound, evaluate_nsg, inbound_rules
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan as make_plan
from backend.recovery.steps import poll_until, preflight_step, protocol_name, reach_step, remote_port
from backend.safetext import safe_json
from backend.source_address import ASK, SourceGuess

SCENARIO = "fix-nsg"
RULE_KIND = "security-rule"
DEFAULT_HOURS = 4
MAX_HOURS = 72
MIN_PRIORITY, MAX_PRIORITY = 100, 4096  # the priorities a custom rule can take
WIDE_SOURCES = {"*": "*", "internet": "Internet", "0.0.0.0/0": "0.0.0.0/0", "any": "*"}
DESCRIPTION_LIMIT = 140  # Azure's limit on a rule's description


def wide_confirmation(port: int) -> str:
    """What the operator types to allow a port from every address on the internet."""
    return f"allow {port} from anywhere"


def rule_name(run_id: str, port: int) -> str:
    return f"aztriage-{run_id}-allow-{port}"


def describe_rule(run_id: str, vm_name: str, source: str, port: int, until: datetime) -> str:
    """Who made the rule and until when, in the rule itself (Azure keeps 140 characters)."""
    head = f"aztriage run {run_id} (fix-nsg"
    tail = f"): temporary allow {source} to {port} until {until:%Y-%m-%d %H:%M} UTC; remove: aztriage runs --release {run_id}"
    room = DESCRIPTION_LIMIT - len(head) - len(tail) - 1
    if room >= 4:
        head += " " + (vm_name if len(vm_name) <= room else vm_name[: room - 1] + "~")
    return (head + tail)[:DESCRIPTION_LIMIT]


# --- what the plan is built from ---------------------------------------------------------------


def _primary_nic(docs: list[dict[str, Any]], vm_model: dict[str, Any]) -> dict[str, Any] | None:
    refs = ((vm_model.get("properties") or {}).get("networkProfile") or {}).get("networkInterfaces") or ()
    primary = next((r.get("id") for r in refs if (r.get("properties") or {}).get("primary")), None) or (refs[0].get("id") if refs else None)
    for doc in docs:
        if primary and (doc.get("id") or "").lower() == primary.lower():
            return doc
    return docs[0] if docs else None


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The NSGs of the VM's primary NIC and of its subnet, and the operator's address when it
    can be known without asking the internet (AZTRIAGE_SOURCE_IP; the demo's emulator says it; this
    machine's public address on the route to the VM), with where it came from or why it is not known."""
    nic = _primary_nic(documents.get("nics") or [], documents["model"])
    network: dict[str, Any] = {"nic_id": None, "subnet_id": None, "nic_nsg_id": None, "subnet_nsg_id": None, "nsgs": [], "unreadable": []}
    if nic is not None:
        props = nic.get("properties") or {}
        network["nic_id"] = nic.get("id")
        network["nic_nsg_id"] = (props.get("networkSecurityGroup") or {}).get("id")
        configs = props.get("ipConfigurations") or ()
        subnet_id = ((configs[0].get("properties") or {}).get("subnet") or {}).get("id") if configs else None
        network["subnet_id"] = subnet_id
        if subnet_id:
            subnet = await backend.get_subnet(subnet_id)
            network["subnet_nsg_id"] = (((subnet or {}).get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
        for nsg_id in (network["subnet_nsg_id"], network["nic_nsg_id"]):
            if nsg_id and all((d.get("id") or "").lower() != nsg_id.lower() for d in network["nsgs"]):
                doc = await backend.get_nsg(nsg_id)
                if doc is None:
                    network["unreadable"].append(nsg_id)
                else:
                    network["nsgs"].append(doc)
    guess = await detect_source(backend, route_target(nic, documents.get("public_ips") or ()))
    network["detected_source"], network["source_origin"] = guess.address, guess.origin
    documents["network"] = network


def route_target(nic: dict[str, Any] | None, public_ips: Any) -> str | None:
    """The address the operator reaches the VM on: its primary NIC's public IP, else its private one."""
    configs = ((nic or {}).get("properties") or {}).get("ipConfigurations") or ()
    addresses = {(p.get("id") or "").lower(): ((p.get("properties") or {}).get("ipAddress")) for p in public_ips}
    for cfg in configs:
        pip_id = (((cfg.get("properties") or {}).get("publicIPAddress") or {}).get("id") or "").lower()
        if addresses.get(pip_id):
            return str(addresses[pip_id])
    for cfg in configs:
        private = (cfg.get("properties") or {}).get("privateIPAddress")
        if private:
            return str(private)
    return None


async def detect_source(backend: RecoveryBackend, target: str | None) -> SourceGuess:
    """The operator's address and where it came from: AZTRIAGE_SOURCE_IP; on the demo, the
    emulator's; elsewhere the kernel's address on the route to the VM (source_address.detect:
    no traffic, no outside service), used only when it is public."""
    from backend.connectivity import SOURCE_ENV, fetch_emulator_guests

    if os.environ.get(SOURCE_ENV):
        return SourceGuess(os.environ[SOURCE_ENV].strip(), f"from {SOURCE_ENV}")
    if getattr(backend.settings, "demo", False):
        guests = await fetch_emulator_guests(backend.settings)
        address = (guests or {}).get("client_address")
        return SourceGuess(address, "the demo's address for you") if address else SourceGuess(None, "The demo's emulator does not say your address")
    if target is None:
        return SourceGuess(None, "The VM has no address to find this machine's route to, so the address Azure sees cannot be detected")
    return source_address.detect(target)


# --- the source -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceChoice:
    prefix: str  # what goes into the rule's sourceAddressPrefix
    wide: bool  # every address on the internet
    samples: tuple[Source, ...]  # the sources the evaluator is asked about
    address: Source  # the one the blocking rule is named for

    def label(self) -> str:
        return "anywhere (every internet address)" if self.wide else self.prefix


def parse_source(text: str, rules: list[SecurityRule], detected: str | None) -> SourceChoice:
    """An address, a CIDR, or */Internet/0.0.0.0/0. Raises PlanError (one sentence)."""
    value = text.strip()
    wide = WIDE_SOURCES.get(value.lower())
    if wide:
        internet = Source.parse("Internet")
        return SourceChoice(wide, True, (internet,), internet)
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise PlanError(f"--source-ip {value!r} is neither an IP address, a CIDR range (203.0.113.0/24) nor * / Internet") from None
    if network.num_addresses == 1:
        address = Source.parse(str(network.network_address))
        return SourceChoice(str(network.network_address), False, (address,), address)
    # A range: the evaluator is asked about its ends, the operator's own address inside it, and
    # the first address of every part of it that a rule for this port names, so that a rule
    # covering only part of the range is seen.
    picks = [network.network_address, network.broadcast_address]
    if detected:
        try:
            own = ipaddress.ip_address(detected)
            if own.version == network.version and own in network:
                picks.insert(0, own)
        except ValueError:
            pass
    for rule in rules:
        for prefix in rule.source_prefixes:
            try:
                part = ipaddress.ip_network(prefix.strip(), strict=False)
            except ValueError:
                continue
            if part.version == network.version and part.overlaps(network):
                picks.append(max(part.network_address, network.network_address))
    samples = tuple(Source.parse(str(a)) for a in dict.fromkeys(picks))
    return SourceChoice(str(network), False, samples, samples[0])


# --- the analysis -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One NSG that denies the port: what blocks it and what the plan does there."""

    level: str  # subnet / nic
    nsg: NetworkSecurityGroup
    nsg_doc: dict[str, Any]  # as ARM returned it (a deleted rule is restored from it)
    blocking: tuple[SecurityRule, ...]  # the deny rules that decide for the sampled sources (first: the operator's)
    priority: int | None  # the allow rule's priority (None: no free priority above the blocking rule)

    @property
    def where(self) -> str:
        return f"{'subnet' if self.level == 'subnet' else 'NIC'} NSG {self.nsg.name}"

    @property
    def rule(self) -> SecurityRule:
        return self.blocking[0]


def _free_priority(nsg: NetworkSecurityGroup, below: int) -> int | None:
    used = {r.priority for r in nsg.rules if r.direction.lower() == "inbound"}
    for priority in range(min(below, MAX_PRIORITY + 1) - 1, MIN_PRIORITY - 1, -1):
        if priority not in used:
            return priority
    return None


def _rule_text(rule: SecurityRule) -> str:
    kind = "default rule" if rule.default else "rule"
    return f"{kind} {rule.name} (priority {rule.priority})"


def allow_rule(name: str, priority: int, prefix: str, destination: str | None, port: int) -> SecurityRule:
    return SecurityRule(
        name=name,
        priority=priority,
        direction="Inbound",
        access="Allow",
        protocol="Tcp",
        source_prefixes=(prefix,),
        destination_prefixes=(destination or "*",),
        destination_ports=(str(port),),
    )


def allow_body(prefix: str, destination: str | None, port: int, priority: int, description: str) -> dict[str, Any]:
    return {
        "properties": {
            "description": description,
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": str(port),
            "sourceAddressPrefix": prefix,
            "destinationAddressPrefix": destination or "*",
            "access": "Allow",
            "priority": priority,
            "direction": "Inbound",
        }
    }


@dataclass(frozen=True)
class Analysis:
    vm: Vm
    port: int
    destination: str | None
    source: SourceChoice
    subnet_nsg: NetworkSecurityGroup | None
    nic_nsg: NetworkSecurityGroup | None
    levels: tuple[Level, ...]
    blockers: tuple[str, ...]

    def flow(self, source: Source) -> Flow:
        dest = ipaddress.ip_address(self.destination) if self.destination else None
        return Flow(source, dest, self.port)

    def after(self, changed: dict[str, NetworkSecurityGroup]) -> list[tuple[Source, NsgDecision]]:
        """(source, deciding NSG) for every sampled source still denied once `changed` replaces NSGs."""
        subnet = changed.get("subnet", self.subnet_nsg)
        nic = changed.get("nic", self.nic_nsg)
        out = []
        for source in self.source.samples:
            verdict = evaluate_inbound(self.flow(source), subnet, nic)
            if verdict.blocking is not None:
                out.append((source, verdict.blocking))
        return out


def analyse(facts: VmFacts, source_text: str | None, *, disable: bool) -> Analysis:
    vm = facts.vm
    port, _ = remote_port(vm)
    network = safe_json(facts.documents.get("network") or {})
    raw = {(d.get("id") or "").lower(): d for d in (facts.documents.get("network") or {}).get("nsgs") or ()}
    nsgs = {(d.get("id") or "").lower(): mapping.network_security_group(d) for d in network.get("nsgs") or ()}
    subnet_nsg = nsgs.get((network.get("subnet_nsg_id") or "").lower())
    nic_nsg = nsgs.get((network.get("nic_nsg_id") or "").lower())
    nic = next((n for n in vm.nics if n.primary), None) or (vm.nics[0] if vm.nics else None)
    destination = nic.private_ips[0] if nic is not None and nic.private_ips else None
    detected = network.get("detected_source")
    text = source_text or detected
    if not text:
        why = network.get("source_origin") or "fix-nsg needs your public source address, and aztriage does not ask a service on the internet for it"
        raise PlanError(f"{why}: {ASK}")
    rules = [r for n in (subnet_nsg, nic_nsg) if n is not None for r in inbound_rules(n)]
    source = parse_source(text, rules, detected)
    blockers: list[str] = []
    for nsg_id in network.get("unreadable") or ():
        blockers.append(f"NSG {id_name(nsg_id)} could not be read: its rules cannot be evaluated")
    if nic is None:
        blockers.append(f"{vm.name} has no network interface")
    levels: list[Level] = []
    for level, nsg in (("subnet", subnet_nsg), ("nic", nic_nsg)):
        if nsg is None:
            continue
        denying: list[SecurityRule] = []
        for sample in source.samples:
            decision = evaluate_nsg(nsg, Flow(sample, ipaddress.ip_address(destination) if destination else None, port), level, nsg.id)
            if not decision.allowed and decision.rule is not None and decision.rule not in denying:
                denying.append(decision.rule)
        if not denying:
            continue
        ceiling = min(r.priority for r in denying)
        priority = None if disable else _free_priority(nsg, ceiling)
        levels.append(Level(level, nsg, raw.get(nsg.id.lower()) or {}, tuple(denying), priority))
    analysis = Analysis(vm, port, destination, source, subnet_nsg, nic_nsg, tuple(levels), ())
    name = protocol_name(remote_port(vm)[1])
    if not levels and not blockers:
        blockers.append(
            f"no NSG denies {name} (port {port}) from {source.label()}: the subnet and NIC NSGs already allow it, so the cause is elsewhere (see the VM's verdict)"
        )
    changed: dict[str, NetworkSecurityGroup] = {}
    for lv in levels:
        if disable:
            defaults = [r for r in lv.blocking if r.default]
            if defaults:
                blockers.append(
                    f"the {lv.where} denies port {port} by Azure's {_rule_text(defaults[0])}, which cannot be deleted: use the temporary allow rule instead"
                )
                continue
            changed[lv.level] = dataclasses.replace(lv.nsg, rules=tuple(r for r in lv.nsg.rules if r not in lv.blocking))
        elif lv.priority is None:
            blockers.append(
                f"no priority is free above {_rule_text(min(lv.blocking, key=lambda r: r.priority))} in the {lv.where} (custom rules take {MIN_PRIORITY}-{MAX_PRIORITY}): "
                "an allow rule there would be decided after it"
            )
        else:
            new = allow_rule("aztriage-allow", lv.priority, source.prefix, destination, port)
            changed[lv.level] = dataclasses.replace(lv.nsg, rules=(*lv.nsg.rules, new))
    if levels and not blockers:
        for sample, decision in analysis.after(changed):
            what = "deleting the blocking rule" if disable else "the new allow rule"
            blockers.append(
                f"{what} would be shadowed: from {sample.label}, the {'subnet' if decision.level == 'subnet' else 'NIC'} NSG "
                f"{decision.nsg_name} would still deny port {port} by {_rule_text(decision.rule) if decision.rule else 'a rule it could not read'}"
            )
            break
    return dataclasses.replace(analysis, blockers=tuple(blockers))


# --- steps ----------------------------------------------------------------------------------------


def _find(doc: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    for item in ((doc or {}).get("properties") or {}).get("securityRules") or ():
        if (item.get("name") or "").lower() == name.lower():
            return item
    return None


def _state(item: dict[str, Any] | None) -> str:
    return ((item or {}).get("properties") or {}).get("provisioningState") or ""


async def _settled_nsg(ctx: StepContext, nsg_id: str, rule: str) -> dict[str, Any] | None:
    """The NSG once the rule named is not in the middle of a write (a write interrupted by a
    crash goes on in Azure: wait for its end rather than send another)."""
    return await poll_until(
        lambda: ctx.backend.get_nsg(nsg_id), lambda doc: _state(_find(doc, rule)).lower() not in ("updating", "deleting", "creating"), ctx.settings
    )


def _level_allows(analysis: Analysis, lv: Level, doc: dict[str, Any]) -> NsgDecision | None:
    """None when the NSG as it is now allows the port from every sampled source, else its denial."""
    nsg = mapping.network_security_group(safe_json(doc))
    for source in analysis.source.samples:
        decision = evaluate_nsg(nsg, analysis.flow(source), lv.level, nsg.id)
        if not decision.allowed:
            return decision
    return None


def _allow_step(analysis: Analysis, lv: Level, hours: int) -> Step:
    port, nsg_id = analysis.port, lv.nsg.id
    priority = lv.priority or 0
    source = analysis.source
    dest = analysis.destination or "*"
    overridden = ", ".join(f"{r.name} (priority {r.priority})" for r in lv.blocking)
    scope = (
        f"The {lv.where} filters every VM of its subnets; the rule's destination is {analysis.vm.name}'s address {dest} only, so no other VM is opened."
        if lv.level == "subnet"
        else f"The rule's destination is {analysis.vm.name}'s address {dest}: another NIC that shares the {lv.where} is not opened."
    )
    effect = (
        f"Only TCP {port} from {source.label()} to {dest} is affected: {overridden} still decides for every other source, "
        f"and nothing else in {lv.nsg.name} changes. {scope}"
    )
    warnings: tuple[str, ...] = ()
    if source.wide:
        warnings = (f"The rule admits port {port} from every address on the internet until it is released: anyone can try to sign in.",)

    def rule_id(run_id: str) -> str:
        return f"{nsg_id}/securityRules/{rule_name(run_id, port)}"

    async def precondition(ctx: StepContext) -> Check:
        name = rule_name(ctx.run_id, port)
        doc = await _settled_nsg(ctx, nsg_id, name)
        if doc is None:
            return blocked(f"NSG {lv.nsg.name} no longer exists")
        mine = _find(doc, name)
        if mine is not None and _state(mine).lower() == "succeeded":
            return already_done(f"rule {name} is already in {lv.where}")
        for item in (doc.get("properties") or {}).get("securityRules") or ():
            props = item.get("properties") or {}
            if (
                (item.get("name") or "").lower() != name.lower()
                and str(props.get("direction", "")).lower() == "inbound"
                and int(props.get("priority") or 0) == priority
            ):
                return blocked(f"priority {priority} in {lv.where} is now taken by rule {safe_json(item.get('name') or '?')}: make the plan again")
        return ready(f"priority {priority} is free in {lv.where}")

    async def run(ctx: StepContext) -> str:
        name = rule_name(ctx.run_id, port)
        rid = rule_id(ctx.run_id)
        saved = ctx.outputs.get("rule") or {}
        description = saved.get("description")
        if not description:
            until = datetime.now(UTC) + timedelta(hours=hours)
            description = describe_rule(ctx.run_id, analysis.vm.name, source.prefix, port, until)
            await ctx.save(rule={"id": rid, "name": name, "priority": priority, "until": f"{until:%Y-%m-%d %H:%M}", "description": description})
        # The ledger first: a crash between the two leaves a rule the release still finds.
        await ctx.record_resource(rid, kind=RULE_KIND, state="creating", note=description)
        try:
            await ctx.backend.put_security_rule(
                rid, allow_body(source.prefix, analysis.destination, port, priority, description), **await ctx.lro("put", journal_token=False)
            )
        except BackendError:
            there = _find(await ctx.backend.get_nsg(nsg_id), name)
            await ctx.record_resource(rid, kind=RULE_KIND, state="failed" if there else "not-created", note=description)
            raise
        await ctx.record_resource(rid, kind=RULE_KIND, state="keep", note=description)
        return f"rule {name} added to the {lv.where} at priority {priority}: allows {source.label()} to port {port} until {(ctx.outputs.get('rule') or {}).get('until', '?')} UTC"

    async def verify(ctx: StepContext) -> Verification:
        name = rule_name(ctx.run_id, port)
        doc = await _settled_nsg(ctx, nsg_id, name)
        mine = _find(doc, name)
        if doc is None or mine is None or _state(mine).lower() != "succeeded":
            return not_verified(f"rule {name} is not in the {lv.where} ({_state(mine) or 'absent'})")
        if ctx.recognised:  # made by this run before an interruption: it is this run's to release
            await ctx.record_resource(rule_id(ctx.run_id), kind=RULE_KIND, state="keep", note=((mine.get("properties") or {}).get("description") or ""))
        denial = _level_allows(analysis, lv, doc)
        if denial is not None:
            return not_verified(f"the {lv.where} still denies port {port}: {denial.describe()}")
        return verified(f"the {lv.where} allows port {port} from {source.label()} by rule {name} (priority {priority})", rule=name, priority=priority)

    async def undo(ctx: StepContext) -> str:
        return await delete_own_rule(ctx.backend, rule_id(ctx.run_id), ctx.run_id)

    return Step(
        key=f"allow-{lv.level}",
        title=f"Temporary allow rule: {source.label()} to port {port}, priority {priority}, {lv.where}",
        why=f"{_rule_text(lv.rule)} of the {lv.where} denies port {port} from {source.label()}; an allow rule at priority {priority} is decided before it. {effect}",
        changes=(
            f"adds rule aztriage-RUN_ID-allow-{port} to {lv.nsg.name}: Allow TCP {port} from {source.prefix} to {dest}, priority {priority}, "
            f"described with the run id and the time it should go ({hours} h from now)"
        ),
        kind=Kind.CHANGE,
        warnings=warnings,
        undo=f"aztriage runs --release RUN_ID (or --undo RUN_ID) deletes this rule and no other; {lv.rule.name} is untouched throughout",
        precondition=precondition,
        run=run,
        verify=verify,
        undo_run=undo,
        creates=RULE_KIND,
    )


async def delete_own_rule(backend: RecoveryBackend, rule_id: str, run_id: str) -> str:
    """Delete a rule this run made: only while its description still names the run."""
    head, _, name = rule_id.rpartition("/securityRules/")
    doc = await backend.get_nsg(head)
    item = _find(doc, name)
    if item is None:
        return f"rule {name} is already gone"
    if f"aztriage run {run_id}" not in str((item.get("properties") or {}).get("description") or ""):
        raise StepFailed(f"rule {name} in NSG {id_name(head)} no longer says it was made by run {run_id}: it was kept")
    await backend.delete_security_rule(rule_id)
    return f"rule {name} deleted from NSG {id_name(head)}"


def _disable_step(analysis: Analysis, lv: Level) -> Step:
    port, nsg_id = analysis.port, lv.nsg.id
    rule = lv.rule
    captured = _find(lv.nsg_doc, rule.name)
    rid = f"{nsg_id}/securityRules/{rule.name}"
    internet = Source.parse("Internet")
    after = evaluate_nsg(dataclasses.replace(lv.nsg, rules=tuple(r for r in lv.nsg.rules if r.name != rule.name)), analysis.flow(internet), lv.level, lv.nsg.id)
    then = (
        f"after it, {_rule_text(after.rule)} decides port {port} from the internet: {'allowed' if after.allowed else 'denied'}"
        if after.rule is not None
        else "nothing else decides"
    )
    effect = (
        f"Deleting it stops it denying everything it matched (from {','.join(rule.source_prefixes)} to {','.join(rule.destination_prefixes)} "
        f"port {','.join(rule.destination_ports)} {rule.protocol}) for every source, not only yours, and for every NIC the {lv.where} filters; {then}."
    )

    async def precondition(ctx: StepContext) -> Check:
        doc = await ctx.backend.get_nsg(nsg_id)
        if doc is None:
            return blocked(f"NSG {lv.nsg.name} no longer exists")
        item = _find(doc, rule.name)
        if item is None:
            return already_done(f"rule {rule.name} is no longer in the {lv.where}")
        props = item.get("properties") or {}
        if int(props.get("priority") or 0) != rule.priority or str(props.get("access", "")).lower() != "deny":
            return blocked(f"rule {rule.name} in the {lv.where} changed since the plan was made: make the plan again")
        if not ctx.outputs.get("captured_rule"):
            await ctx.save(captured_rule=item)
        return ready(f"rule {rule.name} captured in the journal")

    async def run(ctx: StepContext) -> str:
        await ctx.backend.delete_security_rule(rid, **await ctx.lro("delete"))
        return f"rule {rule.name} (priority {rule.priority}) deleted from the {lv.where}"

    async def verify(ctx: StepContext) -> Verification:
        doc = await _settled_nsg(ctx, nsg_id, rule.name)
        if doc is None:
            return not_verified(f"NSG {lv.nsg.name} could not be read")
        if _find(doc, rule.name) is not None:
            return not_verified(f"rule {rule.name} is still in the {lv.where}")
        denial = _level_allows(analysis, lv, doc)
        if denial is not None:
            return not_verified(f"the {lv.where} still denies port {port}: {denial.describe()}")
        return verified(f"rule {rule.name} is gone; the {lv.where} allows port {port} from {analysis.source.label()}")

    async def undo(ctx: StepContext) -> str:
        item = ctx.outputs.get("captured_rule") or captured
        if not item:
            raise StepFailed(f"rule {rule.name} was not captured: it cannot be restored")
        doc = await ctx.backend.get_nsg(nsg_id)
        if _find(doc, rule.name) is not None:
            return f"rule {rule.name} is already in the {lv.where}"
        props = {k: v for k, v in copy.deepcopy(item.get("properties") or {}).items() if k != "provisioningState"}
        await ctx.backend.put_security_rule(rid, {"properties": props})
        return f"rule {rule.name} restored in the {lv.where} at priority {props.get('priority')}"

    return Step(
        key=f"disable-{lv.level}",
        title=f"Delete the blocking rule {rule.name} from the {lv.where}",
        why=f"{_rule_text(rule)} denies port {port} from {analysis.source.label()}. {effect}",
        changes=f"deletes rule {rule.name} from {lv.nsg.name} (the rule as it is now is kept in the journal first)",
        kind=Kind.DESTRUCTIVE,
        warnings=(f"Removes {rule.name} for everyone: whatever it was put there for (its description: {_description(captured)}) no longer holds.",),
        undo=f"aztriage runs --undo RUN_ID puts {rule.name} back as it was captured",
        precondition=precondition,
        run=run,
        verify=verify,
        undo_run=undo,
    )


def _description(item: dict[str, Any] | None) -> str:
    text = safe_json(((item or {}).get("properties") or {}).get("description") or "")
    return text or "none"


# --- the plan -----------------------------------------------------------------------------------------


def _origin(facts: VmFacts, source: SourceChoice) -> str:
    """Where the allowed address came from, when it is the one aztriage found (" (detected: ...)")."""
    network = safe_json(facts.documents.get("network") or {})
    detected, origin = network.get("detected_source"), network.get("source_origin")
    if not (detected and origin) or source.wide:
        return ""
    try:
        same = ipaddress.ip_network(source.prefix, strict=False) == ipaddress.ip_network(str(detected), strict=False)
    except ValueError:
        return ""
    return f" ({origin})" if same else ""


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    disable = bool(params.get("disable_rule"))
    hours = DEFAULT_HOURS if params.get("hours") is None else int(params["hours"])
    if not 1 <= hours <= MAX_HOURS:
        raise PlanError(f"--hours {hours}: the temporary rule can stay 1 to {MAX_HOURS} hours")
    analysis = analyse(facts, params.get("source"), disable=disable)
    port, protocol = remote_port(vm)
    name = protocol_name(protocol)
    blockers = list(analysis.blockers)
    if analysis.source.wide and not disable and params.get("wide_confirmed") != wide_confirmation(port):
        blockers.append(
            f"a rule for {analysis.source.prefix} admits {name} (port {port}) from every address on the internet: "
            f"confirm by typing '{wide_confirmation(port)}' (--confirm-source)"
        )
    steps: list[Step | None] = [preflight_step(facts)]
    details: list[tuple[str, str, str]] = []
    for lv in analysis.levels:
        before = f"denies {port} from {analysis.source.label()}: {lv.rule.name} (priority {lv.rule.priority})"
        if disable:
            if not lv.rule.default:
                steps.append(_disable_step(analysis, lv))
            details.append((lv.where, before, f"{lv.rule.name} deleted (restored by undo)"))
        elif lv.priority is not None:
            steps.append(_allow_step(analysis, lv, hours))
            details.append((lv.where, before, f"allows it: aztriage rule at priority {lv.priority}, for {hours} h"))
    steps.append(reach_step(facts))
    params_out = {"source": analysis.source.prefix, "disable_rule": disable, "hours": hours}
    if analysis.source.wide:
        params_out["wide_confirmed"] = params.get("wide_confirmed")
    where = " and ".join(lv.where for lv in analysis.levels) or "no NSG"
    if disable:
        summary = f"Delete the rule that denies {name} (port {port}) to {vm.name} in the {where}; undo restores it as captured."
    else:
        summary = (
            f"Let {name} (port {port}) from {analysis.source.label()}{_origin(facts, analysis.source)} through to {vm.name}: a temporary allow rule in the {where}, "
            f"above the rule that denies it, for {hours} h; aztriage runs --release RUN_ID deletes it."
        )
    return make_plan(
        SCENARIO,
        "Fix the NSG rule" + (" (delete the blocking rule)" if disable else " (temporary allow rule)"),
        facts,
        steps,
        summary,
        blockers=blockers,
        details=tuple(details),
        params=params_out,
    )


def unavailable(vm: Vm) -> str | None:
    if not vm.nics:
        return f"{vm.name} has no network interface"
    return None
