"""The console: `aztriage` with no sub-command.

The App wires panes (tui/panes.py), bindings and the command palette, and owns
the one thing every pane shares: the latest Inventory. Loading runs in
workers; the Azure SDK (and, with --demo, the emulator) start after the
first frame so the screen appears at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from backend.config import Config, ConfigError
from backend.models import Inventory, Vm
from backend.settings import ConnectionSettings
from backend.turns import Turns
from tui.gc_pacing import forget_frames, forget_task
from tui.messages import InventoryChanged, LoadStateChanged, ShowVm, VerdictsChanged
from tui.palette import AztriageCommands
from tui.panes import PANES
from widgets.app_header import HeaderState

if TYPE_CHECKING:
    from backend.adapter import Backend

# The first load's parts are shown at most this often (tui.app._PartialLoads). Each part
# rebuilds the rows on the event loop the lists are read on: measured with
# benchmarks/launch.py at scale:10000, launch to every row took 6.3 s at 0.3, 3.8 s at 0.6
# and 2.8 s at 1.0 (medians of 5).
PARTIAL_EVERY_S = 1.0


log = logging.getLogger("aztriage.console")

EXPORT_DIR_NAME = "exports"
# While a modal is open an automatic refresh waits this long and tries again.
MODAL_RETRY_S = 5.0
STARTUP_BACKSTOP_S = 1.0  # connect even if no pane reported its first frame
FIRST_FRAME_GRACE_S = 0.25  # between the first pane's layout and the slow start (see pane_painted)
AUTO_PROBE_CONCURRENCY = 32  # connections the background probe holds open at once


def _utcnow() -> datetime:
    return datetime.now(UTC)


# A probe of at most this many VMs also puts the verdicts it changed on their timelines.
VERDICT_EVENTS_UP_TO = 200


class AztriageApp(App[int]):
    TITLE = "aztriage"
    CSS_PATH = ["app.tcss", "presenter.tcss"]

    BINDINGS = [
        # Pane keys are shown as the header's tabs, not in the footer.
        *(Binding(p.key, f"show_pane('{p.id}')", p.title, show=False, id=f"pane.{p.id}") for p in PANES),
        # Refresh and Quit are in `?` and the palette: the footer's 80 columns go to the pane's verbs.
        Binding("r", "refresh", "Refresh", show=False, id="refresh"),
        Binding("question_mark", "help", "Keys", id="help"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="command_palette", priority=True),
        Binding("q", "quit", "Quit", show=False, id="quit"),
        Binding("t", "change_theme", "Theme", show=False, id="theme.pick"),
        Binding("P", "toggle_present", "Presenter mode", show=False, id="present.toggle"),
    ]

    def __init__(
        self,
        settings: ConnectionSettings | None = None,
        *,
        config: Config | None = None,
        start_settings: Callable[[], ConnectionSettings] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        start_pane: str = "inventory",
        present: bool = False,
        broken: bool = False,
    ) -> None:
        """`settings` of a reachable endpoint, or `start_settings` that brings one up
        (the demo emulator) in a thread after the first frame; `clock` dates refreshes."""
        super().__init__()
        # The VM and run id of the recovery the Recovery pane is driving, while it runs (quit asks first).
        self.recovery_in_progress: tuple[str, str | None] | None = None
        if settings is None and start_settings is None:
            raise ValueError("give settings or start_settings")
        self.settings = settings
        self._start_settings = start_settings
        self.config = config or Config()
        self.now = clock
        self.start_pane = start_pane
        from tui.presenter import Presenter

        self.presenter = Presenter(self, enabled=present)  # presenter mode and the trail of operator actions
        self.backend: Backend | None = None  # made by connect(); `connected_backend` for work after it
        self.inventory: Inventory | None = None
        self.inventory_partial = False  # self.inventory is part of a load still under way
        # What is broken, from Resource Graph, instead of every VM (--broken; the palette loads
        # every VM), or before them (a tenant above graph_threshold subscriptions).
        self.broken_only = broken
        self.showing_broken = False  # self.inventory is what is broken, not every VM
        self.broken_note = ""  # what the broken view counted but does not list
        # VMs found in the tenant beyond those loaded (vm: find, the Inventory filter), read
        # whole from Resource Graph: kept in every inventory the console shows.
        self.found: Inventory | None = None
        self._probe_vms: list[Vm] = []  # for background_probe (see probe_after_load)
        self._sweeping: frozenset[str] = frozenset()  # VM ids (lower) the running background probe covers
        self._probe_waiting: set[str] = set()  # VM ids (lower) a load found while it ran: swept once it has finished
        self._changes_vms: list[Vm] = []  # for read_changes (see changes_for)
        self.refreshed_at: datetime | None = None
        self.load_error: str = ""
        self.exit_message: str | None = None
        self._subscribers: weakref.WeakSet[Screen] = weakref.WeakSet()
        self._inventory_timer: Timer | None = None
        self._identity = ""
        self.loads = 0  # finished loads (tests and benchmarks wait on these)
        self._started = False
        self._told_unfinished = False
        self._listed_subscriptions: Any = None
        self.failures = 0
        from tui.gc_pacing import GcPacer

        self.gc_pacer = GcPacer(busy=self._loading)
        from backend.verdict import VerdictBook

        # What this session learned about each VM (probes, boot logs): every pane's verdicts come from here.
        self.verdicts = VerdictBook()
        from backend.timeline import ConsoleEvents

        # What this session saw of each VM (probes, verdict changes), for its timeline.
        self.console_events = ConsoleEvents()
        self.probe_status = ""  # the background probe's progress, while it runs
        self.demo_history_seeded = False  # the demo's "last time it had another address" story, told once
        self._recheck: set[str] = set()  # VM ids (lower) to probe after the next load (a recovery ran)
        for p in PANES:
            self.add_mode(p.id, p.make_screen)

    # --- header state ----------------------------------------------------------------

    header_state: reactive[HeaderState] = reactive(HeaderState, always_update=True)

    def _where(self) -> str:
        s = self.settings
        if s is None:
            return "DEMO" if self._start_settings else ""
        if s.demo:
            return "DEMO"
        return f"{self._identity} @ {s.display_name}" if self._identity else s.display_name

    def update_header(self, status: str | None = None, tone: str = "") -> None:
        if status is None and self.probe_status and not self.load_error:
            status, tone = self.probe_status, "busy"
        if status is None:
            if self.refreshed_at is not None:
                status, tone = "↻ " + self.refreshed_at.astimezone(UTC).strftime("%H:%M:%S UTC"), ""
                if self.showing_broken:
                    status = "BROKEN ONLY " + status if self.broken_only else "broken shown · loading every VM…"
                    tone = "" if self.broken_only else "busy"
            else:
                status, tone = "connecting…", "busy"
            if self.load_error:
                tone = "error"
                status = "✖ " + (status if self.refreshed_at else "not loaded")
        read_only = self.settings.read_only if self.settings else False
        self.header_state = HeaderState(
            panes=tuple((p.key, p.id, p.title, p.short_title) for p in PANES),
            where=self._where(),
            read_only=read_only,
            status=status,
            status_tone=tone,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A serial console's terminal takes Ctrl+Q (XON) for the guest: quit stays on q elsewhere and in the palette.
        if action == "quit" and getattr(self.focused, "TAKES_EVERY_KEY", False):
            return False
        return super().check_action(action, parameters)

    # --- notifications ----------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None, markup: bool = False) -> None:
        """Every notification is plain text, whatever the caller asks: messages carry VM names,
        Azure's text and error messages, which are data and never markup (widgets/plain.py).
        ``Widget.notify`` forwards here with ``markup=True`` by default; that is ignored."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # --- start ------------------------------------------------------------------------

    def on_mount(self) -> None:
        from tui.themes import register_themes

        register_themes(self)
        self.theme = self.config.theme
        self._saved_theme = self.theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.presenter.start()
        if self.config.keys:
            self.set_keymap(dict(self.config.keys))
        self.update_header()
        self.switch_mode(self.start_pane)
        # Everything slow (emulator, SDK import, first load) starts once the first pane has been
        # drawn (pane_painted); the timer is a backstop should no pane report it.
        self.set_timer(STARTUP_BACKSTOP_S, self.pane_painted)

    def pane_painted(self) -> None:
        """The first pane is laid out at the terminal's size: connect, and tell about
        unfinished runs, FIRST_FRAME_GRACE_S later.

        Not earlier: the SDK's import and the demo's estate run in threads that hold the
        interpreter lock much of the time, and the first frame still has to be written out
        (`benchmarks/tui.py`, median of 9 spawns to the first frame: starting at once 0.62 s,
        0.1 s later 0.54 s, 0.25 s later 0.48 s)."""
        if self._started:
            return
        self._started = True
        self.set_timer(FIRST_FRAME_GRACE_S, self._start_work)

    def _start_work(self) -> None:
        self.connect()

    def _notify_unfinished_recoveries(self) -> None:
        """A recovery run that a crash or a lost session interrupted is listed at the next
        start: once the first load has ended (the Recovery pane's modules take about 0.1 s
        to import, which the first table no longer waits for)."""
        if self._told_unfinished:
            return
        self._told_unfinished = True
        from tui.screens.recovery import unfinished_runs_notice

        notice = unfinished_runs_notice()
        if notice:
            self.notify(notice, title="recovery", severity="warning", timeout=10)

    @work(exclusive=True, group="connect", exit_on_error=False)
    async def connect(self) -> None:
        from backend.composition import import_sdk

        # What the first load needs of the SDK runs in a thread, off the event loop, and
        # alongside the demo emulator's start when there is one; the management clients
        # are imported once the first load is in (warm_sdk_clients).
        sdk = asyncio.to_thread(import_sdk)
        settings = self.settings
        if settings is None:
            assert self._start_settings is not None, "the app is given settings or the means to start them"
            self.update_header("starting demo…", "busy")
            started, _ = await asyncio.gather(asyncio.to_thread(self._start_settings), sdk)
            self.settings = settings = started
        else:
            self.update_header("connecting…", "busy")
            await sdk
        from backend.composition import create_backend

        self.backend = create_backend(settings)
        self._identity = getattr(self.backend, "identity", "")
        if self.broken_only:
            await self._load_broken()
            self._arm_inventory_timer()
            return
        if await self._tenant_scale():
            from backend.errors import BackendError

            try:
                await self._load_broken()
            except BackendError as exc:  # every VM still loads: that answer will say what is wrong
                log.warning("what is broken could not be read first: %s", exc, exc_info=True)
                self.notify(f"What is broken could not be read first ({exc}); loading every VM.", severity="warning", timeout=8)
        self.refresh_inventory()

    @work(exclusive=True, group="warm-up", exit_on_error=False)
    async def warm_sdk_clients(self) -> None:
        """Import the SDK's management clients (about 0.5 s of CPU) in a thread, once the
        first load is in: the first recovery, boot log or Network Watcher check does not
        import them on the event loop. (Imported alongside the first load, they held the
        interpreter lock while it parsed its pages: `benchmarks/launch.py`.)"""
        from backend.composition import import_sdk_clients

        await asyncio.to_thread(import_sdk_clients)

    async def _tenant_scale(self) -> bool:
        """A tenant too large to wait for: more subscriptions than graph_threshold, read through
        Resource Graph (engine auto or arg). The console shows what is broken first."""
        settings = self.settings
        if settings is None or settings.engine == "arm":
            return False
        from backend.errors import BackendError

        try:
            if settings.subscriptions:
                count = len(settings.subscriptions)
            else:
                self._listed_subscriptions = await self.connected_backend.list_subscriptions()  # the first load uses them
                count = len(self._listed_subscriptions)
        except BackendError:
            return False  # the load that follows says what is wrong, where a load's errors go
        return count > settings.graph_threshold and settings.uses_graph(count)

    async def _load_broken(self) -> None:
        """What is broken across the tenant (backend/search.py: four Resource Graph queries),
        shown in every pane as an inventory of those VMs alone until every VM is loaded."""
        from backend.search import broken, broken_inventory

        assert self.settings is not None, "connect() sets them first"
        self.update_header("reading what is broken…", "busy")
        backend = self.connected_backend
        subscriptions = list(self.settings.subscriptions) or None
        found = await broken(backend, subscriptions)
        known = await backend.list_subscriptions()
        inventory = self._with_found(broken_inventory(found, known))
        if self.inventory is not None and not self.showing_broken:
            return  # every VM landed meanwhile: it says more
        self.inventory = inventory
        self.showing_broken = True
        self.inventory_partial = False
        self.broken_note = f"{found.stopped_by_owner} VMs stopped by their owners not listed" if found.stopped_by_owner else ""
        self.loads += 1
        self.refreshed_at = self.now()
        self.load_error = ""
        self.update_header()
        self.broadcast(InventoryChanged(inventory))
        if self.loads == 1:
            self.warm_sdk_clients()
        for warning in found.warnings:
            self.notify(warning, severity="warning", timeout=10)
        every = "the palette's 'view: load every VM' loads every VM" if self.broken_only else "every VM is loading"
        self.notify(
            f"What is broken across the tenant: {len(found.vms)} VMs not Available, {len(found.events)} active events, "
            f"{len(found.maintenance)} {'VM' if len(found.maintenance) == 1 else 'VMs'} with maintenance pending ({found.queries} Resource Graph queries); {every}.",
            timeout=8,
        )

    def load_every_vm(self) -> None:
        """Leave the broken-only view: load every VM (the palette)."""
        self.broken_only = False
        self.action_refresh()

    @work(exclusive=True, group="inventory", exit_on_error=False)
    async def refresh_inventory(self) -> None:
        self._cancel_inventory_timer()
        self.update_header("loading…" if self.inventory is None else "refreshing…", "busy")
        # The first load is shown as it comes: each subscription's rows once its lists are
        # joined, the instance views' facts ("…" until read) when the load lands. A refresh
        # keeps the table it has until the new inventory is whole.
        # (A load that failed or was restarted after showing parts leaves a part: the next
        # load is shown as it comes too.)
        if self.broken_only:
            try:
                await self._load_broken()
            finally:
                self._arm_inventory_timer()
            return
        # What is broken stays on screen until every VM has landed: parts would show less of it.
        partial = _PartialLoads(self) if (self.inventory is None or self.inventory_partial) and not self.showing_broken else None
        try:
            assert self.settings is not None, "connect() sets them before the first load"
            subscriptions = list(self.settings.subscriptions) or None
            # A large inventory is frozen as it lands, before the collector is back (tui/gc_pacing.py).
            with self.gc_pacer.loading():
                listed, self._listed_subscriptions = self._listed_subscriptions, None  # listed by connect() a moment ago
                inventory = await self.connected_backend.inventory(
                    subscriptions, on_progress=partial.seen if partial else None, visible=listed, views_after_lists=partial is not None
                )
                if self.gc_pacer.landed(len(inventory.vms)):
                    self.set_interval(1.0, self.gc_pacer.tick)
        finally:
            if partial is not None:
                partial.stop()
            self._arm_inventory_timer()
            self.call_after_refresh(self._notify_unfinished_recoveries)
        self.gc_pacer.retire(self.inventory)
        inventory = self._with_found(inventory)
        self.inventory = inventory
        self.inventory_partial = False
        self.showing_broken = False
        self.broken_note = ""
        self.loads += 1
        self.refreshed_at = self.now()
        previous_error = self.load_error
        self.load_error = ""
        self.update_header()
        self.broadcast(InventoryChanged(inventory))
        self.probe_after_load()
        if self.loads == 1:
            self.warm_sdk_clients()
        if inventory.errors:
            failed = ", ".join(self.subscription_label(e.subscription_id) for e in inventory.errors)
            self.notify(f"{len(inventory.errors)} subscription(s) failed to load: {failed}. See the error rows.", severity="error", timeout=8)
        elif previous_error:
            self.notify("Loaded again.", timeout=3)
        for warning in inventory.warnings:  # Resource Graph said its answer is incomplete
            self.notify(warning, severity="warning", timeout=10)

    def _with_found(self, inventory: Inventory) -> Inventory:
        """The VMs found in the tenant (vm: find, the Inventory filter) that this inventory lacks, added to it."""
        if self.found is None:
            return inventory
        from backend.search import merge_inventories

        return merge_inventories(inventory, self.found)

    async def find_in_tenant(self, text: str) -> list[Vm]:
        """A VM by name, IP or id anywhere in the tenant (one Resource Graph query), read whole
        and added to the inventory every pane shows; the VMs found, or none."""
        from backend.search import find_vms, merge_inventories

        backend = self.connected_backend
        found = await find_vms(backend, text)  # the whole tenant, whichever subscriptions are loaded
        if not found.vms:
            return []
        part = await backend.graph_vms([v.id for v in found.vms])
        self.found = part if self.found is None else merge_inventories(self.found, part)
        if self.inventory is not None:
            self.inventory = merge_inventories(self.inventory, part)
            self.broadcast(InventoryChanged(self.inventory))
        if found.truncated:
            self.notify("More VMs match than are shown (or Resource Graph cut its answer): search with more of the name.", severity="warning", timeout=8)
        return list(part.vms)

    async def read_whole(self, vm_id: str) -> None:
        """A VM the broken view knows only from its health or maintenance row, read whole from
        Resource Graph (its NICs, disks, NSGs), in every pane from now on."""
        from backend.search import merge_inventories

        part = await self.connected_backend.graph_vms([vm_id])
        if not part.vms:
            return
        self.found = part if self.found is None else merge_inventories(self.found, part)
        if self.inventory is not None:
            self.inventory = merge_inventories(self.inventory, part)
            self.broadcast(InventoryChanged(self.inventory))

    def show_partial(self, inventory: Inventory) -> None:
        """Part of the first load (tui.app._PartialLoads): every pane redraws from it."""
        self.inventory = inventory
        self.inventory_partial = True
        self.update_header(f"loading… {len(inventory.vms)} VMs", "busy")
        self.broadcast(InventoryChanged(inventory))

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker becomes a log line with its traceback and a
        notification: the app's own workers, and every screen's, which Textual posts to
        the screen that started them and BaseScreen forwards here."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            self._worker_failed(worker)
        if event.state in (WorkerState.CANCELLED, WorkerState.ERROR):
            # What stopped the worker keeps the frames it stopped in, and with them the
            # inventory and findings they held, for as long as the Worker lives: every
            # callback scheduled while it ran keeps it (Textual's active_worker context
            # variable). A refresh cancels the background probe each time (tui/gc_pacing.py).
            forget_frames(worker.error)
        if event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED, WorkerState.ERROR):
            forget_task(worker)  # a finished worker and its task were a reference cycle

    def _worker_failed(self, worker: Worker) -> None:
        error = worker.error
        if worker.node is not self:
            self._screen_worker_failed(worker)
            return
        if worker.group == "auto-probe":
            # Not a load failure: the inventory stands; the verdicts stay Azure's view.
            log.error("the background probe failed: %s", error, exc_info=error)
            self.notify(f"The background probe failed ({type(error).__name__}: {error}); probe from the Connectivity pane.", severity="warning", timeout=8)
            return
        from backend.errors import BackendError
        from backend.settings import SettingsError

        if isinstance(error, (BackendError, SettingsError)):
            message = str(error)
        else:
            from tui.errors import CliError

            if isinstance(error, CliError) and worker.group == "connect":
                # Bad --demo-estate and the like: leave with one line on stderr.
                self.exit_message = str(error)
                self.exit(return_code=error.exit_code)
                return
            message = f"{type(error).__name__}: {error}"
        self.failures += 1
        log.error("%s failed: %s", worker.group or worker.name, message, exc_info=error)
        what = "connecting" if worker.group == "connect" else "refreshing"
        self.load_error = f"{what} failed: {message}"
        self.update_header()
        self.broadcast(LoadStateChanged())
        next_step = "press r to try again" if self.backend is not None else "check the connection options and restart"
        self.notify(f"{self.load_error.rstrip('.')}; {next_step}.", severity="error", timeout=10)
        if worker.group == "connect":
            self._notify_unfinished_recoveries()  # no load comes to tell it after

    def _screen_worker_failed(self, worker: Worker) -> None:
        """A screen's worker (rows, a sweep, a probe, a recovery step) failed: that is a
        bug or an error the screen did not expect. Not a load failure, so the inventory's
        error rows stay as they are; the operator is told which work stopped and where
        the traceback is."""
        from backend.errors import BackendError
        from backend.settings import SettingsError

        error = worker.error
        screen = worker.node
        where = type(screen).__name__.removesuffix("Screen")
        what = worker.group if worker.group and worker.group != "default" else worker.name or "a task"
        log.error("%s on the %s screen failed: %s: %s", what, where, type(error).__name__, error, exc_info=error)
        first_line = next(iter(str(error).splitlines()), "")
        log_file = next((h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)), None)
        self.notify(
            f"{what} on the {where} screen failed: {type(error).__name__}: {first_line}" + (f" (traceback in {log_file})" if log_file else ""),
            title="error" if isinstance(error, (BackendError, SettingsError)) else "internal error",
            severity="error",
            timeout=15,
            markup=False,
        )

    # --- auto refresh ----------------------------------------------------------------

    def _cancel_inventory_timer(self) -> None:
        if self._inventory_timer is not None:
            self._inventory_timer.stop()
            self._inventory_timer = None

    def _arm_inventory_timer(self, delay: float | None = None) -> None:
        """Re-armed after every load, so a slow load never piles up refreshes."""
        self._cancel_inventory_timer()
        interval = self.config.refresh_interval
        if interval <= 0:
            return
        self._inventory_timer = self.set_timer(delay if delay is not None else interval, self._refresh_when_due)

    def _refresh_when_due(self) -> None:
        self._inventory_timer = None
        if not self.is_running:  # quitting: the screens are being closed, the timer fired anyway
            return
        if isinstance(self.screen, ModalScreen):
            self._arm_inventory_timer(min(MODAL_RETRY_S, self.config.refresh_interval))
            return
        self.refresh_inventory()

    def _loading(self) -> bool:
        return any(w.is_running and w.group in ("inventory", "inventory-rows") for w in self.workers)

    def action_refresh(self) -> None:
        if self.backend is None:
            self.notify("Still connecting; the first load starts by itself.", timeout=3)
            return
        if any(w.group == "inventory" and w.is_running for w in self.workers):
            self.notify("A refresh is already running.", timeout=2)
            return
        self.load_error = ""
        self.refresh_inventory()

    # --- panes -----------------------------------------------------------------------

    def subscribe(self, screen: Screen) -> None:
        self._subscribers.add(screen)

    def unsubscribe(self, screen: Screen) -> None:
        self._subscribers.discard(screen)

    def broadcast(self, message_factory: InventoryChanged | LoadStateChanged | VerdictsChanged) -> None:
        """Send a message to every mounted pane and detail page (each gets its own copy)."""
        for screen in list(self._subscribers):
            if isinstance(message_factory, InventoryChanged):
                screen.post_message(InventoryChanged(message_factory.inventory))
            elif isinstance(message_factory, VerdictsChanged):
                screen.post_message(VerdictsChanged())
            else:
                screen.post_message(LoadStateChanged())

    # --- verdicts (backend/verdict.py): one per VM, shared by every pane -----------------

    def verdict_for(self, vm: Any) -> Any:
        return self.verdicts.verdict(vm, self.inventory, self.now())

    def record_probe(self, report: Any, vms: Any) -> None:
        """A connectivity run's findings (probes, agent, boot logs) become the VMs' evidence."""
        for _ in self._recording_probe(report, vms):
            pass

    def _recording_probe(self, report: Any, vms: Any) -> Iterator[None]:
        """record_probe a step at a time: the background probe gives the event loop a turn
        between steps (it records about 9,000 VMs of a 10,000-VM estate at once)."""
        vms = list(vms)
        yield from self.verdicts.recording(report, vms, self.now())
        yield from self._remembering(report, vms)
        self.broadcast(VerdictsChanged())
        if len(vms) <= VERDICT_EVENTS_UP_TO:  # a background sweep of a large estate does not scan its changes
            self.changes_for(vms)

    def changes_for(self, vms: Any) -> None:
        """What changed lately on those of `vms` that do not answer (verdict evidence), read after
        the fact: one Resource Graph query, never a request per VM, never in the inventory load."""
        from backend.verdict import QUIET

        inventory = self.inventory
        wanted = [vm for vm in vms if not self.verdicts.changes_known(vm.id) and self.verdict_for(vm).id not in QUIET]
        if self.backend is None or inventory is None or not wanted:
            return
        self._changes_vms = self._changes_vms + wanted  # handed over in an attribute (see probe_after_load)
        self.read_changes()

    def record_changes(self, found: Any) -> None:
        """Changes a timeline already read (backend.timeline.Timeline.recent_change)."""
        self.verdicts.record_changes(found)
        self.broadcast(VerdictsChanged())

    @work(group="changes", exit_on_error=False, description="reading recent changes")
    async def read_changes(self) -> None:
        from backend.verdict import read_changes

        vms, self._changes_vms = self._changes_vms, []
        backend = self.backend
        if backend is None or not vms:
            return
        error = await read_changes(self.verdicts, backend, self.inventory, vms, self.now())
        if error:
            log.info("%s", error)  # evidence the verdict can do without: not worth a notification
            return
        self.broadcast(VerdictsChanged())

    def _remembering(self, report: Any, vms: Any) -> Iterator[None]:
        """A probe's answers and any verdict it changed, on the probed VMs' timelines (a step per answer)."""
        from backend.timeline import ConsoleEvent

        now = self.now()
        by_id = {vm.id.lower(): vm for vm in vms}
        for diagnosis in getattr(report, "diagnoses", ()) or ():
            if diagnosis.vm_id.lower() in by_id:
                self.console_events.add(ConsoleEvent(now, diagnosis.vm_id, f"probe of port {diagnosis.port}: {diagnosis.summary}", diagnosis.verdict))
                yield
        if len(by_id) > VERDICT_EVENTS_UP_TO:
            return  # a background sweep of a large estate: its panes work out the verdicts already
        for vm in by_id.values():
            verdict = self.verdicts.verdict(vm, self.inventory, now)
            self.console_events.verdict(vm.id, verdict.id, verdict.summary, now)

    def record_boot(self, vm: Any, boot: Any, *, broadcast: bool = True) -> None:
        """A serial log read (the Boot pane) becomes the VM's evidence; a sweep broadcasts once at its end."""
        self.verdicts.record_boot(vm, boot, self.now())
        if broadcast:
            self.broadcast(VerdictsChanged())

    def recheck(self, vm_id: str) -> None:
        """A recovery changed the VM: forget what was probed, read the inventory again and
        probe the VM once it has loaded, so no pane keeps a verdict from before the fix."""
        self.verdicts.forget(vm_id)
        self._recheck.add(vm_id.lower())
        self.broadcast(VerdictsChanged())
        if self.backend is not None and not any(w.group == "inventory" and w.is_running for w in self.workers):
            self.refresh_inventory()

    def probe_after_load(self) -> None:
        """After a load: probe the running VMs nothing is known about yet (auto_probe), and
        the VMs a recovery changed.

        A background probe that is still running is not started again. On a large estate it
        outlasts a refresh (10,000 VMs that do not answer: about a minute, their boot logs
        read), and starting it afresh on every load, as before, meant it never finished and
        no verdict came of it. The VMs it does not cover wait and are probed once it has
        finished. A VM a recovery changed does not wait: the probe starts again with it."""
        inventory = self.inventory
        if inventory is None or self.backend is None:
            return
        rechecks = set(self._recheck)
        wanted = set(rechecks)
        if self.config.auto_probe:
            wanted |= {vm.id.lower() for vm in inventory.vms if self.verdicts.unchecked(vm)}
        self._recheck.clear()
        if not rechecks and self._sweep_running():
            self._probe_waiting |= wanted - self._sweeping
            return
        self._start_sweep([vm for vm in inventory.vms if vm.id.lower() in wanted and vm.power_state not in ("deallocated",)])

    def _sweep_running(self) -> bool:
        return any(w.group == "auto-probe" and not w.is_finished and not w.is_cancelled for w in self.workers)

    def _sweep_waiting(self) -> None:
        """The background probe has finished: the VMs loads found meanwhile that still need a probe."""
        inventory, waiting = self.inventory, self._probe_waiting
        self._probe_waiting = set()
        if inventory is not None and waiting:
            self._start_sweep([vm for vm in inventory.vms if vm.id.lower() in waiting and self.verdicts.unchecked(vm)])

    def _start_sweep(self, vms: list[Vm]) -> None:
        self._probe_waiting -= {vm.id.lower() for vm in vms}
        if vms:
            self._sweeping = frozenset(vm.id.lower() for vm in vms)
            # Handed over in an attribute, not as the worker's argument: a finished worker sits in
            # a reference cycle until a full collection, and its arguments (these VMs, and with
            # them an old inventory's objects) with it (tui/gc_pacing.py).
            self._probe_vms = vms
            self.background_probe()

    @work(exclusive=True, group="auto-probe", exit_on_error=False, description="probing in the background")
    async def background_probe(self) -> None:
        """Probe RDP/SSH of the VMs probe_after_load chose and read the boot logs of those that do
        not answer: read-only, bounded (AUTO_PROBE_CONCURRENCY connections), cancellable
        (stop_background_probe)."""
        from backend import connectivity
        from backend.lastknown import LastKnownStore, scope_for

        vms, self._probe_vms = self._probe_vms, []

        backend, inventory = self.backend, self.inventory
        if backend is None or inventory is None:  # probe_after_load starts this only after a load
            return
        done: set[str] = set()
        total = len(vms)

        def progress(diagnosis: Any) -> None:
            done.add(diagnosis.vm_id.lower())
            self.probe_status = f"probing {len(done)}/{total} VMs…"
            self.update_header()

        self.probe_status = f"probing {total} VMs…"
        self.update_header()
        self.broadcast(LoadStateChanged())
        try:
            env = await connectivity.environment(backend.settings, inventory)
            store = LastKnownStore(scope=scope_for(backend.settings))
            if backend.settings.demo and not self.demo_history_seeded:
                connectivity.seed_demo_history(store, env, inventory)
                self.demo_history_seeded = True
            request = connectivity.Request(
                source=self.config.source_ip,
                extra_ports=connectivity.extra_ports(self.config.probe_ports),
                timeout=2.0,
                attempts=1,
                concurrency=AUTO_PROBE_CONCURRENCY,
            )
            report = await connectivity.run(backend, inventory, vms, request, env=env, store=store, on_diagnosis=progress)
        finally:
            self.probe_status = ""
            self.update_header()
            self.broadcast(LoadStateChanged())
        turns = Turns()
        for _ in self._recording_probe(report, vms):
            if turns.due():
                await turns.next()
        self.gc_pacer.settled()  # what the probe found lives until the next one: frozen, not walked
        attention: list[str] = []
        # The verdicts are all new, 8-25 us of CPU each (10,000 in one piece held the loop 0.1-0.25 s): a few ms per turn of the loop.
        for vm in vms:
            if self.verdict_for(vm).needs_attention:
                attention.append(vm.name)
            if turns.due():
                await turns.next()
        if attention:
            self.notify(f"{len(attention)} VM(s) need attention: {', '.join(attention[:5])}" + ("…" if len(attention) > 5 else ""), title="verdicts", timeout=6)
        self._sweeping = frozenset()
        self.call_later(self._sweep_waiting)  # once this worker has finished

    def stop_background_probe(self) -> None:
        if not self.probe_status:
            self.notify("No background probe is running.", timeout=2)
            return
        self._probe_waiting.clear()  # stopped: nothing waits for it either
        for worker in self.workers:
            if worker.group == "auto-probe":
                worker.cancel()
        self.probe_status = ""
        self.update_header()
        self.broadcast(LoadStateChanged())
        self.notify("Background probe stopped; what it found so far is not used. Probe from the Connectivity pane.", timeout=4)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self.gc_pacer.operator_active()  # no full collection while the operator is at the keys (tui/gc_pacing.py)
        await super().on_event(event)

    async def action_quit(self) -> None:
        """Quit; while a recovery runs, only after the operator says so, with how to resume it."""
        running = self.recovery_in_progress
        if running is None:
            self.exit()
            return
        from widgets.confirm_dialog import ConfirmDialog

        vm_name, run_id = running
        from backend.shellcmd import fold_text

        resume = f"aztriage recover --resume {run_id}" if run_id else "aztriage runs"
        lines = [
            f"A recovery of {vm_name} is running{f' (run {run_id})' if run_id else ''}.",
            "Quitting stops it between steps: the journal keeps it as interrupted, and no step is left half-done in the journal's eyes.",
            "Resume it later in the Recovery pane (H, then R) or with:"
            if run_id
            else "Resume it later in the Recovery pane (H, then R), or find its run id with:",
            f"  {resume}",  # a command on a line of its own: copied whole
        ]

        def decided(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit()

        self.push_screen(ConfirmDialog("Quit while a recovery runs?", lines, action="Quit anyway", cancel_first=True, fold=fold_text), decided)

    def action_show_pane(self, pane_id: str) -> None:
        # From a detail page, go back to the pane's own page first.
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen):
            self.pop_screen()
        self.switch_mode(pane_id)

    @on(ShowVm)
    async def _show_vm(self, message: ShowVm) -> None:
        """A pane's "show this VM" (the Checklist's enter): the Inventory pane, unfiltered, cursor on the VM."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen):
            self.pop_screen()
        await self.switch_mode("inventory")
        inventory_screen: Any = self.screen
        inventory_screen.set_filter("")
        inventory_screen.table.move_cursor_to_key(message.vm_id.lower())

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    # --- presenter mode, the operator's trail, themes (tui/presenter.py, tui/themes.py) ---

    def action_toggle_present(self) -> None:
        on_now = self.presenter.toggle()
        self.notify("Presenter mode on: P turns it off." if on_now else "Presenter mode off.", timeout=3)

    def on_button_pressed(self, event: Any) -> None:
        # Bubbled up from a dialog: its own handler has already acted on it.
        if event.button.id == "confirm-ok":
            self.presenter.dialog_confirmed(event.button)

    def on_input_submitted(self, event: Any) -> None:
        if event.input.id == "confirm-name":
            self.presenter.dialog_confirmed(event.input, event.value)

    def _remember_theme(self, theme: Any) -> None:
        """A theme chosen in the console is written to the config file for the next start."""
        from backend.config_store import save_setting

        if theme.name == self._saved_theme:
            return
        try:
            path = save_setting("theme", theme.name, self.config.path)
        except ConfigError as exc:
            self.notify(f"Theme {theme.name} is used now but not remembered: {exc}", severity="warning", timeout=8)
            return
        self._saved_theme = theme.name
        overridden = " (AZTRIAGE_THEME still overrides it at start)" if os.environ.get("AZTRIAGE_THEME") else ""
        self.notify(f"Theme {theme.name}; remembered in {path}{overridden}.", timeout=3)

    # --- facts for the panes ---------------------------------------------------------

    def subscription_label(self, subscription_id: str) -> str:
        if self.inventory:
            for s in self.inventory.subscriptions:
                if s.subscription_id.lower() == subscription_id.lower():
                    return f"{s.display_name} ({subscription_id})"
        return subscription_id

    def error_lines(self) -> list[str]:
        lines = []
        if self.load_error:
            when = f" (showing data from {self.refreshed_at.astimezone(UTC):%H:%M:%S UTC})" if self.refreshed_at else ""
            lines.append(self.load_error.rstrip(".") + when + "; press r to retry.")
        if self.inventory:
            for e in self.inventory.errors:
                lines.append(f"subscription {self.subscription_label(e.subscription_id)}: {e.code}: {e.message} (its VMs are missing)")
        return lines

    # --- command palette and exports -------------------------------------------------

    COMMANDS = App.COMMANDS | {AztriageCommands}

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        commands: list[tuple[str, str, Any]] = []
        for p in PANES:
            commands.append((f"view: {p.title.lower()} pane", f"Show pane {p.key}, {p.title}", lambda i=p.id: self.action_show_pane(i)))
        commands += [
            ("view: refresh now", "Load the inventory again", self.action_refresh),
            *(
                [("view: load every VM", "Leave the what-is-broken view (--broken) and load every VM of the tenant", self.load_every_vm)]
                if self.broken_only
                else []
            ),
            ("probe: stop the background probe", "Stop probing RDP/SSH of the running VMs (X in the Inventory)", self.stop_background_probe),
            ("view: keys", "Every key of this screen", self.action_help),
            ("export: inventory as JSON", "Write every VM (the `aztriage inventory --format json` shape) to a file", self.export_inventory),
            ("export: health as JSON", "Write the Health view (the `aztriage health --format json` shape) to a file", self.export_health),
            ("app: quit", "Leave aztriage", self.exit),
            (
                "view: presenter mode " + ("off" if self.presenter.enabled else "on"),
                "Roomier layout, the why of each step and diagnosis shown large, a trail of what was done (P)",
                self.action_toggle_present,
            ),
            ("view: theme picker", "Choose a colour theme; it is remembered in the config file (t)", self.action_change_theme),
        ]
        from tui.themes import theme_names

        commands += [
            (f"view: theme {name}", f"Switch to the {name} theme (remembered)", lambda name=name: setattr(self, "theme", name)) for name in theme_names()
        ]
        return commands

    @property
    def connected_backend(self) -> Backend:
        """The backend, for work that only starts once connect() made it (a load, a recovery
        step, a report): a failure that names itself if that ever does not hold."""
        if self.backend is None:
            raise RuntimeError("aztriage is not connected to Azure yet: wait for the first load, or restart it")
        return self.backend

    def export_dir(self) -> Path:
        from backend.paths import data_dir

        path = data_dir() / EXPORT_DIR_NAME
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def export_text(self, what: str, extension: str, text: str) -> Path | None:
        """Write atomically to a private file; the notification shows the path."""
        from backend.files import write_private_atomically

        stamp = self.now().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        path = self.export_dir() / f"{what}-{stamp}.{extension}"
        try:
            write_private_atomically(path, text)
        except OSError as exc:
            self.notify(f"Export failed: {path} cannot be written ({exc.strerror}).", severity="error")
            return None
        self.notify(f"Exported {what} to {path}", title="export", timeout=10)
        return path

    def export_inventory(self) -> Path | None:
        inv = self.inventory
        if inv is None:
            self.notify("Nothing to export yet: the inventory is still loading.", severity="warning")
            return None
        from backend.jsonout import dumps

        doc = inv.to_json(native=True)
        for vm_doc, vm in zip(doc["vms"], inv.vms):
            vm_doc["verdict"] = self.verdict_for(vm).to_json()
        return self.export_text("inventory", "json", dumps(doc, native=True) + "\n")

    def export_health(self) -> Path | None:
        if self.inventory is None:
            self.notify("Nothing to export yet: the inventory is still loading.", severity="warning")
            return None
        from backend.health import health_view

        return self.export_text("health", "json", json.dumps(health_view(self.inventory, self.verdicts, self.now()).to_json(), indent=2) + "\n")

    async def on_unmount(self) -> None:
        self._cancel_inventory_timer()
        self.gc_pacer.release()
        if self.backend is not None:
            try:
                await self.backend.close()
            except Exception:  # closing is best effort on the way out
                log.debug("closing the backend failed", exc_info=True)


# --- configuration checks that need Textual --------------------------------------


def known_binding_ids() -> set[str]:
    """Every binding id declared in the console's screens and widgets (tui/keymap.py finds them)."""
    from tui.keymap import binding_ids

    return binding_ids()


