"""The serial console of one VM: Azure Serial Console in a terminal.

The screen connects (preflight, connect, websocket: backend.adapter.SerialConsole),
shows the guest's screen (widgets/serial_terminal.py: pyte, cells drawn as plain
text) and sends what the operator types. Keys:

- every key goes to the guest as the bytes an xterm sends, Ctrl combinations and
  Ctrl+Q included, except Ctrl+] (leaves the console, as in telnet) and Ctrl+P
  (aztriage's command palette: admin commands, reconnect, search the scrollback);
- the admin commands are confirmed: NMI with a yes, reset by typing the VM's name,
  SysRq (Linux) by typing its key.

A dropped websocket is reconnected with back-off; the screen (pyte's state) is kept,
and Azure's gateway replays nothing, so what the guest printed meanwhile is lost. A
refusal (console disabled, VM not running, boot diagnostics off, forbidden, storage
firewall, Windows client without SAC) is one line naming the check that failed.
``--read-only`` watches: no key and no admin command is sent, and the screen says so.

The journal records that a session was opened and closed on the VM, its reconnects
and admin commands, never the keystrokes (they carry passwords).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Static
from textual.worker import Worker

from widgets.confirm_dialog import ConfirmDialog
from widgets.serial_terminal import SerialTerminal

if TYPE_CHECKING:
    from backend.adapter import SerialConsole, SerialStream

log = logging.getLogger("aztriage.console.serial")

# Seconds between reconnect attempts after a dropped socket; after the last, the screen says so and waits for the operator.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

# backend.errors.SerialConsoleRefused.reason -> the check that failed, in the operator's words.
CHECKS = {
    "disabled": "serial console service of the subscription",
    "not-running": "VM running",
    "boot-diagnostics-off": "boot diagnostics on",
    "forbidden": "access (Virtual Machine Contributor)",
    "storage-firewall": "boot diagnostics storage firewall",
    "no-sac": "Windows Special Administration Console (SAC)",
    "not-found": "VM exists",
}

SYSRQ_KEYS = (
    ("s", "sync the disks"),
    ("u", "remount every file system read-only"),
    ("b", "reboot at once (no sync, no unmount)"),
    ("e", "send SIGTERM to every process but init"),
    ("i", "send SIGKILL to every process but init"),
    ("c", "crash the kernel (a crash dump when kdump is set up)"),
    ("h", "print SysRq help to the console"),
)

CONNECTING, CONNECTED, RECONNECTING, REFUSED, FAILED, CLOSED = "connecting", "connected", "reconnecting", "refused", "failed", "closed"


class SysRqDialog(ModalScreen[str | None]):
    """The SysRq key to send, typed (the typing is the confirmation)."""

    DEFAULT_CSS = """
    SysRqDialog { align: center middle; }
    SysRqDialog > Vertical { width: 72; max-width: 96%; height: auto; border: thick $warning; background: $surface; padding: 0 1; }
    SysRqDialog #sysrq-title { text-style: bold; }
    SysRqDialog #sysrq-keys { height: auto; max-height: 10; }
    SysRqDialog Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="sysrq.cancel")]

    def __init__(self, vm_name: str) -> None:
        super().__init__()
        self.vm_name = vm_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Send a SysRq command to {self.vm_name}", id="sysrq-title", markup=False)
            with VerticalScroll(id="sysrq-keys"):
                yield Static("\n".join(f"{key}  {what}" for key, what in SYSRQ_KEYS), markup=False)
            yield Static("Type one letter or digit and press Enter; Escape cancels.", id="sysrq-hint", markup=False)
            yield Input(placeholder="key", id="sysrq-key", max_length=1, select_on_focus=False)
            yield Button("Cancel", id="sysrq-cancel")

    def on_mount(self) -> None:
        box = self.query_one("#sysrq-key", Input)
        box.cursor_blink = False
        box.focus()

    @on(Input.Submitted, "#sysrq-key")
    def _submitted(self, event: Input.Submitted) -> None:
        key = event.value.strip()
        if len(key) == 1 and key.isascii() and key.isalnum():
            self.dismiss(key)
            return
        self.query_one("#sysrq-hint", Static).update("A SysRq command is one letter or digit (Escape cancels).")

    @on(Button.Pressed, "#sysrq-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ScrollbackSearch(ModalScreen[None]):
    """Lines of the console's scrollback that hold a text (newest last)."""

    DEFAULT_CSS = """
    ScrollbackSearch { align: center middle; }
    ScrollbackSearch > Vertical { width: 96%; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    ScrollbackSearch #scrollback-matches { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "close", "Back to the console", id="scrollback.close")]

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(placeholder="search the scrollback (Escape: back to the console)", id="scrollback-term", select_on_focus=False)
            with VerticalScroll(id="scrollback-matches"):
                yield Static("", id="scrollback-text", markup=False)
            yield Static("", id="scrollback-count", markup=False)

    def on_mount(self) -> None:
        box = self.query_one("#scrollback-term", Input)
        box.cursor_blink = False
        box.focus()
        self._show("")

    @on(Input.Changed, "#scrollback-term")
    def _changed(self, event: Input.Changed) -> None:
        self._show(event.value)

    def matches(self, term: str) -> list[tuple[int, str]]:
        needle = term.casefold()
        return [(n, line) for n, line in enumerate(self.lines, start=1) if needle and needle in line.casefold()]

    def _show(self, term: str) -> None:
        found = self.matches(term)
        text = Text()
        for n, line in found[-500:]:
            text.append(f"{n:5d}  ", style="dim")
            start = line.casefold().find(term.casefold())
            text.append(line[:start])
            text.append(line[start : start + len(term)], style="reverse")
            text.append(line[start + len(term) :] + "\n")
        self.query_one("#scrollback-text", Static).update(text)
        count = f"{len(found)} of {len(self.lines)} lines" if term else f"{len(self.lines)} lines kept; type to search"
        self.query_one("#scrollback-count", Static).update(count)
        self.query_one("#scrollback-matches", VerticalScroll).scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)


class SerialConsoleScreen(Screen[None]):
    """One VM's serial console, full screen; dismissed when the operator leaves (Ctrl+])."""

    DEFAULT_CSS = """
    SerialConsoleScreen { layout: vertical; }
    SerialConsoleScreen #console-title { height: 1; background: $panel; color: $foreground; text-style: bold; }
    SerialConsoleScreen #console-status { height: 1; background: $panel; color: $foreground; }
    SerialConsoleScreen #console-status.-alert { background: $error; color: $text; text-style: bold; }
    """

    BINDINGS = [
        # Priority: the guest gets every other key, Escape included.
        Binding("ctrl+right_square_bracket", "leave", "Leave the console", priority=True, id="console.leave"),
    ]

    stage: reactive[str] = reactive(CONNECTING)

    def __init__(
        self,
        backend: SerialConsole,
        vm_id: str,
        vm_name: str,
        *,
        read_only: bool = False,
        journal_path: Any = None,
        reconnect_delays: tuple[float, ...] = RECONNECT_DELAYS,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.vm_id = vm_id
        self.vm_name = vm_name
        self.read_only = read_only
        self.journal_path = journal_path
        self.reconnect_delays = reconnect_delays
        self.stream: SerialStream | None = None
        self.os_type = ""
        self.message = ""  # the status line's news (a refusal, a drop, a refused key)
        self.refusal_reason = ""
        self.session_id: str | None = None
        self.connects = 0  # websockets opened (the first and every reconnect)
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._leaving = False
        self._read_only_told = False
        self.typed = False  # something was sent to the guest (or an admin command): what other panes know of it may be stale
        # Made here, not queried: the session's last words (on unmount) still reach them.
        self._title = Static("", id="console-title", markup=False)
        self.terminal = SerialTerminal(id="guest")
        self._status = Static("", id="console-status", markup=False)

    # --- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._title
        yield self.terminal
        yield self._status

    def on_mount(self) -> None:
        self.terminal.focus()
        self._show_title()
        self._show_status()
        self._session()
        self._sender()

    def watch_stage(self) -> None:
        if self.is_mounted:
            self._show_title()
            self._show_status()

    def _show_title(self) -> None:
        model = self.terminal.screen_model
        text = Text(f" serial console · {self.vm_name}")
        if self.os_type:
            text.append(f" · {self.os_type}")
        text.append(f" · {self.stage}")
        if self.read_only:
            text.append(" · READ-ONLY")  # watching: nothing typed is sent (the status line says so when you type)
        text.append(f" · {model.columns}x{model.lines}")
        self._title.update(text)

    def _show_status(self) -> None:
        status = self._status
        alert = self.stage in (REFUSED, FAILED) or (self.stage == RECONNECTING)
        status.set_class(alert, "-alert")
        keys = "ctrl+] leave · ctrl+p commands (reconnect, search" + (")" if self.read_only else ", NMI, reset, SysRq)")
        if self.message:
            status.update(Text(f" {self.message} · {keys}"))
        else:
            status.update(Text(f" {keys}"))

    def say(self, message: str) -> None:
        self.message = message
        if self.is_mounted:
            self._show_status()

    @on(SerialTerminal.Resized)
    def _resized(self, event: SerialTerminal.Resized) -> None:
        # Azure's gateway has no window-size channel: the size is the operator's side only
        # (a guest that needs it is told with `stty rows N cols M`).
        self._show_title()

    @on(Worker.StateChanged)
    def _forward_worker_state(self, event: Worker.StateChanged) -> None:
        # As BaseScreen does: the app's one handler sees this screen's failed workers.
        self.app.post_message(Worker.StateChanged(event.worker, event.state))

    # --- the session ------------------------------------------------------------------

    @work(exclusive=True, group="serial-session", exit_on_error=False, description="serial console")
    async def _session(self) -> None:
        from backend.errors import BackendError, SerialConsoleClosed, SerialConsoleRefused

        failures = 0
        while not self._leaving:
            self.stage = CONNECTING if self.connects == 0 else RECONNECTING
            try:
                stream = await self.backend.serial_connect(self.vm_id)
            except SerialConsoleRefused as exc:
                self.refusal_reason = exc.reason
                self.stage = REFUSED
                check = CHECKS.get(exc.reason, exc.reason)
                self.say(f"Refused (check failed: {check}): {str(exc).rstrip('.')}.")
                return
            except BackendError as exc:
                if self.connects == 0 or failures >= len(self.reconnect_delays):
                    self.stage = FAILED
                    self.say(f"{str(exc).rstrip('.')}; ctrl+p: reconnect.")
                    return
                delay = self.reconnect_delays[failures]
                failures += 1
                self.say(f"Reconnecting in {delay:g} s ({failures}/{len(self.reconnect_delays)}): {str(exc).rstrip('.')}.")
                await asyncio.sleep(delay)
                continue
            if self._leaving:
                await stream.close()
                return
            self.stream = stream
            self.os_type = str(getattr(stream, "target", {}).get("os_type", "") or "")
            self.connects += 1
            failures = 0
            await self._journal_connected()
            self.stage = CONNECTED
            self.say("Connected; the screen was kept." if self.connects > 1 else "")
            try:
                while True:
                    data = await stream.receive()
                    self.terminal.feed(data)
            except SerialConsoleClosed:
                self.stream = None
                if self._leaving:
                    return
                delay = self.reconnect_delays[0] if self.reconnect_delays else 0.0
                self.stage = RECONNECTING
                self.say("The connection dropped; reconnecting (the screen is kept).")
                await asyncio.sleep(delay)
                failures = 1 if self.reconnect_delays else 0

    @work(exclusive=True, group="serial-send", exit_on_error=False, description="serial console keys")
    async def _sender(self) -> None:
        """Keys go out in the order they were typed, one frame each, as the Azure CLI sends them."""
        from backend.errors import SerialConsoleClosed

        while True:
            data = await self._outbox.get()
            stream = self.stream
            if stream is None or stream.closed:
                self.say("Not sent: the console is not connected.")
                continue
            try:
                await stream.send(data)
            except SerialConsoleClosed:
                self.say("Not sent: the connection dropped.")

    @on(SerialTerminal.Typed)
    def _typed(self, event: SerialTerminal.Typed) -> None:
        if self.read_only:
            if not self._read_only_told:
                self._read_only_told = True
                self.notify("Read-only (--read-only): the console is watched, nothing typed is sent.", timeout=5)
            self.say("Read-only: what you type is not sent.")
            return
        if self.stage != CONNECTED:
            self.say(f"Not sent: the console is {self.stage}.")
            return
        self.typed = True
        self._outbox.put_nowait(event.data)

    # --- the journal ------------------------------------------------------------------

    def _journal(self) -> Any:
        from backend.recovery.journal import Journal

        return Journal(self.journal_path)

    async def _journal_connected(self) -> None:
        from backend.recovery.journal import JournalError

        def write() -> str | None:
            with self._journal() as journal:
                if self.session_id is None:
                    return journal.open_console_session(self.vm_id, self.vm_name, read_only=self.read_only)
                journal.console_reconnected(self.session_id)
                return self.session_id

        try:
            self.session_id = await asyncio.to_thread(write)
        except (JournalError, OSError) as exc:
            log.warning("the journal did not take the console session: %s", exc)
            self.notify(f"The journal did not record this console session: {exc}", severity="warning", timeout=8)

    def _journal_closed(self, reason: str) -> None:
        from backend.recovery.journal import JournalError

        if self.session_id is None:
            return
        session_id, self.session_id = self.session_id, None
        try:
            with self._journal() as journal:
                journal.close_console_session(session_id, reason)
        except (JournalError, OSError) as exc:
            log.warning("the journal did not take the console session's end: %s", exc)

    async def _journal_admin(self, command: str, key: str | None) -> None:
        from backend.recovery.journal import JournalError

        session_id = self.session_id
        if session_id is None:
            return

        def write() -> None:
            with self._journal() as journal:
                journal.console_admin(session_id, command, key)

        try:
            await asyncio.to_thread(write)
        except (JournalError, OSError) as exc:
            log.warning("the journal did not take the admin command: %s", exc)

    # --- leaving ----------------------------------------------------------------------

    async def action_leave(self) -> None:
        await self._close("left")
        self.dismiss(None)

    async def _close(self, reason: str) -> None:
        self._leaving = True
        for worker in self.workers:
            worker.cancel()
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                await stream.close()
            except Exception:  # closing is best effort on the way out
                log.debug("closing the serial console failed", exc_info=True)
        self._journal_closed(reason)
        self.stage = CLOSED

    async def on_unmount(self) -> None:
        # The app quit (or the screen was closed) without Ctrl+]: the session still ends in the journal.
        if not self._leaving:
            await self._close("aztriage closed")

    # --- commands ---------------------------------------------------------------------

    def action_reconnect(self) -> None:
        if self.stage in (CONNECTING, RECONNECTING, CONNECTED) and self.stream is not None and not self.stream.closed:
            self.notify("The console is connected.", timeout=3)
            return
        self._leaving = False
        self.say("Reconnecting…")
        self._session()

    def action_search(self) -> None:
        self.app.push_screen(ScrollbackSearch(self.terminal.scrollback_lines()))

    def _admin_refused(self) -> str | None:
        if self.read_only:
            return "Read-only (--read-only): admin commands are not sent."
        if self.stream is None or self.stage != CONNECTED:
            return f"The console is {self.stage}: admin commands need a connected session."
        return None

    def action_nmi(self) -> None:
        self._admin("nmi")

    def action_reset(self) -> None:
        self._admin("reset")

    def action_sysrq(self) -> None:
        self._admin("sysrq")

    @work(group="serial-admin", exit_on_error=False, description="serial console admin command")
    async def _admin(self, command: str) -> None:
        from backend.errors import BackendError

        refused = self._admin_refused()
        if refused:
            self.notify(refused, severity="warning", timeout=5)
            return
        key: str | None = None
        name = self.vm_name
        if command == "sysrq":
            if self.os_type == "Windows":
                self.notify("SysRq is for Linux VMs only; Windows has NMI (a crash dump when it is set up).", severity="warning", timeout=6)
                return
            key = await self.app.push_screen_wait(SysRqDialog(name))
            if not key:
                return
        elif command == "nmi":
            lines = [
                f"A non-maskable interrupt goes to {name}'s virtual CPU.",
                "Windows with NMI crash dumps set up, and Linux with kernel.panic_on_unrecovered_nmi, crash and restart: the OS stops at once.",
            ]
            if not await self.app.push_screen_wait(ConfirmDialog(f"Send NMI to {name}?", lines, action="Send NMI", cancel_first=True)):
                return
        else:
            lines = [
                f"{name} is reset at once, like pressing the reset button: no shutdown, no sync.",
                "Unsaved data in the guest is lost and file systems may need a check.",
            ]
            if not await self.app.push_screen_wait(
                ConfirmDialog(f"Reset {name}?", lines, type_name=name, action="Reset", cancel_first=True, typed_what="allow the reset")
            ):
                return
        stream = self.stream
        if stream is None:
            self.notify("The console dropped before the command was sent: nothing was sent.", severity="warning", timeout=6)
            return
        try:
            await stream.admin(command, key)
        except BackendError as exc:
            self.notify(f"{command} was not sent: {exc}", severity="error", timeout=8)
            return
        self.typed = True
        await self._journal_admin(command, key)
        what = f"SysRq {key}" if key else command.upper() if command == "nmi" else command
        self.say(f"{what} sent to {name}.")
        self.notify(f"{what} sent to {name}.", timeout=4)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        name = self.vm_name
        commands: list[tuple[str, str, Any]] = [
            (f"console: leave the serial console of {name}", "Close the session and go back (ctrl+])", self.action_leave),
            ("console: search the scrollback", "Lines the guest printed that hold a text", self.action_search),
            ("console: reconnect", "Open the websocket again (the screen is kept)", self.action_reconnect),
        ]
        if not self.read_only:
            commands += [
                (f"console: send NMI to {name}", "A non-maskable interrupt (confirmed)", self.action_nmi),
                (f"console: reset {name}", "A hard reset, like the reset button (confirmed by typing the VM's name)", self.action_reset),
            ]
            if self.os_type != "Windows":
                commands.append((f"console: send SysRq to {name}", "A magic SysRq key to the Linux kernel (typed)", self.action_sysrq))
        return commands


def open_console(screen: Any, vm: Any) -> None:
    """Open the serial console of `vm` from any screen of the console app."""
    app = screen.app
    backend = getattr(app, "backend", None)
    if backend is None:
        app.notify("Still connecting; open the serial console once the inventory has loaded.", severity="warning", timeout=4)
        return
    settings = getattr(app, "settings", None)
    read_only = bool(getattr(settings, "read_only", False))
    screen = SerialConsoleScreen(backend, vm.id, vm.name, read_only=read_only)

    def left(_result: None) -> None:
        # What the operator did in the guest (a repaired fstab, a started sshd) is checked
        # again: the inventory is read and the VM probed, so no pane keeps the old verdict.
        if screen.typed and hasattr(app, "recheck"):
            app.recheck(vm.id)

    app.push_screen(screen, left)
