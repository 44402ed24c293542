"""Boot diagnostics: the serial console log and the console screenshot.

Pane 6, Boot: every VM with where its boot diagnostics go and, once read,
what the last boot did. `a` reads the serial log of every VM that has boot
diagnostics on (a triage sweep: which VMs did not boot?), enter opens one.

The detail page of one VM (enter here, `b` in the VM detail): the verdict
with its evidence line and the recovery it calls for; tabs for the serial
log (scrollable, `/` searches, `n`/`N` step through matches, `B` jumps to
the last boot, which is highlighted), the screenshot (drawn with a graphics
protocol where the terminal has one, in half blocks elsewhere) and the
repair commands (`v` goes to the next, `m` to the repair commands). `r` reads both again, `o` opens the recommended recovery,
`e` enables boot diagnostics (a change, made in the Recovery pane with its
confirmation; read-only shows it disabled), `x` exports the screenshot as PNG.

Reads run in workers; a failure is shown on the page and as a notification,
never as a load failure of the inventory.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static, TabbedContent, TabPane

from backend.models import Inventory
from backend.shellcmd import POSIX, POWERSHELL, fold_text
from tui.messages import OpenRecovery, VerdictsChanged
from tui.screens.base import BaseScreen, StateRowsMixin, TablePane
from widgets.boot_table import BootState, BootTable, boot_row
from widgets.fast_table import FastTable
from widgets.folded_text import FoldedLines
from widgets.screenshot_view import ScreenshotView
from widgets.scroll_panel import ScrollPanel
from widgets.serial_log import SerialLogView

log = logging.getLogger("aztriage.console.boot")

SWEEP_CONCURRENCY = 8

# What this session has read, per app: vm id (lower) -> BootState (shared by the pane and the detail pages).
_SESSION: weakref.WeakKeyDictionary[Any, dict[str, BootState]] = weakref.WeakKeyDictionary()


def session_states(app: Any) -> dict[str, BootState]:
    found = _SESSION.get(app)
    if found is None:
        found = _SESSION[app] = {}
    return found


def analyze_log(serial_log: str | bytes | None, os_type: str | None) -> tuple[list[str], Any]:
    """The log's lines as shown, and the verdict on its last boot (run in a worker thread)."""
    from backend import bootdiag

    if serial_log is None:
        return [], None
    lines = bootdiag.clean_lines(serial_log)
    return lines, bootdiag.analyze(lines, os_type)


async def read_boot(app: Any, state: BootState, *, screenshot: bool = True, broadcast: bool = True) -> Any:
    """Read one VM's boot diagnostics into `state`; returns the screenshot image (or None).
    Never raises: what went wrong is in state.error. The log's verdict becomes the VM's
    evidence (the app's verdicts), told to every pane unless `broadcast` is False."""
    from backend import bootdiag
    from backend.errors import BackendError, BootDiagnosticsOff

    vm = state.vm
    state.fetching = True
    state.error = ""
    image = None
    try:
        data = await app.backend.boot_diagnostics(vm, screenshot=screenshot)
    except BootDiagnosticsOff:
        state.off = True
        state.data = None
        state.verdict = None
        return None
    except BackendError as exc:
        state.error = str(exc)
        return None
    except Exception as exc:  # shown on the page; the traceback goes to the log file
        log.exception("reading the boot diagnostics of %s failed", vm.name)
        state.error = f"{type(exc).__name__}: {exc}"
        return None
    finally:
        state.fetching = False
    state.off = False
    state.data = data
    # A serial log is the guest's text and can be large: read it off the event loop.
    state.lines, state.verdict = await asyncio.to_thread(analyze_log, data.serial_log, vm.os_type)
    if state.verdict is not None and hasattr(app, "record_boot"):
        app.record_boot(vm, state.verdict, broadcast=broadcast)
    if data.serial_log is None and data.serial_error:
        state.error = data.serial_error
    if data.screenshot:
        try:
            image = await asyncio.to_thread(bootdiag.screenshot_image, data.screenshot)
        except ValueError as exc:
            state.error = state.error or str(exc)
    return image


