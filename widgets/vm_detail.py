"""Everything about one VM on one scrollable page: state, health and what to
do about it, maintenance, disks (with the data-loss risk of deleteOption
Delete), NICs, the NSG rules that apply, extensions, and where it lives."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from backend.backup import BackupBook, age
from backend.models import Inventory, NetworkSecurityGroup, SecurityRule, Vm, id_name
from backend.shellcmd import break_token
from widgets import fmt
from widgets.plain import add_plain_row
from widgets.scroll_panel import ScrollPanel

TONE_STYLE = {"ok": "green", "warn": "yellow", "bad": "bold red", "muted": "dim", None: ""}


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


class Unbroken:
    """A value that is never cut inside a name, a GUID or an address: when it is longer than the
    width it gets (an ARM id, a portal link, an image URN, a disk's name), it is broken only
    before one of its separators, and each piece starts with it. Rich folds it anywhere."""

    def __init__(self, value: str, separators: str = "/?&#", style: str | Style = "") -> None:
        self.value, self.separators, self.style = value, separators, style

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        # Narrowest: its longest piece between two separators; widest: the whole value on one line.
        pieces = re.split(f"(?=[{re.escape(self.separators)}])|(?<= )", self.value) if self.value else [""]
        return Measurement(min(options.max_width, max(len(p) for p in pieces)), max(len(self.value), 1))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for piece in break_token(self.value, options.max_width, self.separators):
            yield Text(piece, style=self.style, no_wrap=True, overflow="crop")


def _kv(rows: list[tuple[str, RenderableType | str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        add_plain_row(grid, key, value)
    return grid


def _table(*headers: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False, expand=False)
    for h in headers:
        table.add_column(h, overflow="fold")
    return table


def _toned(text: str, tone: str | None) -> Text:
    return Text(text, style=TONE_STYLE.get(tone, ""))


def overview(vm: Vm, subscription_name: str, pending: bool = False) -> Table:
    """`pending`: the VM's instance view (agent, fault domain) is still being read."""
    power, power_tone = fmt.power_cell(vm)
    agent, agent_tone = fmt.agent_cell(vm, pending)
    sla = vm.sla_shape
    if vm.availability_set:
        sla += f" ({id_name(vm.availability_set)}"
        if pending and not vm.instance_view_read:
            sla += f", fault domain {fmt.PENDING}"
        elif vm.platform_fault_domain is not None:
            sla += f", fault domain {vm.platform_fault_domain}"
        if vm.platform_update_domain is not None:
            sla += f", update domain {vm.platform_update_domain}"
        sla += ")"
    if sla == "none":
        sla = "none: no zone and no availability set, a host failure takes it down"
    boot = vm.boot_diagnostics
    if not boot.enabled:
        boot_text = _toned("OFF: no screenshot or serial log to diagnose a boot failure", "warn")
    elif boot.managed_storage:
        boot_text = _toned("on (managed storage)", "ok")
    else:
        boot_text = _toned(f"on ({boot.storage_uri})", "ok")
    agent_text = _toned(agent if agent != "-" else f"{vm.agent_status} (VM not running)", agent_tone)
    if vm.agent_version:
        agent_text.append(f"  version {vm.agent_version}", style="dim")
    rows: list[tuple[str, RenderableType | str]] = [
        ("Subscription", f"{subscription_name} ({vm.subscription_id})" if subscription_name != vm.subscription_id else vm.subscription_id),
        ("Resource group", vm.resource_group),
        ("Location", vm.location + (f", zone {','.join(vm.zones)}" if vm.zones else "")),
        ("Size", vm.size + (f"  ({vm.priority})" if vm.priority and vm.priority != "Regular" else "")),
        ("OS", " ".join(p for p in (vm.os_type, f"gen {vm.hyper_v_generation}" if vm.hyper_v_generation else "", vm.security_type or "") if p)),
        *([("Image", Unbroken(vm.image, ":/"))] if vm.image else []),
        ("Power", _toned(power, power_tone)),
        ("Provisioning", _toned(vm.provisioning_state, None if vm.provisioning_state == "Succeeded" else "bad")),
        ("SLA shape", _toned(sla, "warn" if vm.sla_shape == "none" else None)),
        ("Agent", agent_text),
        ("Boot diagnostics", boot_text),
        ("Private IPs", ", ".join(vm.private_ips) or "-"),
        ("Public IPs", ", ".join(vm.public_ips) or "-"),
    ]
    if vm.fqdn:
        rows.append(("FQDN", Unbroken(vm.fqdn, ".")))
    if vm.computer_name or vm.admin_username:
        rows.append(("Computer", " ".join(p for p in (vm.computer_name or "", f"admin {vm.admin_username}" if vm.admin_username else "") if p)))
    return _kv(rows)


def health_section(vm: Vm, now: datetime) -> RenderableType:
    h = vm.health
    state, tone = fmt.health_cell(vm)
    if h is None:
        return _kv([("State", _toned("UNKNOWN", "muted")), ("Reason", "Resource Health reported nothing for this VM.")])
    rows: list[tuple[str, RenderableType | str]] = [("State", _toned(state, tone))]
    if h.reason_type:
        from backend.health import reason_label

        rows.append(("Reason type", reason_label(h.reason_type)))
    if h.title and h.title != h.availability_state:
        rows.append(("Title", h.title))
    if h.summary:
        rows.append(("Summary", h.summary))
    if h.detailed_status:
        rows.append(("Detail", h.detailed_status))
    if h.since:
        rows.append(("Since", f"{fmt.when(h.since)} ({fmt.ago(h.since, now)})"))
    if h.resolution_eta:
        rows.append(("Resolution ETA", f"{fmt.when(h.resolution_eta)} ({fmt.ago(h.resolution_eta, now)})"))
    if h.recommended_actions:
        actions = Text()
        for n, action in enumerate(h.recommended_actions, 1):
            if n > 1:
                actions.append("\n")
            actions.append(f"{n}. {action.action}")
        rows.append(("Recommended", actions))
    if h.recently_resolved_summary:
        rows.append(("Recently resolved", f"{h.recently_resolved_summary} (resolved {fmt.when(h.recently_resolved_at)})"))
    return _kv(rows)


def maintenance_section(vm: Vm, now: datetime, pending: bool = False) -> RenderableType:
    m = vm.maintenance
    if pending and not vm.instance_view_read:
        return Text(f"{fmt.PENDING} (the instance view is being read)", style="dim")
    if not m.pending:
        text = "none pending"
        if m.last_result:
            text += f" (last: {m.last_result}{': ' + m.last_message if m.last_message else ''})"
        return Text(text, style="dim")
    rows: list[tuple[str, RenderableType | str]] = [("Pending", _toned("YES", "warn"))]
    if m.window_start or m.window_end:
        rows.append(("Self-service window", f"{fmt.when(m.window_start)} to {fmt.when(m.window_end)} (starts {fmt.ago(m.window_start, now)})"))
    if m.maintenance_window_start or m.maintenance_window_end:
        rows.append(("Scheduled window", f"{fmt.when(m.maintenance_window_start)} to {fmt.when(m.maintenance_window_end)}"))
    from backend.verdict import maintenance_window

    open_now, when = maintenance_window(vm, now)
    rows.append(("Start it now?", _toned("yes: " + when + " (Perform maintenance)", "ok") if open_now else "no: " + when))
    if m.last_result:
        rows.append(("Last result", m.last_result + (f": {m.last_message}" if m.last_message else "")))
    return _kv(rows)


def backup_section(vm: Vm, book: BackupBook | None, now: datetime) -> RenderableType:
    """Azure Backup: the vault and policy that protect the VM and how old its last good backup is
    (measured from when the vaults were read), or that nothing protects it."""
    if book is None:
        return Text(f"{fmt.PENDING} (reading the Recovery Services vaults of its subscription)", style="dim")
    item = book.item(vm.id)
    if item is None:
        if book.known(vm.id):
            return _toned(
                "NOT PROTECTED: no Recovery Services vault of its subscription lists it (the checklist's azure-backup finding says how to protect it)", "warn"
            )
        sub = vm.subscription_id.lower()
        return _toned(f"not read: {book.errors.get(sub, 'the vaults of its subscription were not read')}", "muted")
    at = book.read_at or now
    problems = item.problems(at)
    good = item.last_good
    state_tone = "bad" if item.stopped else ("ok" if item.protection_state.lower() == "protected" else None)
    rows: list[tuple[str, RenderableType | str]] = [
        ("Vault", f"{item.vault} (resource group {item.resource_group})"),
        ("Policy", f"{item.policy}: {item.schedule}; a good backup may be {item.allowed_age.total_seconds() / 3600:.0f} h old at most"),
        ("Protection", _toned(f"{item.protection_state}, health {item.health or 'unknown'}", state_tone)),
        ("Last backup", _toned(item.last_backup(at), "bad" if item.last_backup_status.lower() == "failed" else None)),
        ("Last good backup", _toned(f"{age(at - good)} ago" if good else "none yet", "bad" if item.stale(at) else "ok")),
    ]
    if problems:
        rows.append(("Problem", _toned("; ".join(problems), "bad")))
        rows.append(("Next", f"aztriage recover --vm {vm.name} --scenario backup-now (Recovery pane: Back up now (Azure Backup))"))
    return _kv(rows)


def _facts(*facts: RenderableType | str) -> Text:
    """Short facts on one line, between dots; a line too long breaks between them, never inside one."""
    text = Text()
    for fact in facts:
        if text:
            text.append(" · ")
        text.append(fact if isinstance(fact, Text) else Text(str(fact)))
    return text


def disks_section(vm: Vm) -> Table:
    """A card per disk: where it is and its name on a line of their own (a name is never cut), then its facts."""
    rows: list[tuple[str, RenderableType | str]] = []
    for disk in vm.disks:
        where = "OS" if disk.lun is None else f"LUN {disk.lun}"
        if disk.ephemeral:
            where += " (ephemeral)"
        sku = disk.sku or ("VHD " + (disk.storage_account or "") if not disk.managed else "-")
        size = f"{disk.size_gb} GB" if disk.size_gb else "-"
        if disk.data_loss_risk:
            delete = Text("on VM delete: Delete ! DATA LOSS RISK", style="bold red")
        else:
            delete = Text(f"on VM delete: {disk.delete_option}", style="green")
        rows.append((where, Group(Unbroken(disk.name, "_-."), _facts(sku, size, f"caching {disk.caching or '-'}", delete))))
    return _kv(rows)


def nics_section(vm: Vm, inventory: Inventory | None) -> Table:
    """A card per NIC: its name, its addresses (each whole), the FQDN, the NSGs and what happens on delete."""
    rows: list[tuple[str, RenderableType | str]] = []
    for nic in vm.nics:
        name = nic.name + (" (primary)" if nic.primary and len(vm.nics) > 1 else "")
        lines: list[RenderableType] = [Unbroken(name, "-_.")]
        extras = []
        if nic.accelerated_networking:
            extras.append("accelerated networking")
        if nic.load_balancer_inbound_nat_rule_ids:
            extras.append(f"{len(nic.load_balancer_inbound_nat_rule_ids)} LB NAT rule(s)")
        public = [(p.ip_address or "(none)") + (f" [{p.allocation}]" if p.allocation else "") for p in nic.public_ips]
        lines.append(_facts(f"private {', '.join(nic.private_ips) or '-'}", f"public {', '.join(public) or '-'}", *extras))
        for fqdn in (p.fqdn for p in nic.public_ips if p.fqdn):
            lines.append(Unbroken(f"FQDN {fqdn}", "."))
        nsg = Text("NSG ") + (Text(id_name(nic.nsg_id)) if nic.nsg_id else Text("none", style="yellow"))
        subnet_nsg = Text("subnet NSG ") + (Text(id_name(nic.subnet_nsg_id)) if nic.subnet_nsg_id else Text("none", style="dim"))
        delete = Text(f"on VM delete: {nic.delete_option}", style="yellow" if nic.delete_option.lower() == "delete" else "")
        lines.append(_facts(nsg, subnet_nsg, delete))
        rows.append(("NIC", Group(*lines)))
    return _kv(rows)


def _rule_row(table: Table, rule: SecurityRule) -> None:
    access = Text("Allow", style="green") if rule.access.lower() == "allow" else Text("DENY", style="bold red")
    name: RenderableType = Unbroken(rule.name, "-_.")
    if rule.default:
        name = Group(name, Text("(default)", style="dim"))
    add_plain_row(
        table,
        str(rule.priority),
        name,
        access,
        rule.protocol,
        Unbroken(",".join(rule.source_prefixes), ","),  # an address or a range is never cut
        Unbroken(",".join(rule.destination_ports), ","),
    )


def nsg_rules(nsg: NetworkSecurityGroup, direction: str = "Inbound") -> Table:
    table = _table("PRIO", "RULE", "ACCESS", "PROTO", "SOURCE", "PORTS")
    for rule in nsg.all_rules(direction):
        _rule_row(table, rule)
    return table


def nsg_section(vm: Vm, inventory: Inventory | None) -> RenderableType:
    """Inbound rules in the order Azure evaluates them: the subnet's NSG first, then the NIC's."""
    parts: list[RenderableType] = []
    seen: set[str] = set()
    for nic in vm.nics:
        for level, nsg_id in (("subnet", nic.subnet_nsg_id), ("NIC", nic.nsg_id)):
            if not nsg_id:
                continue
            key = f"{level}:{nsg_id.lower()}"
            if key in seen:
                continue
            seen.add(key)
            nsg = inventory.nsg(nsg_id) if inventory else None
            title = Text(f"{level} NSG {id_name(nsg_id)}", style="bold")
            if len(vm.nics) > 1:
                title.append(f" (NIC {nic.name})", style="dim")
            parts.append(title)
            if nsg is None:
                parts.append(Text("  not visible in this inventory", style="yellow"))
            else:
                parts.append(nsg_rules(nsg))
        if not nic.nsg_id and not nic.subnet_nsg_id:
            parts.append(Text(f"NIC {nic.name}: no NSG on the NIC or its subnet, all inbound traffic is allowed", style="yellow"))
    if not parts:
        return Text("no NICs", style="dim")
    parts.insert(0, Text("Inbound, in priority order; traffic must pass the subnet NSG and then the NIC NSG.", style="dim"))
    return Group(*parts)


def extensions_section(vm: Vm) -> RenderableType:
    """A card per extension: its name, then its type, version, state and status."""
    if not vm.extensions:
        return Text("none", style="dim")
    rows: list[tuple[str, RenderableType | str]] = []
    for ext in vm.extensions:
        state = ext.provisioning_state or "-"
        kind = f"{ext.publisher}.{ext.type}" if ext.publisher and ext.type else (ext.type or "-")
        facts = _facts(f"version {ext.version or '-'}", _toned(state if state == "Succeeded" else state.upper(), None if state == "Succeeded" else "bad"))
        if ext.status:
            facts.append(f" · {ext.status}")
        rows.append(("", Group(Unbroken(ext.name, "-_."), Unbroken(kind, "."), facts)))
    return _kv(rows)


def verdict_section(verdict: Any) -> RenderableType:
    """The VM's one verdict (backend.verdict), as every pane has it: what is wrong, the next
    step, and the evidence (a recent change among it: who, what, when)."""
    from widgets.vm_table import VERDICT_TONES

    text = Text()
    text.append(f"{verdict.label}", style=TONE_STYLE.get(VERDICT_TONES.get(verdict.id), "") or "bold")
    text.append(f"  {verdict.summary}")
    text.append("\nNext: ", style="bold")
    text.append(verdict.next_step)
    for line in verdict.evidence:
        text.append("\n  • ")
        text.append(line, style="bold" if line.startswith("changed ") else "")
    return text


def vm_detail_renderable(vm: Vm, inventory: Inventory | None, now: datetime, verdict: Any = None, backup: BackupBook | None = None) -> Group:
    names = {s.subscription_id.lower(): s.display_name for s in inventory.subscriptions} if inventory else {}
    pending = inventory is not None and vm.id.lower() in inventory.views_pending
    power, power_tone = fmt.power_cell(vm)
    health, health_tone = fmt.health_cell(vm)
    title = Text()
    title.append(vm.name, style="bold")
    title.append("  ")
    title.append(power, style=TONE_STYLE[power_tone])
    title.append("  ")
    title.append(health, style=TONE_STYLE[health_tone])
    parts: list[RenderableType] = [title]
    if verdict is not None:
        parts += [_heading("Verdict"), verdict_section(verdict), _heading("Overview")]
    parts += [
        overview(vm, names.get(vm.subscription_id.lower(), vm.subscription_id), pending),
        _heading("Health"),
        health_section(vm, now),
        _heading("Planned maintenance"),
        maintenance_section(vm, now, pending),
        _heading("Azure Backup"),
        backup_section(vm, backup, now),
        _heading("Disks"),
        disks_section(vm),
        _heading("Network interfaces"),
        nics_section(vm, inventory),
        _heading("NSG rules that apply"),
        nsg_section(vm, inventory),
        _heading("Extensions"),
        extensions_section(vm),
    ]
    if vm.tags:
        parts += [_heading("Tags"), Text(", ".join(f"{k}={v}" for k, v in vm.tags))]
    parts += [_heading("Where"), _kv([("Resource id", Unbroken(vm.id)), ("Portal", Unbroken(vm.portal_url, style=Style(link=vm.portal_url)))])]
    return Group(*parts)


class VmDetail(ScrollPanel):
    """The detail panel of one VM; `show` redraws it from a (new) inventory. It has the
    focus, and its top border says how much is below (the page is longer than 24 lines)."""

    DEFAULT_CSS = """
    VmDetail { padding: 0 1; border-top: solid $panel-lighten-2; }
    VmDetail > Static { width: 100%; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(name="VM", reach=None, **kwargs)
        self.vm: Vm | None = None

    def compose(self):
        yield Static(id="vm-detail-body", markup=False)

    def show(self, vm: Vm | None, inventory: Inventory | None, now: datetime, verdict: Any = None, backup: BackupBook | None = None) -> None:
        self.vm = vm
        body = self.query_one("#vm-detail-body", Static)
        if vm is None:
            body.update(Text("This VM is no longer in the inventory (deleted, or its subscription failed to load).", style="yellow"))
        else:
            body.update(vm_detail_renderable(vm, inventory, now, verdict, backup))
