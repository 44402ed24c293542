"""Pane 3, Connectivity: can RDP/SSH be reached, is it really RDP or SSH, and
if not, why.

One row per VM and port. `p` probes the selected VMs (the rows marked with
space, else the one under the cursor), `f` the rows the filter shows, `a`
every VM. The table fills in as results arrive; the panel below shows the
selected row's verdict, its evidence and a ready-to-use connection line.
`o` opens the recommended recovery in the Recovery pane, `i` the serial
console when the verdict puts the fault in the guest, `z` asks Network
Watcher to try the port from another VM inside Azure, `w` writes an .rdp
file with the current address, `c` copies the connection line.

Probes run in a worker on the app's event loop (sockets, no threads); the
table is redrawn at most every 50 ms however fast results come in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widgets import Static

from backend.diagnose import NO_PUBLIC_PATH, SCENARIO_TITLES, Diagnosis
from backend.models import Inventory
from backend.probe import OPEN, ProbeResult
from backend.verdict import GUEST_SIDE, change_line
from tui.messages import VerdictsChanged
from tui.screens.base import StateRowsMixin, TablePane
from widgets.connectivity_table import ConnectivityTable, PortState, port_row, row_key
from widgets.fast_table import FastTable
from widgets.scroll_panel import ScrollPanel


class ConnectivityScreen(StateRowsMixin, TablePane[ConnectivityTable]):
    PANE_ID = "connectivity"
    table_type, table_id = ConnectivityTable, "ports"
    detail_id, detail_name = "probe-detail", "evidence"
    filter_placeholder = "filter: name, port, status, verdict, recovery, IP"
    row = staticmethod(port_row)  # StateRowsMixin
    CSS_PATH = "connectivity.tcss"
    _azure_answer_for: PortState | None = None  # the row whose Network Watcher answer the panel keeps in view

    BINDINGS = [
        Binding("p", "probe_selected", "Probe", id="connectivity.probe"),
        Binding("F", "probe_filtered", "Probe shown", show=False, id="connectivity.probe_filtered"),
        Binding("a", "probe_all", "Check all", show=False, id="connectivity.probe_all"),
        Binding("space", "toggle_mark", "Mark", show=False, id="connectivity.mark"),
        Binding("o", "open_recovery", "Recover", id="connectivity.open_recovery"),
        Binding("z", "check_from_azure", "Azure", id="connectivity.from_azure"),
        Binding("i", "console", "Serial console", show=False, id="connectivity.console"),
        Binding("x", "write_rdp", "Export", show=False, id="connectivity.write_rdp"),
        Binding("v", "toggle_private", "View", show=False, id="connectivity.private"),
        Binding("A", "source_ip", "Source address", show=False, id="connectivity.source_ip"),
        Binding("c", "copy_connect", "Copy", show=False, id="connectivity.copy"),
        Binding("slash", "filter", "Filter", show=False, id="connectivity.filter"),
        Binding("escape", "clear_filter", "Clear", id="connectivity.clear_filter"),
    ]

    # Probe settings (tests make them short).
    probe_timeout = 2.0
    probe_attempts = 2
    probe_concurrency = 256

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, PortState] = {}
        self.probing = False
        self._probing_ids: frozenset[str] = frozenset()  # the VMs this pane's probe is running on
        self.probe_error = ""
        self.probed_at: datetime | None = None
        self.last_notes: list[str] = []
        # The CLI's --private and --source-ip, for this session: private IPs probed too (from a network
        # that reaches the VNet, e.g. over the VPN), and the source the NSGs are evaluated for.
        self.private = False
        self.source_ip: str | None = None
        self._flush_timer = None

    # --- rows ------------------------------------------------------------------------

    def show_inventory(self, inventory: Inventory) -> None:
        """Every VM gets its rows; what was probed before stays (same VM id and port)."""
        from backend.connectivity import extra_ports
        from backend.network import default_ports

        extras = extra_ports(getattr(self.aztriage.config, "probe_ports", ()))
        fresh: dict[str, PortState] = {}
        for vm in inventory.vms:
            for port in default_ports(vm, extras):
                key = row_key(vm.id, port)
                old = self.states.get(key)
                if old is not None:
                    old.vm = vm
                    fresh[key] = old
                else:
                    fresh[key] = PortState(vm, port)
        self.states = fresh
        self._take_verdicts()
        self._redraw()

    # --- probing -----------------------------------------------------------------------

    def _selected_vm_ids(self) -> list[str]:
        marked = [s.vm.id for s in self.states.values() if s.marked]
        if marked:
            return list(dict.fromkeys(marked))
        state = self.table.cursor_state
        return [state.vm.id] if state is not None else []

    def action_probe_selected(self) -> None:
        self.start_probe(self._selected_vm_ids(), "the selected VMs")

    def action_probe_filtered(self) -> None:
        ids = [row.item.vm.id for row in self.table.visible_rows()]
        self.start_probe(list(dict.fromkeys(ids)), "the VMs shown")

    def action_probe_all(self) -> None:
        self.start_probe(list(dict.fromkeys(s.vm.id for s in self.states.values())), "every VM")

    def action_check_from_azure(self) -> None:
        state = self.table.cursor_state
        if state is None:
            return
        self.start_probe([state.vm.id], f"{state.vm.name} from inside Azure", from_azure=True)

    def probe_vm(self, vm: Any) -> None:
        """Another pane's `p`: the cursor on the VM's row (the filter cleared if it hides it), and probe it."""
        keys = [key for key, state in self.states.items() if state.vm.id.lower() == vm.id.lower()]
        if keys and self.table.filter_text and not any(row.item.vm.id.lower() == vm.id.lower() for row in self.table.visible_rows()):
            self.action_clear_filter()
        if keys:
            self.table.move_cursor_to_key(keys[0])
        self.start_probe([vm.id], vm.name)

    def start_probe(self, vm_ids: list[str], what: str, *, from_azure: bool = False) -> None:
        if self.aztriage.backend is None or self.aztriage.inventory is None:
            self.notify("Still connecting: probe when the inventory has loaded.", severity="warning", timeout=4)
            return
        if not vm_ids:
            self.notify("No VM to probe.", severity="warning", timeout=3)
            return
        if self.probing:
            self.notify("A probe is already running.", timeout=2)
            return
        self.run_probe(vm_ids, from_azure)

    @work(exclusive=True, group="probe", exit_on_error=False)
    async def run_probe(self, vm_ids: list[str], from_azure: bool = False) -> None:
        from backend import connectivity
        from backend.lastknown import LastKnownStore, scope_for

        app = self.aztriage
        backend, inventory = app.backend, app.inventory
        if backend is None or inventory is None:  # the pane offers probes once the inventory has loaded
            return
        vms = [vm for vm in (inventory.vm_by_id(i) for i in vm_ids) if vm is not None]
        wanted = {vm.id.lower() for vm in vms}
        for state in self.states.values():
            if state.vm.id.lower() in wanted:
                state.results.clear()
                state.diagnosis = None
                state.probing = True
        self.probing = True
        self._probing_ids = frozenset(wanted)
        self.probe_error = ""
        self._flush()
        try:
            request = connectivity.Request(
                private=self.private,
                source=self.source_ip or app.config.source_ip,
                extra_ports=connectivity.extra_ports(getattr(app.config, "probe_ports", ())),
                timeout=self.probe_timeout,
                attempts=self.probe_attempts,
                concurrency=self.probe_concurrency,
                from_azure=from_azure,
            )
            env = await connectivity.environment(backend.settings, inventory)
            store = LastKnownStore(scope=scope_for(backend.settings))
            if backend.settings.demo and not app.demo_history_seeded:
                connectivity.seed_demo_history(store, env, inventory)
                app.demo_history_seeded = True
            report = await connectivity.run(backend, inventory, vms, request, env=env, store=store, on_result=self._on_result, on_diagnosis=self._on_diagnosis)
        except Exception as exc:  # shown in the pane; the rows keep what arrived
            self.probe_error = f"probe failed: {exc}"
            self.notify(f"The probe failed: {exc}", severity="error", timeout=8)
            return
        finally:
            self.probing = False
            self._probing_ids = frozenset()
            for state in self.states.values():
                state.probing = False
            self._flush()
        self.probed_at = app.now()
        app.record_probe(report, vms)  # every pane's verdict follows what this probe found
        self.last_notes = report.notes
        for note in report.notes[:3]:
            self.notify(note, severity="warning", timeout=6)
        changed = [c for changes in report.changes.values() for c in changes]
        for change in changed[:3]:
            self.notify(f"{change.vm_name}: {change.describe()}", title="address changed", severity="warning", timeout=10)
        self._flush()
        if from_azure:
            self._show_azure_checks(report)

    def _show_azure_checks(self, report: Any) -> None:
        """Network Watcher's answer is the last of the evidence: said at once, and the panel
        scrolled to it, so `z` never looks like nothing happened."""
        checks = [check.describe() for check in report.checks.values()]
        if checks:
            self.notify(checks[0], title="from inside Azure", timeout=8)
        elif not report.notes:  # a note (no VM to check from, a failed check) was shown already
            self.notify("Network Watcher had nothing to check: the port already answers, or no VM in Azure can test it (see the evidence).", timeout=8)
        self._azure_answer_for = self.table.cursor_state
        self.call_after_refresh(self.query_one("#probe-detail-box", ScrollPanel).scroll_end, animate=False)

    def _on_result(self, result: ProbeResult) -> None:
        for port in (result.target.guest_port, result.target.port):
            state = self.states.get(row_key(result.target.vm_id, port)) if port is not None else None
            if state is not None:
                state.results[(result.target.kind, result.target.host.lower(), result.target.port)] = result
                break
        self._schedule_flush()

    def _on_diagnosis(self, diagnosis: Diagnosis) -> None:
        state = self.states.get(row_key(diagnosis.vm_id, diagnosis.port))
        if state is not None:
            state.diagnosis = diagnosis
            state.probing = False
        self._schedule_flush()

    # --- marks, filter ----------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        state = self.table.cursor_state
        if state is None:
            return
        # A VM is probed as a whole: mark every row of it.
        mark = not state.marked
        for s in self.states.values():
            if s.vm.id == state.vm.id:
                s.marked = mark
        self._flush()
        self.table.action_cursor(1)

    def after_filter(self) -> None:
        self.show_detail()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.table.cursor_state
        if action == "open_recovery":
            return state is not None
        if action in ("write_rdp", "copy_connect"):
            return bool(state and state.diagnosis and state.diagnosis.connect)
        if action == "console":
            return self._guest_side() is not None
        return super().check_action(action, parameters)

    @on(FastTable.CursorMoved, "#ports")
    def _cursor_moved(self) -> None:
        self.show_detail()
        self.update_status()
        self.refresh_bindings()

    @on(FastTable.Selected, "#ports")
    def _selected(self, event: FastTable.Selected) -> None:
        # enter on a row that was never probed probes it; otherwise the panel already shows everything.
        state = self.table.cursor_state
        if state is not None and state.diagnosis is None and not state.probing:
            self.start_probe([state.vm.id], state.vm.name)

    # --- recovery, serial console, .rdp, clipboard -------------------------------------

    def _guest_side(self) -> Any:
        """The VM under the cursor when its verdict puts the fault in the guest (its serial console can reach it)."""
        state = self.table.cursor_state
        if state is None:
            return None
        return state.vm if self.aztriage.verdict_for(state.vm).id in GUEST_SIDE else None

    def action_console(self) -> None:
        from tui.screens.serial_console import open_console

        vm = self._guest_side()
        if vm is not None:
            open_console(self, vm)

    def action_open_recovery(self) -> None:
        """The recovery the VM's verdict recommends (the same in every pane), else its list of scenarios."""
        from tui.vm_commands import recover

        state = self.table.cursor_state
        recover(self, state.vm if state is not None else None)

    def action_toggle_private(self) -> None:
        """--private: the next probes try the VMs' private IPs too (from a network that reaches the VNet)."""
        self.private = not self.private
        if self.private:
            self.notify("Probes now try private IPs too: from a network that reaches the VNet (VPN, peering). v turns it off.", timeout=6)
        else:
            self.notify("Probes try public endpoints only.", timeout=4)
        self.show_summary()

    def action_source_ip(self) -> None:
        """--source-ip: the address (or Internet, VirtualNetwork) the NSGs are evaluated for."""
        self.ask_source_ip()

    @work(exclusive=True, group="source-ip", exit_on_error=False)
    async def ask_source_ip(self) -> None:
        from backend.network import Source
        from widgets.text_prompt import TextPrompt

        def check(value: str) -> str:
            Source.parse(value)  # ValueError with one sentence
            return value

        current = self.source_ip or self.aztriage.config.source_ip or ""
        answer = await self.app.push_screen_wait(
            TextPrompt(
                "Source address",
                "Evaluate the NSGs for this source: an IP address, Internet or VirtualNetwork (empty: the configured one).",
                value=current,
                check=check,
                placeholder="203.0.113.7",
            )
        )
        if answer is None:
            return
        self.source_ip = answer or None
        self.notify(f"NSGs are evaluated for {self.source_ip or self.aztriage.config.source_ip or 'Internet'}: probe again to see.", timeout=5)
        self.show_summary()

    def action_write_rdp(self) -> None:
        from backend.probe import connect_host, write_rdp_file

        state = self.table.cursor_state
        best = self._answering(state)
        if state is None or best is None or best.target.protocol != "rdp":
            self.notify("Only a Windows VM whose RDP answers gets an .rdp file.", severity="warning", timeout=4)
            return
        try:
            host = connect_host(best, state.results.values())  # the VM's DNS name when it has one, so the file outlives an address change
            path = write_rdp_file(self.aztriage.export_dir(), state.vm.name, host, best.connect_port or best.target.port, state.vm.admin_username)
        except OSError as exc:
            self.notify(f"The .rdp file cannot be written: {exc.strerror or exc}.", severity="error")
            return
        self.notify(f"Wrote {path}", title=".rdp file", timeout=10)

    def action_copy_connect(self) -> None:
        state = self.table.cursor_state
        if state is None or state.diagnosis is None or not state.diagnosis.connect:
            return
        from widgets.copy_dialog import CopyDialog

        items = [(f"connect line {i + 1}" if len(state.diagnosis.connect) > 1 else "connect line", line) for i, line in enumerate(state.diagnosis.connect)]
        self.app.push_screen(CopyDialog(f"Copy: how to reach {state.vm.name}", items, file_stem=f"connect-{state.vm.name}", write=self.aztriage.export_text))

    @staticmethod
    def _answering(state: PortState | None) -> ProbeResult | None:
        if state is None:
            return None
        best = state.best()
        return best if best is not None and best.status == OPEN and best.protocol_ok else None

    # --- text --------------------------------------------------------------------------

    def show_summary(self) -> None:
        states = list(self.states.values())
        vms = {s.vm.id for s in states}
        done = [s for s in states if s.diagnosis is not None]
        text = Text()
        text.append(f" {len(vms)} VMs" + (f" · {len(states)} ports" if len(states) != len(vms) else ""), style="bold")
        if self.probing:
            waiting = sum(1 for s in states if s.probing)
            text.append(f" · probing, {waiting} to go")
        if done:
            from backend.diagnose import REACHABLE

            ok = sum(1 for s in done if s.diagnosis is not None and s.diagnosis.verdict == REACHABLE)
            text.append(f" · {len(done)} diagnosed: {ok} reachable")
            bad = len(done) - ok
            if bad:
                text.append(f", {bad} NOT", style="bold")
        if self.probed_at is not None and not self.probing:
            text.append(f" · {self.probed_at:%H:%M:%S}")
        source = self.source_ip or self.aztriage.config.source_ip or "Internet"
        if self.private:
            text.append(" · private IPs too")
        text.append(f" · source {source}")
        self.query_one("#summary", Static).update(text)

    def show_detail(self) -> None:
        panel = self.query_one("#probe-detail", Static)
        state = self.table.cursor_state
        panel.update(detail_text(state, self.aztriage.verdict_for(state.vm), self.aztriage.now()) if state is not None else "")
        box = self.query_one("#probe-detail-box", ScrollPanel)
        if state is None or state is not self._azure_answer_for or box.has_focus:
            self._azure_answer_for = None  # another row, or the operator scrolls: the panel is theirs
        else:
            # Network Watcher's answer stays in view while the evidence above it grows (the
            # VM's recent change is read after the probe and comes in at the top).
            self.call_after_refresh(box.scroll_end, animate=False)

    @on(VerdictsChanged)
    def _verdicts_changed(self) -> None:
        """Another pane, the background probe or a recovery learned something: the rows of
        those VMs take the port diagnoses it found, and the panel shows the new verdict."""
        self._take_verdicts()
        self._schedule_flush()

    def _take_verdicts(self) -> None:
        """Each row's diagnosis, and the probe result behind it (its endpoint, status and time),
        are the session's evidence for that VM and port, wherever it was found (this pane's probe,
        the background probe, before the pane was first opened); the rows of a probe this pane is
        running keep what it says (it becomes evidence when it ends)."""
        from backend.verdict import fresh

        book = self.aztriage.verdicts
        running = self._probing_ids
        for state in self.states.values():
            if state.probing or (running and state.vm.id.lower() in running):
                continue
            evidence = fresh(state.vm, book.evidence.get(state.vm.id.lower()))
            if evidence is None:
                state.diagnosis = state.seen = None  # none yet, forgotten (a recovery ran) or stale (the VM started or stopped)
                continue
            found = next((d for d in evidence.diagnoses if d.port == state.port), None)
            if found is not None:
                state.diagnosis = found
            state.seen = evidence.result_for(state.port)

    def update_status(self) -> None:
        text = Text()
        if self.probe_error:
            text.append(" " + self.probe_error, style="bold")
        elif self.aztriage.inventory is None:
            text.append(" loading inventory…" if not self.aztriage.load_error else " no inventory")
        else:
            table = self.table
            if table.filter_text:
                text.append(f" {table.row_count} of {table.total_count} rows match ")
                text.append(f"/{table.filter_text}", style="bold")
                text.append(" ·")
            marked = len({s.vm.id for s in self.states.values() if s.marked})
            if marked:
                text.append(f" {marked} marked ·")
        # The keys, whole at 80 columns: shorter when the filter or the marks take the start of the line.
        if text.plain:
            text.append(" p probe · o recover · z Azure · c copy · x .rdp")
        else:
            text.append(" p probe · F shown · a all · space mark · o recover · z Azure · c copy · x .rdp")
        self.set_status(text)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        commands: list[tuple[str, str, Any]] = [
            ("probe: selected VMs", "Probe the marked VMs (or the one under the cursor)", self.action_probe_selected),
            ("probe: VMs shown", "Probe every VM the filter shows", self.action_probe_filtered),
            ("probe: every VM", "Probe RDP/SSH of every VM in the inventory", self.action_probe_all),
            ("view: filter connectivity", "Type to filter by name, port, status, verdict, recovery or IP", self.action_filter),
            (
                "probe: private IPs " + ("off" if self.private else "on"),
                "Also probe the VMs' private IPs, from a network that reaches the VNet (VPN, peering): the CLI's --private (v)",
                self.action_toggle_private,
            ),
            ("probe: source address", "The address the NSGs are evaluated for: the CLI's --source-ip (A)", self.action_source_ip),
        ]
        state = self.table.cursor_state
        if state is not None:
            vm = state.vm
            commands.append(
                (f"probe: {vm.name} from inside Azure", "Network Watcher's connectivity check from another VM in Azure", self.action_check_from_azure)
            )
            verdict = self.aztriage.verdict_for(vm)
            if verdict.scenario:
                commands.append(
                    (f"recovery: {verdict.scenario} for {vm.name}", SCENARIO_TITLES.get(verdict.scenario, verdict.next_step), self.action_open_recovery)
                )
            if verdict.id in GUEST_SIDE:
                commands.append(
                    (f"vm: serial console of {vm.name}", "The fault is in the guest: type into it through Azure Serial Console (i)", self.action_console)
                )
            if self._answering(state) is not None and state.port == 3389:
                commands.append((f"export: .rdp file for {vm.name}", "Write an .rdp file with the VM's DNS name (or its address)", self.action_write_rdp))
        return commands