async def open_recovery(screen: Any, vm_id: str, scenario: str, reason: str, evidence: tuple[str, ...] = ()) -> None:
    from tui.panes import PANES

    if not any(p.id == "recovery" for p in PANES):
        name = vm_id.rstrip("/").rsplit("/", 1)[-1]
        screen.notify(
            f"The Recovery pane is not in this build; from a shell: aztriage recover {scenario or 'SCENARIO'} --vm {name}", severity="warning", timeout=8
        )
        return
    message = OpenRecovery(vm_id, scenario, reason=reason, evidence=evidence)
    await screen.app.switch_mode("recovery")
    screen.app.screen.post_message(message)


async def recover_from_boot(screen: Any, state: BootState | None) -> None:
    """o in the Boot pane and on the boot page: a VM whose boot diagnostics are off gets them
    enabled first; otherwise the VM's one verdict decides (the same in every pane), not the
    log alone: its recovery, else its list of scenarios."""
    if state is None:
        return
    if state.off or not state.vm.boot_diagnostics.enabled:
        await open_recovery(screen, state.vm.id, "enable-boot-diagnostics", *reason_of(state))
        return
    from tui.vm_commands import recover

    recover(screen, state.vm)


class BootVerbs:
    """o, p and e on one VM's boot state (``boot_state``), the same in the Boot pane (the row
    under the cursor) and on the VM's boot page."""

    if TYPE_CHECKING:  # what the screen that mixes this in provides

        @property
        def boot_state(self) -> BootState | None: ...

        def notify(self, *args: Any, **kwargs: Any) -> None: ...

    def already_on(self, state: BootState) -> bool:
        """e finds the VM's boot diagnostics already on, as its model says."""
        return state.vm.boot_diagnostics.enabled

    async def action_open_recovery(self) -> None:
        await recover_from_boot(self, self.boot_state)

    def action_probe(self) -> None:
        from tui.vm_commands import probe

        state = self.boot_state
        probe(self, state.vm if state is not None else None)

    async def action_enable(self) -> None:
        state = self.boot_state
        if state is None:
            return
        if self.already_on(state):
            self.notify(f"Boot diagnostics are already on for {state.vm.name}.", timeout=3)
            return
        await open_recovery(self, state.vm.id, "enable-boot-diagnostics", f"boot diagnostics are off on {state.vm.name}: nothing to diagnose a boot from")


# --- the pane ---------------------------------------------------------------------------------


