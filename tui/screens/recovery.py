"""Pane 4, Recovery: walk one VM through a recovery, step by step.

Choose a VM (enter), choose a scenario (the recommended one first; those that
cannot be used say why), give what it needs (a size, a password in a masked
field), read the plan (every step with why, what it changes, its warnings
and how to undo it), confirm (the VM's name typed when a step is
destructive), then watch each step with its progress and log, and read the
summary. `h` lists the journal's runs; `u` resumes an unfinished one. The
Connectivity pane's `o` lands here with its diagnosis and scenario chosen.

Everything that talks to Azure runs in workers; the runner journals every
step, so quitting in the middle leaves a run that `u` (or `aztriage recover
--resume`) picks up again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.widgets import ContentSwitcher, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from backend.errors import BackendError
from backend.models import Inventory, Vm
from backend.recovery import journal as J
from backend.recovery import scenarios, service
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Plan, PlanError
from backend.recovery.runner import Runner, RunRefused
from backend.recovery.scenarios.backup_now import DEFAULT_RETAIN_DAYS, kept_until, offers_backup_first
from backend.recovery.scenarios.fix_nsg import DEFAULT_HOURS as DEFAULT_NSG_HOURS
from backend.recovery.scenarios.fix_nsg import MAX_HOURS as MAX_NSG_HOURS
from backend.recovery.scenarios.rescue import find_rescue_vm, rescue_vm_refusal
from backend.recovery.scenarios.resize import choices as resize_choices
from backend.recovery.scenarios.resize import difference
from backend.recovery.scenarios.upgrade_public_ip import ip_choices as upgrade_ip_choices
from backend.shellcmd import POSIX, POWERSHELL, fold_text
from tui.messages import OpenRecovery
from tui.screens.base import BaseScreen, TableFilterMixin
from widgets.confirm_dialog import ConfirmDialog
from widgets.fast_table import MANY_ROWS, Column, FastTable, Row
from widgets.option_list import ChoiceList
from widgets.scroll_panel import ScrollPanel
from widgets.secret_field import SecretDialog
from widgets.step_list import StepList, kind_text
from widgets.text_prompt import TextPrompt
from widgets.vm_table import VmTable, subscription_names, vm_row

log = logging.getLogger("aztriage.console")
T = TypeVar("T")

VMS, SCENARIOS, OPTIONS, PLAN, RUN, RUNS = "vms", "scenarios", "options", "plan", "run", "runs"
NEW_ACCOUNT = "+account"  # the option that names another account (no account name starts with +)
NEW_SET = "+set"  # the option that names another availability set (no set's name starts with +)
NEW_RESCUE = "+rescue"  # the option that names another rescue VM (no VM's id starts with +)
RESCUE_LISTED = 5  # the rescue VMs the options list by name; any other is typed
# The options whose choice is the plan's one parameter, by what a choice means: the plan follows at once.
CHOICE_PARAMS = {"size": "size", "pip": "public_ip", "zone": "zone", "set": "availability_set", "consistency": "consistency"}


@dataclass(frozen=True)
class StageView:
    """What one stage of the wizard shows."""

    body: str  # the id of the widget the stage switcher shows (it also takes the focus)
    crumb: str  # after the VM (and scenario) in the summary line
    back: str  # where esc goes (PLAN: to the scenario's options when it had some, else the scenarios, once the VM was read)
    shows_log: bool = False  # the run's log below, instead of the detail panel


STAGES: dict[str, StageView] = {
    VMS: StageView("vms", "choose a VM (enter)", VMS),
    SCENARIOS: StageView("scenarios", "choose a scenario (enter)", VMS),
    OPTIONS: StageView("options", "", SCENARIOS),
    PLAN: StageView("steps", "plan", SCENARIOS),
    RUN: StageView("steps", "run", VMS, shows_log=True),
    RUNS: StageView("runs", "runs in the journal", VMS),
}

MOVE_NOTE = (
    "Azure cannot move a VM into a zone or a set in place: the plan deallocates it, snapshots and copies its disks to the new "
    "place, and creates it again there with the same NICs, tags, identity and extensions. The original disks and the "
    "snapshots are kept until you release the run."
)
# What the options stage says under the choices, by what a choice means (the kinds whose note
# depends on the choice highlighted or on the VM are written in RecoveryScreen._options_text).
OPTION_NOTES = {
    "zone": MOVE_NOTE,
    "set": MOVE_NOTE,
    "rescue": (
        "A new rescue VM lives in a resource group of its own that the run deletes at the end; an existing VM is used as it is "
        "and keeps running. The run snapshots and copies the OS disk first, waits for you (d) after the copy is attached, "
        "and keeps the original OS disk and the snapshot."
    ),
    "rescue-access": (
        "The rescue VM has no public IP: you reach it at its private IP from its virtual network (a VPN, Azure Bastion, "
        "another VM there), or through its serial console (aztriage console --vm RESCUE_VM, or i in the console), which "
        "signs in with a password. The key or password goes once into the create request and is never kept, shown or journaled."
    ),
    "backup": (
        "The on-demand backup takes a snapshot of every disk, then copies it to the vault (that part can take hours and goes "
        "on in Azure). The recovery point expires after the days shown (the plan gives the date); enter on the days line changes them."
    ),
    "pip": (
        "A Basic IP is made Static and upgraded to Standard keeping its address (it is disassociated for about a minute); "
        "a Dynamic Standard IP is made Static. Only the IP chosen changes."
    ),
    "account": (
        "The accounts the VM's model names: its administrator and the users whose SSH keys it places. Another account is "
        "typed by name; VMAccess creates it when it does not exist. The password (typed twice) or key is never kept."
    ),
}
ACCESS_NOTE = "A password or key is typed in a masked field, sent only in the extension's protected settings, and never kept."

RUN_COLUMNS = (
    Column("run", "RUN", min_width=10, max_width=10),
    Column("vm", "VM", min_width=10, max_width=28, shrink=True),
    Column("scenario", "SCENARIO", min_width=8, max_width=20),
    Column("status", "STATUS", min_width=9, max_width=12),
    Column("steps", "STEPS", min_width=5, max_width=6),
    Column("started", "STARTED (UTC)", min_width=16, max_width=16, priority=1),
)
STATUS_TONES = {"succeeded": "ok", "failed": "bad", "interrupted": "warn", "waiting": "warn", "running": "accent"}


class RunTable(FastTable):
    """The journal's runs, unfinished first."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(RUN_COLUMNS, fixed_columns=1, sort_column=None, empty_text="No recovery runs yet.", **kwargs)

    def show_runs(self, records: list[Any]) -> None:
        rank = {"interrupted": 0, "waiting": 1, "running": 2}
        rows = []
        for r in sorted(records, key=lambda r: rank.get(r.status, 3)):
            done = sum(1 for s in r.steps if s.state in ("verified", "skipped"))
            status = r.status.upper() if r.unfinished else r.status
            rows.append(
                Row(
                    r.run_id,
                    (r.run_id, r.vm_name, r.scenario, status, f"{done}/{len(r.steps)}", r.created_at.replace("T", " ")[:16]),
                    (None, None, None, STATUS_TONES.get(r.status), None, "muted"),
                    (),
                    f"{r.run_id} {r.vm_name} {r.scenario} {r.status}".lower(),
                    r,
                )
            )
        self.set_rows(rows)

    def sort_by(self, column: str | None, reverse: bool | None = None) -> None:
        """Unfinished runs first, then newest first."""

    def action_sort_next(self) -> None:
        """No column sort here."""

    def action_sort_reverse(self) -> None:
        """No column sort here."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in ("sort_next", "sort_reverse")


def unfinished_runs_notice(path: Path | None = None) -> str | None:
    """What to tell at start when the journal holds interrupted or waiting runs (None: nothing)."""
    try:
        journal = J.Journal.open_existing(path or RecoveryScreen.journal_path)  # none yet: nothing to tell, nothing created
        if journal is None:
            return None
        with journal:
            runs = journal.unfinished_runs()
    except J.JournalError:
        return None
    runs = [r for r in runs if r.status != "running"]
    if not runs:
        return None
    names = ", ".join(f"{r.scenario} on {r.vm_name} ({r.status})" for r in runs[:3]) + (" …" if len(runs) > 3 else "")
    return f"{len(runs)} unfinished recovery run(s): {names}. Pane 4, then H and R, resumes where it stopped."


def resumable(record: Any) -> bool:
    """A run R (or enter) picks up again, as `recover --resume` does: interrupted, waiting, or failed
    (once its cause is fixed); not one another process is working on."""
    return record.status in (J.RUN_INTERRUPTED, J.RUN_WAITING, J.RUN_FAILED)


def _source_line(source: Any) -> str:
    """A snapshot or restore point under the disk it restores: kind, name, when, its consistency, and
    why it cannot be used yet (the picker's heading already names the disk)."""
    parts = [f"{'snapshot' if source.kind == 'snapshot' else 'restore point'} {source.name}"]
    parts.append(source.created.strftime("%Y-%m-%d %H:%M UTC") if source.created else "time not known")
    if source.consistency:  # short enough for 80 columns: app- or crash-consistent
        parts.append(source.consistency.removesuffix("Consistent").lower().replace("application", "app") + "-consistent")
    if not source.ready:
        parts.append(f"not ready: {source.state or 'state unknown'}")
    return " · ".join(parts)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class RecoveryScreen(TableFilterMixin, BaseScreen):
    PANE_ID = "recovery"
    CSS_PATH = "recovery.tcss"
    # Where the journal lives (None: the user's data directory); tests point it elsewhere.
    journal_path: ClassVar[Path | None] = None

    BINDINGS = [
        Binding("o", "run_plan", "Recover", id="recovery.run"),
        Binding("y", "backup_first", "Backup first", id="recovery.backup_first"),
        Binding("R", "resume", "Resume", id="recovery.resume"),
        Binding("d", "operator_done", "Done", id="recovery.done"),
        Binding("H", "history", "Runs", id="recovery.history"),
        Binding("u", "undo_run", "Undo", id="recovery.undo"),
        Binding("L", "release_run", "Release", id="recovery.release"),
        Binding("escape", "back", "Back", id="recovery.back"),
        Binding("slash", "filter", "Filter", id="recovery.filter"),
    ]

    # Setting the stage (even to the one shown) lays the screen out for it; the footer follows.
    stage = reactive(VMS, bindings=True, always_update=True, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.vm_id: str | None = None
        self.facts: Any = None
        self.scenario_id: str | None = None
        self.params: dict[str, Any] = {}
        self.plan: Plan | None = None
        self.states: dict[int, str] = {}
        self.messages: dict[int, str] = {}
        self.recommended: OpenRecovery | None = None
        self.run_id: str | None = None
        self.running = False
        self.summary_text = ""
        self.busy = ""
        self.unfinished = 0
        self._log_step: int | None = None
        self._log_last = ""
        self._secrets: dict[str, str] = {}  # only between a masked field and the run that sends it
        self._option_kind = ""
        self._nsg_detected: str | None = None  # fix-nsg: the address aztriage knows for the operator
        self._nsg_origin = ""  # where that address came from, or why it is not known (backend.source_address)
        self._nsg_source: str | None = None  # fix-nsg: the source the allow rule admits (the detected one unless typed)
        self._nsg_hours = DEFAULT_NSG_HOURS
        self._nsg_wide_confirmed: str | None = None  # the phrase typed for * / Internet
        self._vpn_choices: dict[str, Any] = {}
        self._retain_days = DEFAULT_RETAIN_DAYS  # backup-now: how long the recovery point is kept
        self._restore_choices: dict[str, tuple[Any, Any]] = {}  # restore-disk: option id -> (disk, source)
        self._typed_rescue: Vm | None = None  # rescue: the VM the operator typed, listed with the others from then on
        # The scenario whose options the options list holds (esc on its plan goes back to them), and the
        # options a nested choice came from (the rescue VM before how to sign in to it): esc goes back to them.
        self._options_for: str | None = None
        self._option_parents: list[tuple[str, list[tuple[Any, str | None, bool]], int | None]] = []
        self.waiting_run: str | None = None  # the run on screen waits for the operator (d resumes it)

    # --- layout ------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", markup=False)
        yield self.filter_box("filter: name, group, location, state")
        with ContentSwitcher(initial=STAGES[VMS].body, id="stage"):
            yield VmTable(id="vms")
            yield ChoiceList(id="scenarios", markup=False)
            yield ChoiceList(id="options", markup=False)
            yield StepList(id="steps")
            yield RunTable(id="runs")
        with ScrollPanel(id="detail-box"):
            yield Static("", id="detail", markup=False)
        # min_width: lines wrap at the log's own width (RichLog's default renders 78 columns, cut at 80x24).
        yield RichLog(id="log", wrap=True, markup=False, highlight=False, max_lines=500, min_width=20)

    def on_mount(self) -> None:
        super().on_mount()
        self.unfinished = len(self._unfinished())
        self.stage = VMS

    def journal(self) -> Any:
        return J.Journal(self.journal_path)

    def _unfinished(self) -> list[Any]:

        try:
            with self.journal() as journal:
                return journal.unfinished_runs()
        except J.JournalError as exc:
            log.warning("the journal cannot be read: %s", exc)
            return []

    def watch_stage(self, stage: str) -> None:
        view = STAGES[stage]
        self.query_one("#stage", ContentSwitcher).current = view.body
        self.set_class(view.shows_log, "-shows-log")  # recovery.tcss: the log in place of the detail
        self.query_one(self.filter_box).set_class(stage == VMS and bool(self.table.filter_text), "-shown")
        self.query_one(f"#{view.body}").focus()
        self.show_summary()
        self.show_detail()
        self.update_status()

    # --- the inventory ------------------------------------------------------------------

    @property
    def table(self) -> VmTable:
        """The VM table: the one the filter filters."""
        return self.query_one(VmTable)

    def show_inventory(self, inventory: Inventory) -> None:
        table = self.query_one(VmTable)
        table.empty_text = "No VMs match the filter." if inventory.vms else "No VMs in the selected subscriptions."
        if len(inventory.vms) > MANY_ROWS:
            self._fill_vm_table()
            return
        table.update_vms(inventory.vms, subscription_names(inventory), self.aztriage.verdict_for)
        self._vm_table_filled()

    def _vm_table_filled(self) -> None:
        if self.stage == VMS:
            self.show_detail()
        self.update_status()

    @work(exclusive=True, group="recovery-rows", exit_on_error=False, description="building recovery rows")
    async def _fill_vm_table(self) -> None:
        """A large inventory's rows in slices, the event loop running between them. The
        inventory is read here, not passed: a finished worker lingers in a reference cycle
        and would keep it alive."""
        inventory = self.aztriage.inventory
        try:
            if inventory is not None:
                names = subscription_names(inventory)
                await self.query_one(VmTable).set_rows_in_slices(
                    vm_row(vm, names.get(vm.subscription_id.lower()), self.aztriage.verdict_for(vm)) for vm in inventory.vms
                )
                self._vm_table_filled()
        finally:
            inventory = None

    def vm_name(self) -> str:
        if self.facts is not None:
            return self.facts.vm.name
        inv = self.aztriage.inventory
        vm = inv.vm_by_id(self.vm_id) if inv and self.vm_id else None
        return vm.name if vm else (self.vm_id or "").rsplit("/", 1)[-1]

    # --- summary, detail, status -------------------------------------------------------------

    def show_summary(self) -> None:
        text = Text(" Recovery", style="bold")
        crumb = STAGES[self.stage].crumb
        if self.stage not in (VMS, RUNS):
            text.append(f" › {self.vm_name()}")
            if self.scenario_id and self.stage in (OPTIONS, PLAN, RUN):
                text.append(f" › {scenarios.get(self.scenario_id).title}")
            if self.stage == RUN:
                crumb = f"{crumb} {self.run_id or ''}".rstrip()
        if crumb:
            text.append(f" › {crumb}")
        self.query_one("#summary", Static).update(text)

    def show_detail(self) -> None:
        panel = self.query_one("#detail", Static)
        if self.busy:
            panel.update(Text(self.busy, style="italic"))
            return
        if self.stage == VMS:
            vm = self.query_one(VmTable).cursor_vm
            panel.update(self._vm_text(vm) if vm else "")
        elif self.stage == SCENARIOS:
            panel.update(self._scenario_text())
        elif self.stage == OPTIONS:
            panel.update(self._options_text())
        elif self.stage == PLAN:
            panel.update(self._plan_text())
        elif self.stage == RUNS:
            panel.update(self._run_text())

    def _vm_text(self, vm: Any) -> Text:
        text = Text()
        text.append(f"{vm.name}", style="bold")
        text.append(f"  {vm.resource_group} · {vm.location} · {vm.os_type} · {vm.size}\n")
        text.append(f"power {vm.power_state} · health {vm.availability_state} · SLA {vm.sla_shape}")
        text.append("\nenter: choose a recovery for this VM · H: runs in the journal", style="dim")
        return text

    def _scenario_text(self) -> Text:
        text = Text()
        rec = self.recommended
        if rec is not None and self.vm_id and rec.vm_id.lower() == self.vm_id.lower():
            text.append("Diagnosis: ", style="bold")
            text.append(rec.reason or "-")
            if rec.scenario and rec.scenario not in scenarios.IDS:
                text.append(f"\nRecommended: {rec.scenario}, which this pane cannot run; the scenarios below are what it can do.", style="bold")
            for line in rec.evidence[:4]:
                text.append(f"\n  - {line}")
            text.append("\n")
        elif self.vm_id:
            verdict = self._verdict()
            if verdict is not None:
                text.append("Verdict: ", style="bold")
                text.append(f"{verdict.label}: {verdict.summary}")
                text.append(f"\nNext: {verdict.next_step}")
                if verdict.incident is not None:
                    text.append(f"\n  - {verdict.incident.describe()}", style="bold")
                text.append("\n")
        option = self._highlighted_option("#scenarios")
        if option is not None:
            s = scenarios.get(option)
            text.append(f"{s.title}: ", style="bold")
            text.append(s.summary)
            reason = s.unavailable(self.facts.vm, self.facts.fetched_at) if self.facts is not None else None
            if reason:
                text.append(f"\nunavailable: {reason}", style="bold")
            elif s.id == "disable-nla":
                verdict = self._verdict()
                if verdict is not None and any("CredSSP" in line for line in (verdict.summary, *verdict.evidence)):
                    text.append("\nThe RDP check answered with CredSSP (NLA): ", style="bold")
                    text.append("when you cannot sign in because the password expired, this gets you to the sign-in screen that changes it.")
                else:
                    text.append("\nFor an RDP check that answers with CredSSP (NLA) while you cannot sign in (an expired password).", style="dim")
        return text

    def _options_text(self) -> Text:
        if self._option_kind == "size" and self.facts is not None:
            option = self._highlighted_option("#options")
            listed = {size.name: (size, how) for size, how in resize_choices(self.facts)}
            target, how = listed.get(option or "", (None, ""))
            current = self.facts.size(self.facts.vm.size) or next((s for s, _ in listed.values() if s.name == self.facts.vm.size), None)
            text = Text(f"{self.facts.vm.size} → {option or '?'}\n", style="bold")
            if target is not None:
                for what, before, after in difference(current, self.facts.vm.size, target)[1:]:
                    text.append(f"  {what}: {before} → {after}\n")
                if how == "deallocate first":
                    text.append("  its cluster does not offer it: the plan deallocates, resizes and starts it again\n", style="bold")
                elif how:
                    text.append(f"  {how}\n", style="bold")
            return text
        if self._option_kind == "nsg":
            text = Text()
            if self._nsg_detected and self._nsg_origin:
                text.append(f"Your address {self._nsg_detected}: {self._nsg_origin}.\n")
            elif self._nsg_origin:
                text.append(f"{self._nsg_origin}: type it on the source line.\n", style="bold")
            text.append(
                "The allow rule admits only the source shown; aztriage never asks a service on the internet. Enter on the source or hours "
                "line changes it. The rule names the run and until when in its description; releasing the run (H, then L) deletes it and nothing else.",
                style="dim",
            )
            return text
        if self._option_kind == "vpn":
            from backend.recovery.scenarios.reset_vpn import CONNECTION_RESET, GATEWAY_RESET

            option = self._highlighted_option("#options") or ""
            what, _, name = option.partition(":")
            chosen = self._vpn_choices.get(name)
            if chosen is None:
                return Text("")
            text = Text(f"Connection {chosen.name} is {chosen.status}. ", style="bold")
            text.append(f"Resetting it: {CONNECTION_RESET}.")
            if what == "gateway":
                text.append(f"\nInterrupts service: gateway {chosen.gateway}", style="bold reverse")
                text.append(f" (only if the connection reset did not help): {GATEWAY_RESET}")
                if chosen.siblings:
                    text.append(f" Also interrupted: {', '.join(chosen.siblings)}.", style="bold")
                text.append("\nThe gateway reset is destructive: you type the VM's name to run it.")
            return text
        if self._option_kind == "consistency":
            return Text(
                f"One restore point holds every disk of {self.facts.vm.name} at the same instant, in its restore point collection "
                "(billed as incremental snapshots; kept until you delete it). Application-consistent needs the VM running with a "
                "Ready VM agent (VSS on Windows, the pre/post scripts on Linux); crash-consistent can be taken of any VM.",
                style="dim",
            )
        if self._option_kind == "restore":
            return self._restore_text()
        return Text(OPTION_NOTES.get(self._option_kind, ACCESS_NOTE), style="dim")

    def _restore_text(self) -> Text:
        held, source = self._restore_choices.get(self._highlighted_option("#options") or "", (None, None))
        vm = self.facts.vm.name
        if held is None:
            return Text(f"Neither a snapshot nor a restore point of a disk of {vm} was found.", style="dim")
        kind = "snapshot" if source.kind == "snapshot" else "restore point"
        text = Text(f"A new disk made from {kind} {source.name} replaces {held.disk_name}, which is kept, detached.\n", style="bold")
        if held.disk == "os":
            text.append("Interrupts service:", style="bold reverse")
            text.append(f" {vm} is deallocated (you type its name), its OS disk swapped, and started again.")
        else:
            text.append(f"The data disk at LUN {held.disk} is swapped while the VM runs (you type its name): the guest loses it for a moment.")
        text.append(f"\nWhat was written to it since the {kind} stays on the old disk only.", style="dim")
        return text

    def _plan_text(self) -> Text:
        plan = self.plan
        if plan is None:
            return Text("")
        text = Text()
        text.append(plan.summary + "\n", style="bold")
        if plan.interrupts_service:
            text.append("Interrupts service:", style="bold reverse")
            text.append(f" {plan.vm.name} stops answering while this runs.\n")
        for what, before, after in plan.details:
            text.append(f"  {what}: {before} → {after}\n")
        index = self.query_one(StepList).cursor_index
        if index is not None and index < len(plan.steps):
            step = plan.steps[index]
            text.append(f"\n{index + 1}. {step.title}", style="bold")
            text.append(f"  [{kind_text(step.kind)}]\n")
            text.append("why: ", style="bold")
            text.append(step.why + "\n")
            text.append("changes: ", style="bold")
            text.append(step.changes + "\n")
            for w in step.warnings:
                text.append("warning: ", style="bold")
                text.append(w + "\n")
            if step.writes:
                text.append("undo: ", style="bold")
                text.append((step.undo or "cannot be undone") + "\n")
            if index in self.messages:
                text.append("result: ", style="bold")
                text.append(self.messages[index] + "\n")
        for w in plan.warnings:
            if not any(w in s.warnings for s in plan.steps):
                text.append("warning: ", style="bold")
                text.append(w + "\n")
        for b in plan.blockers:
            text.append("cannot run: ", style="bold reverse")
            text.append(" " + b + "\n")
        if self.summary_text:
            text.append("\n" + self.summary_text, style="bold")
        return text

    def _run_text(self) -> Text:
        record = self.query_one(RunTable).cursor_item
        if record is None:
            return Text("")
        text = Text()
        text.append(f"run {record.run_id}: {record.scenario} on {record.vm_name} - {record.status}\n", style="bold")
        if record.summary:
            text.append(record.summary + "\n")
        for s in record.steps:
            text.append(f"  {s.idx + 1}. {s.state:9} {s.title}" + (f" - {s.message}" if s.message else "") + "\n")
        for res in record.resources:
            text.append(f"  created {res.kind} {res.resource_id.rsplit('/', 1)[-1]} ({res.state})\n")
        if record.status == J.RUN_WAITING:
            text.append("d: the manual step is done, continue · R: resume (asks whether it is done)", style="bold")
        elif record.status == J.RUN_FAILED:
            text.append("R: resume once its cause is fixed · u: undo · L: release what it kept", style="bold")
        elif resumable(record):
            text.append("R: resume this run", style="bold")
        else:
            text.append("u: undo what this run changed (where its steps can be) · L: release what it kept until released", style="dim")
        return text

    def update_status(self) -> None:
        back = "the options" if self._plan_has_options() else "the scenarios"
        hints = {
            VMS: "enter: choose a recovery · /: filter · H: runs" + (f" ({self.unfinished} unfinished)" if self.unfinished else ""),
            SCENARIOS: "enter: plan this scenario · esc: back",
            OPTIONS: f"enter: choose · esc: {'the previous options' if self._option_parents else 'the scenarios'}",
            PLAN: f"read-only: changes are disabled · esc: {back} · ↑↓: step details"
            if self.read_only
            else f"o: run the plan · y: back up first or not · ↑↓: steps · esc: {back}"
            if self._backup_first_offered()
            else f"o: run the plan · ↑↓: steps · tab: details · esc: {back}",
            RUN: "running…"
            if self.running
            else ("d: the repair is done, continue · esc: back · H: runs" if self.waiting_run else "esc: back to the VMs · H: runs"),
            RUNS: "R: resume · d: manual step done · u: undo · L: release · esc: back",
        }
        text = Text(f" {hints.get(self.stage, '')}")
        if self.stage == VMS:
            table = self.query_one(VmTable)
            text.append(f" · {table.row_count} of {table.total_count} VMs")
        self.set_status(text)

    def _plan_has_options(self) -> bool:
        """The plan shown was made from options chosen for its scenario: esc goes back to them."""
        return self.scenario_id is not None and self._options_for == self.scenario_id and self.query_one("#options", OptionList).option_count > 0

    def _highlighted_option(self, selector: str) -> str | None:
        options = self.query_one(selector, OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    # --- choosing a VM --------------------------------------------------------------------

    @on(FastTable.CursorMoved, "#vms")
    def _vm_cursor(self) -> None:
        if self.stage == VMS:
            self.show_detail()

    @on(FastTable.Selected, "#vms")
    def _vm_selected(self, event: FastTable.Selected) -> None:
        vm = self.query_one(VmTable).cursor_vm
        if vm is not None:
            self.open_vm(vm.id)

    def open_vm(self, vm_id: str) -> None:
        if self.running:
            self.notify("A recovery is running: wait for it to finish.", severity="warning", timeout=4)
            return
        if self.aztriage.backend is None:
            self.notify("Still connecting; try again in a moment.", timeout=3)
            return
        self.vm_id = vm_id
        self.facts = None
        self.scenario_id = None
        self.plan = None
        self._forget_options()
        self._secrets.clear()
        self.busy = "Reading the VM (instance view, locks, health)…"
        self.stage = SCENARIOS
        self.query_one("#scenarios", OptionList).clear_options()
        self.load_vm(vm_id)

    @work(exclusive=True, group="recovery", exit_on_error=False)
    async def load_vm(self, vm_id: str) -> None:

        try:
            facts = await service.read_vm(self.aztriage.connected_backend, vm_id)
        except Exception as exc:  # a failed read is shown here, not as a failed refresh
            self._failed(f"reading the VM failed: {_one_line(exc)}")
            self.stage = VMS
            return
        finally:
            self.busy = ""
        self.facts = facts
        self.show_scenarios()

    def _verdict(self) -> Any:
        """The VM's verdict as every pane shows it (from the inventory's VM and what the session probed)."""
        inventory = self.aztriage.inventory
        vm = inventory.vm_by_id(self.vm_id) if inventory is not None and self.vm_id else None
        return self.aztriage.verdict_for(vm if vm is not None else self.facts.vm) if (vm is not None or self.facts is not None) else None

    def show_scenarios(self) -> None:
        rec = self.recommended
        wanted = rec.scenario if rec is not None and self.vm_id and rec.vm_id.lower() == self.vm_id.lower() else None
        options = self.query_one("#scenarios", OptionList)
        options.clear_options()
        first_enabled = None
        verdict = self._verdict()
        for i, (scenario, reason, recommended) in enumerate(
            scenarios.choices(self.facts.vm, wanted if wanted in scenarios.IDS else None, verdict=verdict, now=self.facts.fetched_at)
        ):
            prompt = Text()
            prompt.append("★ " if recommended else "  ", style="bold")
            prompt.append(scenario.title, style="bold" if recommended else "")
            if recommended:
                prompt.append("  (recommended)")
            if reason:
                prompt.append(f"  - unavailable: {reason}", style="dim")
            options.add_option(Option(prompt, id=scenario.id, disabled=bool(reason)))
            if first_enabled is None and not reason:
                first_enabled = i
        if first_enabled is not None:
            options.highlighted = first_enabled
        self.stage = SCENARIOS

    @on(OptionList.OptionHighlighted)
    def _option_highlighted(self) -> None:
        self.show_detail()

    @on(OptionList.OptionSelected, "#scenarios")
    def _scenario_selected(self, event: OptionList.OptionSelected) -> None:
        self.scenario_id = event.option.id
        self.params = {}
        self._forget_options()
        self._secrets.clear()
        if self.scenario_id == "resize":
            self.load_options("the sizes this VM can take", self.show_sizes)
        elif self.scenario_id == "reset-access":
            self.show_access_options()
        elif self.scenario_id == "rescue":
            self.show_rescue_options()
        elif self.scenario_id == "fix-nsg":
            self.load_options("the NSGs and your address", self.start_nsg_options)
        elif self.scenario_id == "reset-vpn":
            self.load_options("the VPN connections of the VM's network", self.show_vpn_options)
        elif self.scenario_id == "upgrade-public-ip" and len(upgrade_ip_choices(self.facts.vm)) > 1:
            self.show_ip_options()
        elif self.scenario_id in ("move-to-zone", "move-to-set"):
            self.show_move_options()
        elif self.scenario_id == "restore-point":
            self.show_consistency_options()
        elif self.scenario_id == "backup-now":
            self.load_options("the VM's Azure Backup protection", self.start_backup_options)
        elif self.scenario_id == "restore-disk":
            self.load_restore_sources()
        else:
            self.make_plan()

    # --- scenario options (size, credential) -----------------------------------------------

    async def _read(self, busy: str, failure: str, read: Callable[[], Awaitable[T]]) -> T | None:
        """What `read()` returns, read with `busy` on screen meanwhile (None: it failed, and
        the failure is shown after `failure`)."""
        self.busy = busy
        self.show_detail()
        try:
            return await read()
        except Exception as exc:
            self._failed(f"{failure}: {_one_line(exc)}")
            return None
        finally:
            self.busy = ""

    @work(exclusive=True, group="recovery", exit_on_error=False)
    async def load_options(self, what: str, show: Callable[[VmFacts], None]) -> None:
        """The scenario's options: what they are made from is read (`what`, said on screen
        meanwhile), then `show(facts)` lists them."""
        vm_id, scenario_id = self.vm_id, self.scenario_id
        if vm_id is None or scenario_id is None:
            return
        facts = await self._read(
            f"Reading {what}…", f"reading {what} failed", lambda: service.gather_facts(self.aztriage.connected_backend, vm_id, scenario_id)
        )
        if facts is not None:
            self.facts = facts
            show(facts)

    def show_sizes(self, facts: VmFacts) -> None:
        sizes = resize_choices(facts)
        if not sizes:
            self._failed(f"no other size is offered for {facts.vm.name}: {facts.sizes_error or 'the region lists none'}")
            return
        # Sizes the VM can take where it runs first, then those that need a deallocation, then those Azure refuses.
        order = {"": 0, "deallocate first": 1}
        choices = []
        for size, how in sorted(sizes, key=lambda item: order.get(item[1], 2)):
            label = f"{size.name}  {size.describe()}" + (f"  ({how})" if how else "")
            choices.append(Option(label, id=size.name))
        self.offer_options("size", choices)

    def offer_options(self, kind: str, choices: list[Option], highlighted: int | None = 0, *, nested: bool = False) -> None:
        """The options stage with these choices (`kind` says what a choice means), one highlighted (the first).
        `nested`: a choice that follows the one on screen (esc goes back to it, as it was)."""
        options = self.query_one("#options", OptionList)
        if nested and options.option_count:
            shown = [options.get_option_at_index(i) for i in range(options.option_count)]
            self._option_parents.append((self._option_kind, [(o.prompt, o.id, o.disabled) for o in shown], options.highlighted))
        elif not nested:
            self._option_parents.clear()
        options.clear_options()
        self._option_kind = kind
        self._options_for = self.scenario_id
        options.add_options(choices)
        options.highlighted = highlighted if choices else None
        self.stage = OPTIONS

    def _forget_options(self) -> None:
        """A new VM or scenario: the options shown belong to none of its plans."""
        self._options_for = None
        self._option_parents.clear()
        self._typed_rescue = None

    def _options_back(self) -> bool:
        """esc on nested options: the options they came from, the choice made there highlighted (False: none)."""
        if not self._option_parents:
            return False
        kind, shown, highlighted = self._option_parents.pop()
        parents = self._option_parents
        self._option_parents = []  # offer_options (not nested) clears them
        self.offer_options(kind, [Option(prompt, id=option_id, disabled=disabled) for prompt, option_id, disabled in shown], highlighted)
        self._option_parents = parents
        self.update_status()
        return True

    def show_access_options(self) -> None:
        vm = self.facts.vm
        account = vm.admin_username or "the administrator"
        if vm.os_type.lower() == "windows":
            choices = [
                Option("Reset the Remote Desktop configuration only", id="config"),
                Option(f"Reset the RDP configuration and the password of {account}", id="password"),
            ]
        else:
            choices = [
                Option("Reset the SSH configuration (sshd) only", id="config"),
                Option(f"Set a new password for {account}", id="password"),
                Option(f"Install an SSH public key for {account}", id="ssh_key"),
                Option("Reset the SSH configuration and set a new password", id="config+password"),
                Option("Reset the SSH configuration and install an SSH public key", id="config+ssh_key"),
            ]
        self.offer_options("access", choices)

    def show_rescue_options(self, highlight: str | None = None) -> None:
        """A new rescue VM, or one of the first running VMs that can serve (those of the VM's own
        resource group first), the one typed last, and the option that types another one."""
        vm = self.facts.vm
        choices = [
            Option("New rescue VM (its own resource group); run the common fixes by run command, then you check", id="new+fixes"),
            Option("New rescue VM (its own resource group); you repair the disk yourself", id="new"),
        ]
        inventory = self.aztriage.inventory
        candidates = sorted(
            (other for other in (inventory.vms if inventory else ()) if rescue_vm_refusal(vm, other, self.aztriage.verdict_for(other)) is None),
            key=lambda other: other.resource_group.lower() != vm.resource_group.lower(),
        )
        listed = candidates[:RESCUE_LISTED]
        typed = self._typed_rescue
        if typed is not None and all(other.id.lower() != typed.id.lower() for other in listed):
            listed.append(typed)
        for other in listed:
            choices.append(Option(f"Use {other.name} ({other.resource_group}) as the rescue VM; run the common fixes", id=f"existing:{other.id}"))
            choices.append(Option(f"  Use {other.name}; you repair the disk yourself", id=f"existing-manual:{other.id}"))
        more = sum(1 for other in candidates if all(other.id.lower() != shown.id.lower() for shown in listed))
        if more:
            choices.append(Option(f"Use another VM: {more} more running VM{'s' if more != 1 else ''} could serve; type its name…", id=NEW_RESCUE))
        else:
            choices.append(Option("Use another VM as the rescue VM: type its name or id…", id=NEW_RESCUE))
        ids = [choice.id for choice in choices]
        self.offer_options("rescue", choices, highlighted=ids.index(highlight) if highlight in ids else 0)

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_rescue_vm(self) -> None:
        """rescue: a rescue VM the operator names, as --rescue-vm takes it (a name in the VM's
        subscription, or an id), checked as the listed ones are; refused with one sentence and asked again."""
        vm, inventory = self.facts.vm, self.aztriage.inventory
        if inventory is None:
            self.notify("The inventory is still loading; try again in a moment.", timeout=3)
            return

        async def in_inventory(name: str, subscription_ids: list[str]) -> list[str]:
            subscriptions = {s.lower() for s in subscription_ids}
            return sorted(other.id for other in inventory.vm_by_name(name) if other.subscription_id.lower() in subscriptions)

        typed, refusal = "", ""
        while True:
            answer = await self.app.push_screen_wait(
                TextPrompt(
                    "Which VM repairs the disk?",
                    f"A running {vm.os_type} VM of {vm.name}'s subscription in {vm.location}"
                    + (f", zone {','.join(vm.zones)}" if vm.zones else "")
                    + ": its name, or its id if the name is not unique:",
                    value=typed,
                    error=refusal,
                    placeholder="rescue-vm-01",
                )
            )
            if not answer:
                self.show_rescue_options(NEW_RESCUE)
                return
            typed = answer
            try:
                rescue_id = await find_rescue_vm(in_inventory, vm, typed)
            except PlanError as exc:
                refusal = str(exc)
            else:
                other = inventory.vm_by_id(rescue_id)
                refusal = (
                    f"no VM with id {rescue_id} in the inventory: a rescue VM must be in the same subscription and region"
                    if other is None
                    else rescue_vm_refusal(vm, other, self.aztriage.verdict_for(other)) or ""
                )
                if other is not None and not refusal:
                    self._typed_rescue = other
                    self.show_rescue_options(f"existing:{other.id}")
                    return
            self.query_one("#detail", Static).update(Text(refusal, style="bold"))

    def show_rescue_access_options(self) -> None:
        """The new rescue VM has no public IP: how will the operator sign in to it?"""
        from backend.recovery.scenarios.rescue import ADMIN

        choices = []
        if self.facts.vm.os_type.lower() != "windows":
            choices.append(Option(f"Sign in to the rescue VM as {ADMIN} with your SSH public key (paste it; password sign-in off)", id="ssh_key"))
        choices.append(Option(f"Sign in to the rescue VM as {ADMIN} with a password you type twice (never kept)", id="password"))
        choices.append(Option(f"No way in for now ({ADMIN} gets a random password nobody keeps; reset-access later)", id="none"))
        self.offer_options("rescue-access", choices, nested=True)

    def start_nsg_options(self, facts: VmFacts) -> None:
        """From the NSGs and the address aztriage knows for the operator, the first choices."""
        network = facts.documents.get("network") or {}
        self._nsg_detected = network.get("detected_source")
        self._nsg_origin = str(network.get("source_origin") or "")
        self._nsg_source = self._nsg_detected
        self._nsg_hours = DEFAULT_NSG_HOURS
        self._nsg_wide_confirmed = None
        self.show_nsg_options()

    def show_nsg_options(self, highlight: str = "allow") -> None:
        from backend.recovery.steps import protocol_name, remote_port

        port, protocol = remote_port(self.facts.vm)
        name = protocol_name(protocol)
        source = self._nsg_source
        if source is None:
            whom = "your address (unknown: type it)"
        elif self._nsg_wide_confirmed:
            whom = "anywhere (confirmed)"
        elif source == self._nsg_detected:
            whom = f"{source} (your address)"
        else:
            whom = source
        choices = [
            Option(f"Allow {name} ({port}) from {whom} for {self._nsg_hours} h, above the deny", id="allow"),
            Option(f"  source: {source or 'not known'} - enter to type an address or a CIDR range", id="source"),
            Option(f"  hours the rule stays: {self._nsg_hours} - enter to type 1 to {MAX_NSG_HOURS}", id="hours"),
            Option(f"Allow {name} ({port}) from anywhere on the internet (you type a phrase)", id="wide"),
            Option("Delete the blocking rule (destructive: the VM's name typed; undo restores it)", id="disable"),
        ]
        self.offer_options("nsg", choices, highlighted=[c.id for c in choices].index(highlight))

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_nsg_source(self) -> None:
        """The source of the allow rule: an address or a CIDR; * or Internet only after the typed phrase."""
        from backend.recovery.scenarios.fix_nsg import parse_source

        def check(value: str) -> str:
            try:
                choice = parse_source(value, [], self._nsg_detected)
            except PlanError as exc:
                raise ValueError(str(exc).replace("--source-ip ", "")) from None
            return "*" if choice.wide else choice.prefix

        value = await self.app.push_screen_wait(
            TextPrompt(
                "Allow from which address?",
                "An address or a range (CIDR, e.g. 203.0.113.0/24); * or Internet admits everyone, and asks you to type that it may:",
                value=self._nsg_source or "",
                check=check,
                placeholder="203.0.113.7 or 203.0.113.0/24",
            )
        )
        if not value:
            self.show_nsg_options("source")
            return
        if value == "*":
            self.confirm_wide_source()
            return
        self._nsg_source, self._nsg_wide_confirmed = value, None
        self.show_nsg_options("allow")

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_nsg_hours(self) -> None:
        def check(value: str) -> str:
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_NSG_HOURS:
                raise ValueError(f"give a whole number of hours from 1 to {MAX_NSG_HOURS}")
            return str(int(value))

        value = await self.app.push_screen_wait(
            TextPrompt(
                "How long may the rule stay?",
                f"Hours (1-{MAX_NSG_HOURS}); the rule's description says until when, and releasing the run deletes it:",
                value=str(self._nsg_hours),
                check=check,
            )
        )
        if value:
            self._nsg_hours = int(value)
        self.show_nsg_options("allow" if value else "hours")

    def _nsg_params(self, disable: bool = False) -> dict[str, Any]:
        if disable:
            return {"disable_rule": True}
        params: dict[str, Any] = {"source": self._nsg_source, "hours": self._nsg_hours, "disable_rule": False}
        if self._nsg_wide_confirmed:
            params["wide_confirmed"] = self._nsg_wide_confirmed
        return params

    def show_vpn_options(self, facts: VmFacts) -> None:
        """What can be reset of the VPN connections serving the VM's network."""
        from backend.recovery.scenarios.reset_vpn import connection_choices

        choices = connection_choices(facts)
        if not choices:
            self.params = {}
            self.make_plan()  # the plan says why there is nothing to reset
            return
        self._vpn_choices = {c.name: c for c in choices}
        lines = []
        for c in choices:
            state = f"{c.status}: a reset only interrupts it" if c.connected else c.status
            lines.append(Option(f"Reset connection {c.name} ({state})", id=f"connection:{c.name}"))
            lines.append(Option(f"  then gateway {c.gateway} if still down (heavier: all its connections drop)", id=f"gateway:{c.name}"))
        self.offer_options("vpn", lines)

    def show_ip_options(self) -> None:
        choices = [
            Option(f"{name}  {now}" + (f"  - {done}" if done else ""), id=name, disabled=bool(done)) for name, now, done in upgrade_ip_choices(self.facts.vm)
        ]
        # The first IP that still needs the upgrade (those already Standard and Static are greyed out).
        self.offer_options("pip", choices, highlighted=next((i for i, choice in enumerate(choices) if not choice.disabled), None))

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def confirm_wide_source(self) -> None:
        from backend.recovery.scenarios.fix_nsg import wide_confirmation
        from backend.recovery.steps import remote_port

        port, _ = remote_port(self.facts.vm)
        phrase = wide_confirmation(port)
        dialog = ConfirmDialog(
            f"Allow port {port} from anywhere?",
            [f"The rule admits port {port} of {self.facts.vm.name} from every address on the internet until it is released: anyone can try to sign in."],
            type_name=phrase,
            typed_what="make a plan that allows it",
            action="Plan",
        )
        if not await self.app.push_screen_wait(dialog):
            self.notify("Nothing planned: choose another option.", timeout=3)
            return
        self._nsg_source, self._nsg_wide_confirmed = "*", phrase
        self.params = self._nsg_params()
        self.make_plan()

    def show_move_options(self) -> None:
        """Zones 1-3 (the plan says why one is refused), or a new availability set and the
        sets of the VM's group and region that the inventory knows."""
        vm = self.facts.vm
        if self.scenario_id == "move-to-zone":
            zones = [Option(f"Zone {zone}" + (" (where it is now)" if list(vm.zones) == [zone] else ""), id=zone) for zone in ("1", "2", "3")]
            self.offer_options("zone", zones)
            return
        new_name = f"avset-{vm.name}"[:80]
        sets = [Option(f"A new availability set {new_name} (2 fault and 5 update domains)", id=new_name)]
        inventory = self.aztriage.inventory
        for set_id, doc in sorted((inventory.availability_sets if inventory else {}).items()):
            if set_id.lower() == (vm.availability_set or "").lower() or str(doc.get("location") or "").lower() != vm.location.lower():
                continue
            if f"/resourcegroups/{vm.resource_group.lower()}/" not in set_id.lower():
                continue
            props = doc.get("properties") or {}
            name = set_id.rsplit("/", 1)[-1]
            sets.append(Option(f"{name} ({props.get('platformFaultDomainCount')} fault, {props.get('platformUpdateDomainCount')} update domains)", id=name))
        sets.append(Option("Another set: type its name (one of the VM's group, or a new one)", id=NEW_SET))
        self.offer_options("set", sets)

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_set_name(self) -> None:
        """move-to-set: a set named by the operator, as --availability-set takes it."""
        from backend.recovery.scenarios.move import check_set_name

        def check(value: str) -> str:
            try:
                return check_set_name(value)
            except PlanError as exc:
                raise ValueError(str(exc)) from None

        vm = self.facts.vm
        name = await self.app.push_screen_wait(
            TextPrompt(
                "Which availability set?",
                f"Its name: a set of {vm.resource_group} in {vm.location}, or a new one the run creates there (2 fault, 5 update domains):",
                check=check,
                placeholder=f"avset-{vm.name}"[:80],
            )
        )
        if not name:
            self.show_move_options()
            return
        self.params = {"availability_set": name}
        self.make_plan()

    def show_consistency_options(self) -> None:
        """restore-point: application- or crash-consistent, the plan's default first; a mode the VM
        cannot take now (not running, its agent not Ready) is greyed out with the plan's reason."""
        from backend.recovery.scenarios.restore_point import MODES

        default = scenarios.build_plan("restore-point", self.facts, {}).params.get("consistency")
        words = {
            "application": "Application-consistent: the VM agent freezes the applications",
            "crash": "Crash-consistent: every disk at one instant, nothing frozen",
        }
        choices = []
        for mode in MODES:
            blockers = scenarios.build_plan("restore-point", self.facts, {"consistency": mode}).blockers
            label = words.get(mode, mode) + ("  (the default)" if mode == default else "") + (f"  - not now: {blockers[0]}" if blockers else "")
            choices.append(Option(label, id=mode, disabled=bool(blockers)))
        self.offer_options("consistency", choices, highlighted=list(MODES).index(default) if default in MODES else None)

    def start_backup_options(self, facts: VmFacts) -> None:
        """backup-now: from whether Azure Backup protects the VM, the first choices; a VM that cannot
        be backed up goes straight to the plan, which says why."""
        self._retain_days = DEFAULT_RETAIN_DAYS
        if scenarios.build_plan("backup-now", facts, {}).blockers:
            self.make_plan()
            return
        self.show_backup_options()

    def show_backup_options(self, highlight: str = "backup") -> None:
        days, _ = kept_until(self.facts, {"retain_days": self._retain_days})
        vault = (self.facts.documents.get("backup") or {}).get("vault") or "its vault"
        choices = [
            Option(f"Back up now in vault {vault}, the recovery point kept {days} days", id="backup"),
            Option(f"  days the recovery point is kept: {days} - enter to type 1 to 99", id="days"),
        ]
        self.offer_options("backup", choices, highlighted=[c.id for c in choices].index(highlight))

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_retain_days(self) -> None:
        def check(value: str) -> str:
            if not (value.isascii() and value.isdigit()):
                raise ValueError("give a whole number of days from 1 to 99")
            try:
                days, _ = kept_until(self.facts, {"retain_days": int(value)})
            except PlanError as exc:
                raise ValueError(str(exc).replace("--retain-days ", "the days ")) from None
            return str(days)

        value = await self.app.push_screen_wait(
            TextPrompt(
                "How long is the recovery point kept?",
                "Days (1-99: an on-demand backup of a VM is kept at most 99 days); it expires then, in its vault:",
                value=str(self._retain_days),
                check=check,
            )
        )
        if value:
            self._retain_days = int(value)
        self.show_backup_options("backup" if value else "days")

    @work(exclusive=True, group="recovery", exit_on_error=False)
    async def load_restore_sources(self) -> None:
        """restore-disk: the snapshots of the VM's disks, listed under the disk each restores."""
        if self.facts is None:
            return
        from backend.recovery.sources import restore_sources

        sources = await self._read(
            "Reading the snapshots and restore points of the VM's disks…",
            "reading the snapshots and restore points failed",
            lambda: restore_sources(self.aztriage.connected_backend, self.facts.vm),
        )
        if sources is not None:
            self.show_restore_sources(sources)

    def show_restore_sources(self, sources: list[Any]) -> None:
        """One heading per disk of the VM (the OS disk, then each data disk by LUN), under it the
        snapshots and restore points that hold it, newest first; one not ready yet (being created,
        failed) is greyed out with its state, and a disk with nothing to restore from says so."""
        choices: list[Option] = []
        self._restore_choices = {}
        for disk in self.facts.vm.disks:
            if not disk.managed or not disk.id:
                continue
            which = "os" if disk.lun is None else str(disk.lun)
            heading = f"OS disk {disk.name}" if disk.lun is None else f"Data disk {disk.name} (LUN {disk.lun})"
            choices.append(Option(heading, id=f"disk:{which}", disabled=True))
            mine = [source for source in sources if source.disk(which) is not None]
            for source in mine:
                option_id = f"source:{len(self._restore_choices)}"
                self._restore_choices[option_id] = (source.disk(which), source)
                choices.append(Option(f"  {_source_line(source)}", id=option_id, disabled=not source.ready))
            if not mine:
                choices.append(Option("  nothing to restore it from: snapshot-disks or restore-point takes one", id=f"none:{which}", disabled=True))
        first = next((i for i, choice in enumerate(choices) if not choice.disabled), None)
        self.offer_options("restore", choices, highlighted=first)

    @on(OptionList.OptionSelected, "#options")
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        choice = event.option.id or ""
        if self._option_kind == "set" and choice == NEW_SET:
            self.ask_set_name()
            return
        if self._option_kind in CHOICE_PARAMS:
            self.params = {CHOICE_PARAMS[self._option_kind]: choice}
            self.make_plan()
            return
        if self._option_kind == "backup":
            if choice == "days":
                self.ask_retain_days()
            else:
                self.params = {"retain_days": self._retain_days}
                self.make_plan()
            return
        if self._option_kind == "restore":
            held, source = self._restore_choices[choice]
            self.params = {"source": source.id, "disk": held.disk}
            self.make_plan()
            return
        if self._option_kind == "nsg":
            if choice == "wide":
                self.confirm_wide_source()
            elif choice == "source" or (choice == "allow" and not self._nsg_source):
                self.ask_nsg_source()
            elif choice == "hours":
                self.ask_nsg_hours()
            else:
                self.params = self._nsg_params(disable=choice == "disable")
                self.make_plan()
            return
        if self._option_kind == "vpn":
            what, _, connection = choice.partition(":")
            self.params = {"connection": connection, "gateway": what == "gateway"}
            self.make_plan()
            return
        if self._option_kind == "rescue" and choice == NEW_RESCUE:
            self.ask_rescue_vm()
            return
        if self._option_kind == "rescue":
            how, _, picked = choice.partition(":")
            self.params = {"rescue_vm": picked or None, "run_fixes": how in ("new+fixes", "existing")}
            if picked:
                self.make_plan()
            else:
                self.show_rescue_access_options()
            return
        if self._option_kind == "rescue-access":
            self.params["credential"] = choice if choice in ("password", "ssh_key") else None
            if self.params["credential"]:
                from backend.recovery.scenarios.rescue import ADMIN

                self.ask_secret(self.params["credential"], ADMIN, for_rescue=True)
            else:
                self.make_plan()
            return
        if self._option_kind == "account":
            if choice == NEW_ACCOUNT:
                self.ask_account()
            else:
                self.ask_secret(self.params["credential"], choice)
            return
        reset_config = "config" in choice
        credential = "password" if "password" in choice else "ssh_key" if "ssh_key" in choice else None
        self.params = {"credential": credential, "reset_config": reset_config if credential else None}
        if credential:
            self.show_account_options()
        else:
            self.make_plan()

    def show_account_options(self) -> None:
        """Whose password or key: the accounts the VM's model names, or another one typed (Linux:
        VMAccess creates it). On Windows VMAccess resets only the administrator's password."""
        from backend.recovery.scenarios.reset_access import known_accounts

        windows = self.facts.vm.os_type.lower() == "windows"
        accounts = known_accounts(self.facts)
        if windows and self.facts.vm.admin_username:
            self.ask_secret(self.params["credential"], self.facts.vm.admin_username)
            return
        if windows:
            self.ask_account()  # the model does not name the administrator: the operator does
            return
        choices = [Option(f"{name}  ({how})", id=name) for name, how in accounts]
        choices.append(Option("Another account: type its name (VMAccess creates it if it does not exist)", id=NEW_ACCOUNT))
        self.offer_options("account", choices, nested=True)

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_account(self) -> None:
        from backend.recovery.scenarios.reset_access import check_username

        vm = self.facts.vm
        windows = vm.os_type.lower() == "windows"

        def check(value: str) -> str:
            try:
                return check_username(value, vm.os_type)
            except PlanError as exc:
                raise ValueError(str(exc)) from None

        if windows:
            title, prompt = (
                "The administrator",
                f"The model of {vm.name} does not name its administrator; VMAccess resets only that account's password. Its name:",
            )
        else:
            title, prompt = (
                "Which account?",
                f"The account on {vm.name} to give the {'password' if self.params['credential'] == 'password' else 'SSH key'} (created if it does not exist):",
            )
        name = await self.app.push_screen_wait(TextPrompt(title, prompt, check=check, placeholder="azureuser"))
        if not name:
            self.notify("Nothing changed: no account was named.", timeout=3)
            return
        self.ask_secret(self.params["credential"], name)

    @work(exclusive=True, group="recovery-secret", exit_on_error=False)
    async def ask_secret(self, credential: str, username: str, *, for_rescue: bool = False) -> None:
        from backend.recovery.scenarios.reset_access import check_password, check_ssh_key

        os_type = self.facts.vm.os_type

        def check(value: str) -> str | None:
            try:
                if credential == "password":
                    check_password(value, os_type)
                    return None
                return check_ssh_key(value)
            except PlanError as exc:
                raise ValueError(str(exc)) from None

        where = " on the rescue VM" if for_rescue else ""
        if credential == "password":
            dialog = SecretDialog("New password", f"The new password for {username}{where} (typed masked, never shown or kept):", check=check, confirm=True)
        else:
            dialog = SecretDialog(
                "SSH public key",
                "Paste the public key" + (f" for {username}{where}" if for_rescue else "") + " (one line, ssh-ed25519 or ssh-rsa …):",
                check=check,
                placeholder="ssh-ed25519 AAAA… user@host",
            )
        value = await self.app.push_screen_wait(dialog)
        if value is None:
            self.notify("Nothing changed: no secret was given.", timeout=3)
            return
        self._secrets = {credential: value}
        self.params = {**self.params, "username": username}
        self.make_plan()

    # --- the plan ----------------------------------------------------------------------------

    @work(exclusive=True, group="recovery", exit_on_error=False)
    async def make_plan(self) -> None:

        if self.vm_id is None or self.scenario_id is None:
            return
        self.busy = "Making the plan (reading the VM again; nothing is changed)…"
        self.show_detail()
        try:
            plan, facts = await service.make_plan(self.aztriage.connected_backend, self.vm_id, self.scenario_id, self.params)
        except PlanError as exc:
            self._failed(str(exc))
            return
        except Exception as exc:
            self._failed(f"making the plan failed: {_one_line(exc)}")
            return
        finally:
            self.busy = ""
        self.plan, self.facts = plan, facts
        self.states, self.messages, self.summary_text, self.run_id = {}, {}, "", None
        self.query_one(StepList).show_steps(plan.steps, self.states, read_only=self.read_only)
        self.query_one(StepList).move_cursor_to_key(0)
        self.stage = PLAN

    @property
    def read_only(self) -> bool:
        settings = self.aztriage.settings
        return bool(settings and settings.read_only)

    @on(FastTable.CursorMoved, "#steps")
    def _step_cursor(self) -> None:
        if self.stage == PLAN:
            self.show_detail()

    def _backup_first_offered(self) -> bool:
        """The plan shown can take (or takes) an on-demand Azure Backup as its first step."""
        plan = self.plan
        if plan is None or self.facts is None or plan.scenario not in scenarios.OFFERS_BACKUP_FIRST:
            return False
        return bool(plan.params.get("backup_first")) or offers_backup_first(self.facts, plan)

    def action_backup_first(self) -> None:
        """y on a protected VM's plan: the on-demand backup as its first step, or not; the plan is made again."""
        if self.stage != PLAN or self.running or not self._backup_first_offered():
            return
        assert self.plan is not None
        self.params = {key: value for key, value in self.params.items() if key != "backup_first"}
        if not self.plan.params.get("backup_first"):
            self.params["backup_first"] = True
        self.make_plan()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "backup_first":
            return self.stage == PLAN and not self.running and self._backup_first_offered()
        if action == "run_plan":
            if self.stage != PLAN or self.plan is None or self.running:
                return False
            return None if (self.read_only or self.plan.blockers) else True  # shown greyed when it cannot run
        if action == "resume":
            if self.stage != RUNS or self.running:
                return False
            record = self.query_one(RunTable).cursor_item
            return True if record is not None and resumable(record) else None
        if action == "operator_done":
            if self.running:
                return False
            if self.stage == RUN:
                return bool(self.waiting_run)
            if self.stage == RUNS:
                record = self.query_one(RunTable).cursor_item
                return bool(record is not None and record.status == J.RUN_WAITING)
            return False
        if action in ("undo_run", "release_run"):
            if self.stage != RUNS or self.running:
                return False
            record = self.query_one(RunTable).cursor_item
            return True if record is not None and not record.unfinished and not self.read_only else None
        if action == "back":
            return self.stage != VMS or bool(self.query_one(VmTable).filter_text)
        if action == "filter":
            return self.stage == VMS
        return super().check_action(action, parameters)

    def action_run_plan(self) -> None:
        plan = self.plan
        if plan is None or self.stage != PLAN:
            return
        if self.read_only:
            self.notify(
                "Read-only: the plan is shown and nothing can be changed (start aztriage without --read-only to run it).", severity="warning", timeout=6
            )
            return
        if plan.blockers:
            self.notify(f"This plan cannot run: {plan.blockers[0]}", severity="error", timeout=8)
            return
        self.run_plan()

    def _confirm_lines(self, plan: Plan, steps: list[int] | None = None) -> list[str]:
        lines = [plan.summary, ""]
        if plan.interrupts_service:
            lines[1:1] = [f"THIS INTERRUPTS SERVICE: {plan.vm.name} stops answering while it runs.", ""]
        for i, step in enumerate(plan.steps):
            if steps is not None and i not in steps:
                continue
            lines.append(f"{i + 1}. [{kind_text(step.kind)}] {step.title}")
            if step.writes:
                lines.append(f"   changes: {step.changes}")
        warnings = list(dict.fromkeys(list(plan.warnings) + [w for s in plan.steps for w in s.warnings]))
        if warnings:
            lines.append("")
            lines += [f"! {w}" for w in warnings]
        return lines

    @work(exclusive=True, group="recovery-run", exit_on_error=False)
    async def run_plan(self) -> None:

        plan = self.plan
        if plan is None:
            return
        dialog = ConfirmDialog(
            f"{plan.title} on {plan.vm.name}: {len(plan.steps)} steps",
            self._confirm_lines(plan),
            type_name=plan.vm.name if plan.destructive else None,
            cancel_first=plan.interrupts_service,  # Enter pressed out of habit does not take a VM down
        )
        if not await self.app.push_screen_wait(dialog):
            self.notify("Not run: nothing was changed.", timeout=3)
            return
        await self._drive(
            lambda runner: runner.start(
                plan,
                lambda f, p: scenarios.build_plan(plan.scenario, f, p),
                self.facts,
                refresh=lambda: service.gather_facts(self.aztriage.connected_backend, plan.vm.id, plan.scenario, plan.params),
            ),
            plan.vm.name,
        )

    async def _drive(self, start: Any, confirm_name: str | None, operator_done: bool = False) -> None:

        self.running = True
        self.aztriage.recovery_in_progress = (confirm_name or (self.plan.vm.name if self.plan is not None else "a VM"), None)
        self.summary_text = ""
        self.waiting_run = None
        log_view = self.query_one("#log", RichLog)
        log_view.clear()
        self._log_step, self._log_last = None, ""
        self.stage = RUN
        secrets, self._secrets = self._secrets, {}
        try:
            with self.journal() as journal:
                runner = Runner(
                    self.aztriage.connected_backend, journal, on_event=self._on_event, secrets=secrets, confirm_name=confirm_name, operator_done=operator_done
                )
                result = await start(runner)
        except (RunRefused, PlanError) as exc:
            self.running = False
            self._failed(str(exc))
            self.stage = PLAN if self.plan is not None else VMS
            return
        except Exception as exc:
            self.running = False
            log.warning("the recovery run failed", exc_info=True)
            self._failed(f"the run stopped: {_one_line(exc)}; it is in the journal (H, then R to resume)")
            self.update_status()
            return
        finally:
            secrets.clear()
            self.aztriage.recovery_in_progress = None
        self.running = False
        self.run_id = result.run_id
        self.summary_text = result.summary
        # The run changed the VM: no pane keeps the verdict from before it (read and probe it again).
        vm_id = self.plan.vm.id if self.plan is not None else self.vm_id
        if vm_id:
            self.aztriage.recheck(vm_id)
        self.waiting_run = result.run_id if result.status == J.RUN_WAITING else None
        tone: SeverityLevel = "information" if result.status == "succeeded" else "warning" if result.status == "waiting" else "error"
        self.notify(result.summary, title=f"run {result.run_id}: {result.status}", severity=tone, timeout=10)
        log_view.write(Text(f"\n{result.summary}", style="bold"))
        for line in self._ledger_lines(result.run_id):
            log_view.write(line)
        if self.waiting_run:
            log_view.write(Text("d: the repair is done, continue the run", style="bold"))
        self.show_summary()
        self.update_status()
        self.refresh_bindings()

    def _on_event(self, ev: Any) -> None:
        """A step event from the runner (same event loop): the step list and the log follow it."""
        if ev.event in ("run-started", "run-resumed"):
            self.run_id = ev.run_id
            if self.aztriage.recovery_in_progress is not None:
                self.aztriage.recovery_in_progress = (self.aztriage.recovery_in_progress[0], ev.run_id)
            self.show_summary()
        if ev.index is not None and ev.state:
            self.states[ev.index] = ev.state
        if ev.index is not None and ev.event in ("verified", "skipped", "failed", "waiting", "done"):
            self.messages[ev.index] = ev.message
        if self.plan is not None:
            self.query_one(StepList).show_steps(self.plan.steps, self.states, read_only=False)
            if ev.index is not None and ev.event == "started":
                self.query_one(StepList).move_cursor_to_key(ev.index)
        where = f"{ev.index + 1}. " if ev.index is not None else ""
        mark = {"verified": "✓ ", "skipped": "↷ ", "failed": "✗ ", "waiting": "⏸ "}.get(ev.event, "  ")
        log_view = self.query_one("#log", RichLog)
        if ev.index is not None and ev.index != self._log_step:
            self._log_step, self._log_last = ev.index, ""
            log_view.write(Text(f"{where}{ev.title}", style="bold"))
        if ev.event in ("started", "run-finished"):
            return
        # A check's result repeats what its precondition already said: say it once.
        text = ev.message if ev.message != self._log_last else {"skipped": "already done", "verified": "ok"}.get(ev.event, ev.message)
        self._log_last = ev.message
        if ev.event == "waiting" and "\n" in text:
            # What the operator does now, its commands folded to paste back whole (the log would cut them anywhere).
            text = fold_text(text, max(20, log_view.scrollable_content_region.width - len(mark) - 1), self._shell())
        log_view.write(f"{mark}{text}")

    def _shell(self) -> str:
        """The shell the commands of this VM's instructions are written for."""
        os_type = self.plan.vm.os_type if self.plan is not None else ""
        return POWERSHELL if (os_type or "").lower() == "windows" else POSIX

    # --- runs in the journal -----------------------------------------------------------------------

    def action_history(self) -> None:
        if self.running:
            self.notify("A recovery is running: its steps are on screen.", timeout=3)
            return

        try:
            with self.journal() as journal:
                records = journal.list_runs()
        except J.JournalError as exc:
            self._failed(str(exc))
            return
        self.query_one(RunTable).show_runs(records)
        self.stage = RUNS

    @on(FastTable.CursorMoved, "#runs")
    def _run_cursor(self) -> None:
        if self.stage == RUNS:
            self.show_detail()
            self.refresh_bindings()

    @on(FastTable.Selected, "#runs")
    def _run_selected(self) -> None:
        record = self.query_one(RunTable).cursor_item
        if record is not None and resumable(record):
            self.action_resume()

    def action_resume(self) -> None:
        record = self.query_one(RunTable).cursor_item if self.stage == RUNS else None
        if record is None or not resumable(record):
            self.notify("Choose an interrupted, waiting or failed run to resume.", timeout=3)
            return
        if self.aztriage.backend is None:
            self.notify("Still connecting; try again in a moment.", timeout=3)
            return
        self.resume_run(record.run_id)

    def action_undo_run(self) -> None:
        record = self.query_one(RunTable).cursor_item if self.stage == RUNS else None
        if record is not None and self.aztriage.backend is not None:
            self.undo_or_release(record.run_id, "undo")

    def action_release_run(self) -> None:
        record = self.query_one(RunTable).cursor_item if self.stage == RUNS else None
        if record is not None and self.aztriage.backend is not None:
            self.undo_or_release(record.run_id, "release")

    @work(exclusive=True, group="recovery-run", exit_on_error=False)
    async def undo_or_release(self, run_id: str, what: str) -> None:
        """`runs --undo` / `runs --release` from the pane: shown, confirmed by the run id typed, then done."""
        from backend.recovery.release import DELETE, ReleaseRefused, release, release_plan
        from backend.recovery.undo import UndoRefused, undo, undo_plan

        if self.read_only:
            self.notify("Read-only: nothing can be undone or released.", severity="warning", timeout=4)
            return
        try:
            with self.journal() as journal:
                if what == "undo":
                    run, _, steps = undo_plan(journal, run_id)
                    lines = [f"{'undo' if i.can_undo else 'keep'} step {i.index + 1}: {i.title} ({i.how})" for i in steps]
                else:
                    run, items = release_plan(journal, run_id)
                    lines = [f"{'DELETE' if i.action == DELETE else 'keep'} {i.kind} {i.name} ({i.reason})" for i in items]
                    if not any(i.action == DELETE for i in items):
                        self.notify(f"Run {run_id} keeps nothing to release.", timeout=4)
                        return
        except (UndoRefused, ReleaseRefused, J.JournalError) as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return
        verb = "Undo" if what == "undo" else "Release"
        dialog = ConfirmDialog(f"{verb} run {run_id}: {run.scenario} on {run.vm_name}", lines, type_name=run_id, typed_what=f"{what} it", action=verb)
        if not await self.app.push_screen_wait(dialog):
            self.notify("Nothing was changed.", timeout=3)
            return
        try:
            with self.journal() as journal:
                if what == "undo":
                    results = [(text, ok) for _, text, ok in await undo(self.aztriage.connected_backend, journal, run_id)]
                else:
                    results = [(f"{item.kind} {item.name}: {text}", ok) for item, text, ok in await release(self.aztriage.connected_backend, journal, run_id)]
        except (UndoRefused, ReleaseRefused, BackendError) as exc:
            self.notify(f"{verb} of run {run_id} failed: {exc}", severity="error", timeout=8)
            return
        failed = [text for text, ok in results if not ok]
        self.notify("; ".join(text for text, _ in results), severity="error" if failed else "information", timeout=8)
        self.action_history()

    def _ledger_lines(self, run_id: str) -> list[str]:
        """The run's ledger: everything it created, and what became of it."""
        try:
            with self.journal() as journal:
                resources = journal.resources(run_id)
        except J.JournalError:
            return []
        if not resources:
            return []
        return ["ledger (what this run created):"] + [f"  {r.state:11} {r.kind:17} {r.resource_id.rsplit('/', 1)[-1]}" for r in resources]

    def action_operator_done(self) -> None:
        run_id = self.waiting_run if self.stage == RUN else None
        if self.stage == RUNS:
            record = self.query_one(RunTable).cursor_item
            run_id = record.run_id if record is not None and record.status == J.RUN_WAITING else None
        if run_id is None or self.running:
            self.notify("No run waits for you here.", timeout=3)
            return
        if self.aztriage.backend is None:
            self.notify("Still connecting; try again in a moment.", timeout=3)
            return
        self.resume_run(run_id)

    @work(exclusive=True, group="recovery-run", exit_on_error=False)
    async def resume_run(self, run_id: str) -> None:

        with self.journal() as journal:
            record = journal.get_run(run_id)
            documents = journal.facts(run_id)
        if record is None or not documents:
            self._failed(f"run {run_id} cannot be resumed: it is not in the journal")
            return
        facts = VmFacts.from_documents(documents)
        try:
            plan = scenarios.build_plan(record.scenario, facts, record.params)
        except PlanError as exc:
            self._failed(f"run {run_id} cannot be resumed: {exc}")
            return
        self.vm_id, self.facts, self.scenario_id, self.plan = record.vm_id, facts, record.scenario, plan
        self._forget_options()
        self.states = {s.idx: s.state for s in record.steps}
        self.messages = {s.idx: s.message for s in record.steps if s.message}
        pending = [s.idx for s in record.steps if s.state not in J.FINISHED_STEP_STATES]
        operator_done = False
        waiting = [s for s in record.steps if s.state == J.WAITING]
        if waiting:
            # What the step wrote when it began to wait (the rescue VM's address in it), else the plan's.
            found = str(waiting[0].outputs.get("instructions") or "")
            said = [waiting[0].message, ""] if waiting[0].message and not found else []
            shell = self._shell()
            operator_done = await self.app.push_screen_wait(
                ConfirmDialog(
                    f"Run {run_id} waits for you",
                    [*said, found or plan.steps[waiting[0].idx].instructions or waiting[0].title, "", "Is it done?"],
                    action="It is done",
                    fold=lambda text, width: fold_text(text, width, shell),  # its commands stay whole and paste back as they are
                )
            )
            if not operator_done:
                return
        needs = [n for n in record.needs_secrets if any(plan.steps[i].uses_secrets and record.steps[i].state in (J.PENDING, J.FAILED) for i in pending)]
        for name in needs:
            value = await self.app.push_screen_wait(
                SecretDialog("The secret again", f"Run {run_id} still has to send the {name.replace('_', ' ')}; secrets are never kept, so type it again:")
            )
            if value is None:
                self.notify("Not resumed: nothing was changed.", timeout=3)
                return
            self._secrets[name] = value
        confirm = None
        if any(plan.steps[i].kind.value == "destructive" for i in pending):
            ok = await self.app.push_screen_wait(
                ConfirmDialog(f"Resume {plan.title} on {plan.vm.name}", self._confirm_lines(plan, pending), type_name=plan.vm.name, action="Resume")
            )
            if not ok:
                self.notify("Not resumed: nothing was changed.", timeout=3)
                return
            confirm = plan.vm.name
        self.query_one(StepList).show_steps(plan.steps, self.states)
        await self._drive(lambda runner: runner.resume(run_id, scenarios.build_plan), confirm, operator_done=operator_done)

    # --- from the Connectivity pane -------------------------------------------------------------------

    @on(OpenRecovery)
    def _open_recovery(self, message: OpenRecovery) -> None:
        self.recommended = message
        self.open_vm(message.vm_id)

    # --- navigation ------------------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.running:
            self.notify("A recovery is running; it keeps going. Its steps are on screen.", timeout=3)
            return
        if self.stage == VMS:
            self.action_clear_filter()
            return
        self._secrets.clear()
        if self.stage == OPTIONS and self._options_back():
            return
        back = STAGES[self.stage].back
        if self.stage == PLAN and self._plan_has_options():
            back = OPTIONS
        if back == SCENARIOS and self.facts is None:
            back = VMS
        if back == SCENARIOS and self.facts is not None and not self.query_one("#scenarios", OptionList).option_count:
            self.show_scenarios()
            return
        self.stage = back

    def action_filter(self) -> None:
        if self.stage == VMS:
            super().action_filter()

    def _failed(self, message: str) -> None:
        self.busy = ""
        self.notify(message, severity="error", timeout=8)
        self.query_one("#detail", Static).update(Text(message, style="bold"))

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        commands: list[tuple[str, str, Any]] = [("recovery: runs in the journal", "List every recovery run; resume an unfinished one", self.action_history)]
        if self.stage == PLAN and self.plan is not None and not self.read_only and not self.plan.blockers:
            commands.append((f"recovery: run {self.plan.scenario} on {self.plan.vm.name}", "Confirm and run the plan shown", self.action_run_plan))
        vm = self.query_one(VmTable).cursor_vm if self.stage == VMS else None
        if vm is not None:
            commands.append((f"recovery: choose a recovery for {vm.name}", "Read the VM and list the scenarios it can take", lambda: self.open_vm(vm.id)))
        return commands