def detail_text(state: PortState, verdict: Any = None, now: Any = None) -> Any:
    vm = state.vm
    head = Text()
    head.append(f"{vm.name}", style="bold")
    head.append(f" · port {state.port} · {vm.os_type} · {vm.power_state} · {vm.availability_state}")
    d = state.diagnosis
    lines: list[Any] = [head]
    if verdict is not None:
        # The VM's one verdict, as every pane shows it; the port's own diagnosis follows.
        line = Text()
        line.append("VERDICT ", style="bold")
        line.append(f"{verdict.label}: {verdict.summary}", style="bold")
        if verdict.scenario:
            line.append(f"  → o: {verdict.scenario}", style="bold")
        line.append(f"\n  next: {verdict.next_step}")
        if verdict.id in GUEST_SIDE:
            line.append("\n  or fix it in the guest: i opens its serial console")
        if verdict.change is not None:
            # What changed lately (resourcechanges): the operator's first question on a bridge.
            line.append("\n  ")
            line.append(change_line(verdict.change, now) if now is not None else verdict.change.what, style="bold")
        lines.append(line)
    if d is None:
        lines.append(Text("probing…" if state.probing else "not probed yet: p probes this VM, a probes every VM", style="italic"))
        return RichGroup(*lines)
    port_line = Text()
    port_line.append(f"port {state.port}: ", style="dim")
    port_line.append(d.summary)
    lines.append(port_line)
    for evidence_line in d.evidence:
        if evidence_line.startswith("recommended: "):
            continue
        lines.append(Text(f"  • {evidence_line}"))
    if d.connect:
        lines.append(Text("connect: " + "   ".join(d.connect) + "   (c copies" + (", x writes an .rdp file)" if state.port == 3389 else ")")))
    elif d.verdict == NO_PUBLIC_PATH:
        lines.append(Text("connect: over the VPN or through Bastion, to " + (", ".join(vm.private_ips) or "its private address")))
    return RichGroup(*lines)