class BootScreen(BootVerbs, StateRowsMixin, TablePane[BootTable]):
    PANE_ID = "boot"
    table_type, table_id = BootTable, "boot-vms"
    detail_id, detail_name = "boot-detail", "details"
    filter_placeholder = "filter: name, OS, power, verdict, recovery"
    row = staticmethod(boot_row)  # StateRowsMixin
    CSS_PATH = "boot.tcss"

    BINDINGS = [
        Binding("a", "read_all", "Check all", id="boot.read_all"),
        Binding("o", "open_recovery", "Recover", id="boot.open_recovery"),
        Binding("p", "probe", "Probe", show=False, id="boot.probe"),
        Binding("e", "enable", "Enable", id="boot.enable"),
        Binding("i", "console", "Serial console", show=False, id="boot.console"),
        Binding("slash", "filter", "Filter", show=False, id="boot.filter"),
        Binding("escape", "clear_filter", "Clear", id="boot.clear_filter"),
    ]

    def after_filter(self) -> None:
        self.show_detail()

    def __init__(self) -> None:
        super().__init__()
        self.sweeping = False
        self.swept_at: datetime | None = None
        self._flush_timer = None

    @property
    def states(self) -> dict[str, BootState]:  # type: ignore[override]  # the session's, read-only here; StateRowsMixin only reads it
        return session_states(self.app)

    def show_inventory(self, inventory: Inventory) -> None:
        states = self.states
        seen = set()
        verdict = self.aztriage.verdict_for
        for vm in inventory.vms:
            key = vm.id.lower()
            seen.add(key)
            if key in states:
                states[key].vm = vm
            else:
                states[key] = BootState(vm)
            states[key].vm_verdict = verdict(vm)
        for key in [k for k in states if k not in seen]:
            del states[key]
        self._redraw()

    def on_screen_resume(self) -> None:
        # A detail page may have read a VM meanwhile.
        self._redraw()

    def show_summary(self) -> None:
        states = list(self.states.values())
        off = sum(1 for s in states if not s.vm.boot_diagnostics.enabled)
        read = [s for s in states if s.verdict is not None]
        broken = [s for s in read if s.verdict is not None and s.verdict.problem]
        text = Text(" ")
        text.append(f"{len(states)} VMs", style="bold")
        text.append(f" · boot diagnostics off on {off}")
        if read:
            text.append(f" · {len(read)} logs read")
            if broken:
                text.append(f" · {len(broken)} DID NOT BOOT", style="bold")
        elif not self.sweeping:
            text.append(" · a: read every log")
        if self.sweeping:
            text.append(" · reading…", style="bold")
        self.query_one("#summary", Static).update(text)

    def show_detail(self) -> None:
        state = self.table.cursor_state
        self.query_one("#boot-detail", Static).update(
            state_lines(state, verdict=self.aztriage.verdict_for(state.vm), now=self.aztriage.now()) if state is not None else ""
        )

    @on(VerdictsChanged)
    def _verdicts_changed(self) -> None:
        self.redraw_when_shown()

    # --- reading -----------------------------------------------------------------------------

    def action_read_all(self) -> None:
        if self.aztriage.backend is None or self.aztriage.inventory is None:
            self.notify("Still connecting: read the logs when the inventory has loaded.", severity="warning", timeout=4)
            return
        if self.sweeping:
            self.notify("The logs are being read already.", timeout=2)
            return
        self.sweep()

    @work(exclusive=True, group="boot-sweep", exit_on_error=False)
    async def sweep(self) -> None:
        targets = [s for s in self.states.values() if s.vm.boot_diagnostics.enabled]
        self.sweeping = True
        for s in targets:
            s.fetching = True
        self._flush()
        semaphore = asyncio.Semaphore(SWEEP_CONCURRENCY)

        async def one(state: BootState) -> None:
            async with semaphore:
                await read_boot(self.app, state, screenshot=False, broadcast=False)
            self._schedule_flush()

        try:
            await asyncio.gather(*(one(s) for s in targets))
        finally:
            self.sweeping = False
            for s in targets:
                s.fetching = False
            self.swept_at = self.aztriage.now()
            self._flush()
            self.aztriage.broadcast(VerdictsChanged())
        broken = [s.vm.name for s in targets if s.verdict is not None and s.verdict.problem]
        failed = [s for s in targets if s.error]
        if broken:
            self.notify(f"{len(broken)} VM(s) did not boot: {', '.join(broken[:5])}", title="boot", severity="warning", timeout=8)
        if failed:
            self.notify(f"{len(failed)} log(s) could not be read; see the LAST BOOT column.", severity="warning", timeout=6)

    # --- rows ---------------------------------------------------------------------------------

    @on(FastTable.Selected, "#boot-vms")
    def _open(self, event: FastTable.Selected) -> None:
        state: BootState = event.item
        if state is not None:
            self.app.push_screen(BootDetailScreen(state.vm.id))

    @on(FastTable.CursorMoved, "#boot-vms")
    @on(FastTable.SortChanged, "#boot-vms")
    def _cursor(self) -> None:
        self.show_detail()
        self.update_status()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "enable":
            # Offered for a VM whose boot diagnostics are off (the footer has no room for a key that does nothing).
            state = self.table.cursor_state
            return state is not None and not state.vm.boot_diagnostics.enabled
        return super().check_action(action, parameters)

    @property
    def boot_state(self) -> BootState | None:
        return self.table.cursor_state

    def update_status(self) -> None:
        table = self.table
        text = Text()
        if self.aztriage.inventory is None:
            text.append(" loading inventory…" if not self.aztriage.load_error else " no inventory")
        else:
            text.append(f" {table.total_count} VMs")
            if table.filter_text:
                text.append(f" · {table.row_count} match ")
                text.append(f"/{table.filter_text}", style="bold")
            if table.row_count:
                text.append(f" · row {table.cursor_row + 1}/{table.row_count}")
            text.append(" · enter: serial log and screenshot · i: serial console")
        self.set_status(text)

    def action_console(self) -> None:
        from tui.screens.serial_console import open_console

        state = self.table.cursor_state
        if state is not None:
            open_console(self, state.vm)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        commands: list[tuple[str, str, Any]] = [
            ("boot: read every serial log", "Read the serial log of every VM with boot diagnostics on; shows which did not boot", self.action_read_all),
            ("view: filter VMs", "Type to filter the Boot pane", self.action_filter),
        ]
        state = self.table.cursor_state
        if state is not None:
            commands.append(
                (
                    f"boot: serial log and screenshot of {state.vm.name}",
                    "Open the boot diagnostics of the selected VM",
                    lambda: self.app.push_screen(BootDetailScreen(state.vm.id)),
                )
            )
            commands.append((f"boot: serial console of {state.vm.name}", "Type into the VM through Azure Serial Console (i)", self.action_console))
        return commands