def check_config(config: Config) -> None:
    """Theme and binding ids are Textual's to know: check them before the screen opens."""
    from tui.themes import theme_names

    where = f"config file {config.path}" if config.path else "configuration"
    if config.theme not in theme_names():
        raise ConfigError(f"{where}: theme {config.theme!r} is not a theme; use one of {', '.join(theme_names())}")
    if config.keys:
        known = known_binding_ids()
        for binding_id in config.keys:
            if binding_id not in known:
                raise ConfigError(f"{where}: keys.{binding_id} is not a binding id; known ids: {', '.join(sorted(known))}")


def run(args: argparse.Namespace) -> int:
    """Open the console (called by tui/cli.py when no sub-command is given)."""
    from tui.errors import CliError
    from tui.runtime import demo_emulator, load_settings_config, resolve_settings, settings_from_args

    try:
        config = load_settings_config()
        check_config(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if getattr(args, "no_auto_probe", False):
        import dataclasses

        config = dataclasses.replace(config, auto_probe=False)
    settings_from_args(args)  # bad options fail here, before the screen opens

    emulator_cm = demo_emulator(args) if args.demo else None
    started: dict[str, Any] = {}

    def start_demo() -> ConnectionSettings:
        # Runs in a worker thread after the first frame: building the estate and TLS material takes a moment.
        assert emulator_cm is not None  # only the demo starts this way
        emulator = emulator_cm.__enter__()
        started["emulator"] = emulator
        return resolve_settings(args, emulator)

    if args.demo:
        app = AztriageApp(start_settings=start_demo, config=config, present=bool(getattr(args, "present", False)), broken=bool(getattr(args, "broken", False)))
    else:
        app = AztriageApp(
            resolve_settings(args, None), config=config, present=bool(getattr(args, "present", False)), broken=bool(getattr(args, "broken", False))
        )
    from widgets.screenshot_view import prepare_graphics

    prepare_graphics()  # asks the terminal about image protocols while it can still answer
    try:
        app.run()
    finally:
        if "emulator" in started and emulator_cm is not None:
            emulator_cm.__exit__(None, None, None)
    if app.exit_message:
        raise CliError(app.exit_message, exit_code=app.return_code or 2)
    return int(app.return_code or 0)


class _PartialLoads:
    """The first load's inventory so far (``InventorySource.inventory``'s on_progress), shown
    at most every PARTIAL_EVERY_S: the first part at once, then the newest part, and the part
    that lists every VM at once. Each part
    is a whole new table of rows (10,000 of them take a few hundred ms), so the parts in
    between are skipped."""

    def __init__(self, app: AztriageApp) -> None:
        self._app = app
        self._newest: Inventory | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._shown_at = 0.0
        self._whole_shown = False
        self.shown = False

    def seen(self, inventory: Inventory) -> None:
        self._newest = inventory
        if inventory.lists_pending == 0 and not self._whole_shown:
            # Every VM is listed: the whole table now, not a second later.
            self._whole_shown = True
            if self._timer is not None:
                self._timer.cancel()
            self._show()
            return
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._shown_at + PARTIAL_EVERY_S - loop.time())
        self._timer = loop.call_later(delay, self._show)

    def _show(self) -> None:
        self._timer = None
        inventory, self._newest = self._newest, None
        if inventory is None:
            return
        self._shown_at = asyncio.get_running_loop().time()
        self.shown = True
        self._app.show_partial(inventory)

    def stop(self) -> None:
        """The load landed or failed: no part is shown after this."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._newest = None