# --- one VM ------------------------------------------------------------------------------------


class LogSearch(Input):
    """The search box of the serial log."""


class BootDetailScreen(BootVerbs, BaseScreen):
    CSS_PATH = "boot.tcss"

    BINDINGS = [
        Binding("escape", "back", "Back", id="bootlog.back"),
        Binding("r", "refresh_boot", "Refresh", id="bootlog.refresh"),
        Binding("slash", "search", "Search", id="bootlog.search"),
        Binding("n", "next_match(1)", "Next match", show=False, id="bootlog.next"),
        Binding("N", "next_match(-1)", "Previous match", show=False, id="bootlog.previous"),
        Binding("B", "last_boot", "Last boot", show=False, id="bootlog.last_boot"),
        Binding("v", "next_view", "View", id="bootlog.view"),
        Binding("m", "tab('repair')", "Repair", id="bootlog.repair"),
        Binding("o", "open_recovery", "Recover", id="bootlog.open_recovery"),
        Binding("p", "probe", "Probe", show=False, id="bootlog.probe"),
        Binding("e", "enable", "Enable", show=False, id="bootlog.enable"),
        Binding("x", "save_screenshot", "Export", show=False, id="bootlog.save"),
    ]

    def __init__(self, vm_id: str) -> None:
        super().__init__()
        self.vm_id = vm_id
        self.image: Any = None
        self.fetches = 0  # finished reads (tests wait on these)

    @property
    def state(self) -> BootState | None:
        return session_states(self.app).get(self.vm_id.lower())

    def compose_body(self) -> ComposeResult:
        with ScrollPanel(id="boot-verdict-box", name="verdict"):
            yield Static("", id="boot-verdict", markup=False)
        with TabbedContent(initial="log", id="boot-tabs"):
            with TabPane("Serial log", id="log"):
                yield LogSearch(placeholder="search the log (enter: next, esc: close)", id="log-search", select_on_focus=False)
                yield SerialLogView(id="serial-log")
            with TabPane("Screenshot", id="screenshot"):
                yield ScreenshotView(id="screenshot-view")
            with TabPane("Repair", id="repair"):
                with VerticalScroll(id="repair-scroll"):
                    yield Static("", id="repair-text", markup=False)

    def on_mount(self) -> None:
        self.query_one(LogSearch).cursor_blink = False
        super().on_mount()
        self.query_one(SerialLogView).focus()
        if self.state is None and self.aztriage.inventory is not None:
            vm = self.aztriage.inventory.vm_by_id(self.vm_id)
            if vm is not None:
                session_states(self.app)[vm.id.lower()] = BootState(vm)
        self.show_state()
        self.fetch()

    def show_inventory(self, inventory: Inventory) -> None:
        vm = inventory.vm_by_id(self.vm_id)
        states = session_states(self.app)
        if vm is not None:
            if vm.id.lower() in states:
                states[vm.id.lower()].vm = vm
            else:
                states[vm.id.lower()] = BootState(vm)
        self.update_status()

    # --- reading ----------------------------------------------------------------------------

    def action_refresh_boot(self) -> None:
        self.fetch()

    @work(exclusive=True, group="boot-read", exit_on_error=False)
    async def fetch(self) -> None:
        app = self.aztriage
        while app.backend is None or self.state is None:  # opened before the first load finished
            if app.inventory is not None and self.state is None:
                vm = app.inventory.vm_by_id(self.vm_id)
                if vm is None:
                    self.query_one("#boot-verdict", Static).update(Text(f"No VM with id {self.vm_id} in the inventory.", style="bold"))
                    return
                session_states(app)[vm.id.lower()] = BootState(vm)
                continue
            await asyncio.sleep(0.1)
        state = self.state
        state.fetching = True
        self.show_state(loading=True)
        image = await read_boot(app, state)
        self.image = image
        self.fetches += 1
        if state.error and not state.off:
            self.notify(f"{state.vm.name}: {state.error}", severity="error", timeout=8)
        await self.show_data()

    async def show_data(self) -> None:
        state = self.state
        if state is None:
            return
        from backend import bootdiag

        log_view = self.query_one(SerialLogView)
        shot = self.query_one(ScreenshotView)
        if state.off:
            log_view.set_log([])
            log_view.set_empty_text(f"Boot diagnostics are off for {state.vm.name}: there is no serial log. e: enable them.")
            await shot.show_message(f"Boot diagnostics are off for {state.vm.name}: there is no screenshot. e: enable them.")
        elif state.data is not None:
            lines = state.lines
            verdict = state.verdict
            last = verdict.last_boot if verdict is not None else bootdiag.Boot(0, len(lines))
            evidence = {f.line_number - 1 for f in verdict.findings} if verdict is not None else set()
            log_view.set_log(lines, last.start, last.end, evidence)
            if not lines:
                log_view.set_empty_text(state.data.serial_error or "The serial log is empty: nothing was captured since boot diagnostics were enabled.")
            if self.image is not None:
                caption = f"{state.vm.name} · {self.image.width}x{self.image.height} · {state.data.storage}"
                await shot.show_image(self.image, caption)
            else:
                await shot.show_message(state.data.screenshot_error or "No screenshot.")
        else:
            log_view.set_log([])
            log_view.set_empty_text(state.error or "No serial log.")
            await shot.show_message(state.error or "No screenshot.")
        if log_view.term:
            log_view.search(log_view.term)
        self.show_state()

    def show_state(self, loading: bool = False) -> None:
        state = self.state
        verdict_box = self.query_one("#boot-verdict", Static)
        repair_box = self.query_one("#repair-text", Static)
        if state is None:
            verdict_box.update(Text(" loading inventory…", style="dim"))
            return
        text = state_lines(state, loading=loading, verdict=self.aztriage.verdict_for(state.vm), now=self.aztriage.now())
        if state.data is not None and state.data.fetched_at is not None and not (loading or state.fetching):
            when = self.aztriage.now().strftime("%H:%M:%S UTC")
            text.append(f"\nread {when}, {state.data.storage}", style="dim")
        verdict_box.update(text)
        repair_box.update(repair_text(state))
        self.update_status()

    # --- keys ----------------------------------------------------------------------------------

    def action_back(self) -> None:
        box = self.query_one(LogSearch)
        if box.has_focus or (box.has_class("-shown") and box.value):
            self._close_search()
            return
        self.app.pop_screen()

    def action_tab(self, tab: str, focus: bool = True) -> None:
        # Focus moves into the new tab: TabbedContent shows the tab of whatever has focus.
        tabs = self.query_one(TabbedContent)
        if tabs.active == tab:
            return
        target = {"log": "#serial-log", "screenshot": "#screenshot-view", "repair": "#repair-scroll"}[tab]
        self.set_focus(None)
        tabs.active = tab
        if focus:
            self.call_after_refresh(lambda: self.query_one(target).focus())

    VIEWS = ("log", "screenshot", "repair")

    def action_next_view(self) -> None:
        """v: the next view of the VM's boot diagnostics (log, screenshot, repair commands)."""
        active = self.query_one(TabbedContent).active
        index = self.VIEWS.index(active) if active in self.VIEWS else -1
        self.action_tab(self.VIEWS[(index + 1) % len(self.VIEWS)])

    def action_search(self) -> None:
        self.action_tab("log", focus=False)
        box = self.query_one(LogSearch)
        box.add_class("-shown")
        box.focus()
        box.cursor_position = len(box.value)

    def _close_search(self) -> None:
        box = self.query_one(LogSearch)
        box.value = ""
        box.remove_class("-shown")
        self.query_one(SerialLogView).search("")
        self.query_one(SerialLogView).focus()
        self.update_status()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.query_one(SerialLogView).search(event.value)
        self.update_status()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        view = self.query_one(SerialLogView)
        if not event.value.strip():
            event.input.remove_class("-shown")
        view.focus()
        self.update_status()

    def action_next_match(self, step: int) -> None:
        view = self.query_one(SerialLogView)
        if view.next_match(step) is None:
            self.notify("No match: / searches the log.", timeout=2)
        self.update_status()

    def action_last_boot(self) -> None:
        self.action_tab("log")
        self.query_one(SerialLogView).show_last_boot()

    @property
    def boot_state(self) -> BootState | None:
        return self.state

    def already_on(self, state: BootState) -> bool:
        """Here also when the VM's model says they are on, but reading the log found them off."""
        return state.vm.boot_diagnostics.enabled and not state.off

    def action_save_screenshot(self) -> None:
        state = self.state
        if state is None or state.data is None or not state.data.screenshot:
            self.notify("No screenshot to save.", severity="warning", timeout=3)
            return
        from backend import bootdiag
        from backend.escape import safe_filename
        from backend.files import write_private_atomically

        try:
            png = bootdiag.screenshot_png(state.data.screenshot)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        stamp = self.aztriage.now().strftime("%Y%m%d-%H%M%S")
        path = self.aztriage.export_dir() / f"screenshot-{safe_filename(state.vm.name)}-{stamp}.png"
        try:
            write_private_atomically(path, png)
        except OSError as exc:
            self.notify(f"The screenshot cannot be written to {path} ({exc.strerror}).", severity="error")
            return
        self.notify(f"Saved the screenshot to {path}", title="export", timeout=10)

    def update_status(self) -> None:
        state = self.state
        name = state.vm.name if state else self.vm_id.rsplit("/", 1)[-1]
        text = Text(f" {name}")
        view = self.query_one(SerialLogView)
        if view.lines:
            text.append(f" · {len(view.lines)} lines · last boot from {view.last_start + 1}")
        if view.term:
            if view.matches:
                text.append(f" · /{view.term}: match {view.current + 1} of {len(view.matches)} (n/N)", style="bold")
            else:
                text.append(f" · /{view.term}: no match", style="bold")
        text.append(" · v view · m repair · o recover")
        self.set_status(text)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        state = self.state
        name = state.vm.name if state else "this VM"
        commands: list[tuple[str, str, Any]] = [
            (f"boot: refresh the serial log and screenshot of {name}", "Read both again", self.action_refresh_boot),
            ("boot: search the serial log", "Highlight every line holding a text", self.action_search),
            ("boot: jump to the last boot", "Scroll to where the last boot starts", self.action_last_boot),
            ("boot: show the screenshot", "The console as the VM shows it", lambda: self.action_tab("screenshot")),
            ("boot: show the repair commands", "What to type on the rescue VM", lambda: self.action_tab("repair")),
            ("export: screenshot as PNG", "Write the console screenshot to a file", self.action_save_screenshot),
            ("view: back", "Close the boot diagnostics", self.app.pop_screen),
        ]
        if state is not None:
            from tui.screens.serial_console import open_console

            commands.append(
                (f"boot: serial console of {name}", "Type into the VM through Azure Serial Console (ctrl+] leaves)", lambda: open_console(self, state.vm))
            )
        if state is not None and state.recommended:
            commands.append((f"recovery: {state.recommended} for {name}", "Open the recommended recovery in the Recovery pane", self.action_open_recovery))
        return commands


# --- words --------------------------------------------------------------------------------------


def reason_of(state: BootState) -> tuple[str, tuple[str, ...]]:
    verdict = state.verdict
    if state.off:
        return f"boot diagnostics are off on {state.vm.name}", ()
    if verdict is None:
        return "", ()
    evidence = tuple(f"{f.signature.title}: {f.line}" for f in verdict.findings) + tuple(f"repair: {c}" for c in verdict.repair)
    return f"boot diagnostics: {verdict.summary}", evidence


def state_lines(state: BootState, *, detail: bool = False, loading: bool = False, verdict: Any = None, now: Any = None) -> Text:
    text = _state_lines(state, detail=detail, loading=loading)
    if verdict is not None and not (loading or state.fetching):
        # The VM's one verdict and its next step, as every pane shows it, and what changed lately.
        text.append("\nVERDICT ", style="bold")
        text.append(f"{verdict.label}: {verdict.summary}", style="bold")
        if verdict.scenario:
            text.append(f"  → o: {verdict.scenario}", style="bold")
        text.append(f"\n  next: {verdict.next_step}")
        if verdict.change is not None and now is not None:
            from backend.verdict import change_line

            text.append("\n  ")
            text.append(change_line(verdict.change, now), style="bold")
    return text


def _state_lines(state: BootState, *, detail: bool = False, loading: bool = False) -> Text:
    vm = state.vm
    text = Text()
    if loading or state.fetching:
        text.append(f"Reading the boot diagnostics of {vm.name}…", style="bold")
        return text
    if state.off or not vm.boot_diagnostics.enabled:
        text.append(f"Boot diagnostics are OFF for {vm.name}", style="bold")
        text.append(": no serial log and no screenshot were captured.")
        text.append("\ne: enable them (managed storage; a change, confirmed in the Recovery pane); they capture from the next start.", style="dim")
        return text
    if state.error and state.data is None:
        text.append("Could not read the boot diagnostics: ", style="bold")
        text.append(state.error)
        text.append("\nr: try again", style="dim")
        return text
    verdict = state.verdict
    if verdict is None:
        text.append(f"{vm.name}: ", style="bold")
        text.append(state.error or "not read yet (enter opens its serial log and screenshot; a reads every log).")
        return text
    primary = verdict.primary
    style = "bold red" if verdict.problem else ("bold yellow" if primary is not None else "bold green")
    text.append(("✖ " if verdict.problem else "! " if primary is not None else "✔ ") + verdict.summary, style=style)
    if primary is not None:
        text.append(f"\n  line {primary.line_number}: ", style="dim")
        text.append(primary.line)
        if detail:
            text.append(f"\n  {primary.signature.explain}", style="dim")
        for other in verdict.findings[1:3]:
            text.append(f"\n  also {other.signature.title}, line {other.line_number}: ", style="dim")
            text.append(other.line)
    if verdict.repair:
        text.append("\nm: repair commands", style="dim")
    return text


def repair_text(state: BootState) -> Any:
    verdict = state.verdict
    if state.off:
        return Text("Boot diagnostics are off: nothing to repair from. e enables them.")
    if verdict is None or not verdict.findings:
        return Text("No known problem in the last boot: nothing to repair." if verdict is not None else "Not read yet.")
    parts: list[Any] = []
    for finding in verdict.findings:
        head = Text()
        head.append(f"{finding.signature.title}", style="bold")
        head.append(f"  (line {finding.line_number}, recovery: {finding.recommended_scenario})\n", style="dim")
        head.append(finding.signature.explain + "\n")
        parts.append(head)
    where = "on the rescue VM (scenario rescue)" if verdict.recommended_scenario == "rescue" else f"(scenario {verdict.recommended_scenario})"
    parts.append(Text(f"\nWhat to type {where}:", style="bold"))
    # Each command folded to paste back whole at any width (Textual's wrap cut them anywhere).
    shell = POWERSHELL if (state.vm.os_type or "").lower() == "windows" else POSIX
    parts.append(FoldedLines("\n".join(f"  {command}" for command in verdict.repair), lambda text, width: fold_text(text, width, shell)))
    return Group(*parts)
