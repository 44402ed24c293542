"""The serial console view (tui/screens/serial_console.py, widgets/serial_terminal.py)
against the emulator's websocket gateway: what the operator reads and types, resize,
a dropped socket, refusals naming the failing check, read-only, admin commands, the
journal, and hostile bytes from the guest that never reach the terminal raw."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backend.recovery.journal import Journal, default_path
from tests.hostile_payloads import FORBIDDEN_CODE_POINTS
from tests.support import emulator_control, start_emulator
from tests.tui_support import make_app, wait_for, wait_loaded
from widgets.serial_terminal import REPLACEMENT, SerialTerminal, key_bytes, safe_cell

pytestmark = pytest.mark.xdist_group("serialconsole")

ROOT = Path(__file__).resolve().parent.parent


async def open_from_detail(pilot, name: str):
    """The VM detail page of `name`, then `i`: the serial console screen, connecting."""
    from tui.screens.serial_console import SerialConsoleScreen
    from tui.screens.vm_detail import VmDetailScreen

    app = pilot.app
    await wait_loaded(pilot)
    vm = app.inventory.vm_by_name(name)[0]
    await app.push_screen(VmDetailScreen(vm.id))
    await pilot.pause()
    await pilot.press("i")
    await wait_for(pilot, lambda: isinstance(app.screen, SerialConsoleScreen), what="the serial console screen")
    return app.screen


async def at_login(pilot, name: str = "dev-ephemeral-01"):
    """The serial console of `name` opened from its detail page, showing the guest's login prompt."""
    screen = await open_from_detail(pilot, name)
    await see(pilot, screen, "login:")
    return screen


async def see(pilot, screen, *needles: str, timeout: float = 15.0) -> str:
    try:
        await wait_for(pilot, lambda: all(n in screen.terminal.text() for n in needles), timeout=timeout, what=f"{needles} on the guest's screen")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it shows:\n{screen.terminal.text()}\nstatus: {screen._status.render()}") from None
    return screen.terminal.text()


async def type_keys(pilot, text: str) -> None:
    await pilot.press(*("space" if ch == " " else ch for ch in text))


def sessions(name: str):
    with Journal(default_path()) as journal:
        return [s for s in journal.console_sessions() if s.vm_name == name]


def admin_log(emu) -> list[dict]:
    """The admin commands (reset, NMI, SysRq) the emulator's serial console gateway was sent."""
    return emulator_control(emu, "GET", "/_emulator/serialconsole/admin")


async def admin_dialog(pilot, screen, action: str, kind):
    """The console's admin command `action` asked for: the dialog of `kind` it opens, on top."""
    getattr(screen, f"action_{action}")()
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), what=f"the {action} dialog")
    return pilot.app.screen


def journal_bytes() -> bytes:
    path = default_path()
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "character", "sent"),
    [
        ("a", "a", b"a"),
        ("A", "A", b"A"),
        ("enter", "\r", b"\r"),
        ("backspace", "\x7f", b"\x7f"),
        ("tab", "\t", b"\t"),
        ("shift+tab", None, b"\x1b[Z"),
        ("escape", "\x1b", b"\x1b"),
        ("up", None, b"\x1b[A"),
        ("left", None, b"\x1b[D"),
        ("ctrl+right", None, b"\x1b[1;5C"),
        ("home", None, b"\x1b[H"),
        ("pagedown", None, b"\x1b[6~"),
        ("delete", None, b"\x1b[3~"),
        ("f1", None, b"\x1bOP"),
        ("f5", None, b"\x1b[15~"),
        ("f12", None, b"\x1b[24~"),
        ("shift+f5", None, b"\x1b[15;2~"),
        ("ctrl+c", "\x03", b"\x03"),
        ("ctrl+d", "\x04", b"\x04"),
        ("ctrl+q", "\x11", b"\x11"),
        ("ctrl+backslash", "\x1c", b"\x1c"),
        ("slash", "/", b"/"),
        ("eacute", "é", "é".encode()),
    ],
)
def test_keys_become_the_bytes_a_terminal_sends(key, character, sent):
    assert key_bytes(key, character) == sent


def test_application_cursor_mode_sends_ss3_arrows():
    assert key_bytes("up", None, application_cursor=True) == b"\x1bOA"
    terminal = SerialTerminal()
    terminal.feed(b"\x1b[?1h")
    assert terminal.application_cursor


def test_an_8_bit_osc_from_the_guest_hides_nothing_after_it():
    terminal = SerialTerminal(columns=40, lines=3)
    terminal.feed("before \u009d0;title\u009c after\r\n\u009b2J still here".encode())
    assert terminal.text().splitlines()[:2] == ["before \ufffd0;title\ufffd after", "\ufffd2J still here"]


def test_a_cell_shows_only_printable_text():
    assert safe_cell("a") == "a" and safe_cell("界") == "界" and safe_cell("e\u0301") == "e\u0301"
    for cp in (0x1B, 0x9B, 0x202E, 0x200B, 0x2028, 0x00AD):
        assert safe_cell(chr(cp)) == REPLACEMENT


def test_markup_from_the_guest_is_drawn_as_text():
    from tests.hostile_payloads import RICH_MARKUP

    MARKUP_STYLE_TEXT, MARKUP_LINK_TEXT, MARKUP_CLICK_TEXT = RICH_MARKUP[:3]
    terminal = SerialTerminal(columns=120, lines=5)
    terminal.feed(f"{MARKUP_STYLE_TEXT} {MARKUP_LINK_TEXT}\r\n{MARKUP_CLICK_TEXT}".encode())
    assert terminal.text().splitlines()[:2] == [f"{MARKUP_STYLE_TEXT} {MARKUP_LINK_TEXT}", MARKUP_CLICK_TEXT]
    segments = list(terminal._segments(0)) + list(terminal._segments(1))
    assert "".join(seg.text for seg in segments).startswith(MARKUP_STYLE_TEXT)
    assert all(seg.style is None or (not seg.style.link and not seg.style.meta) for seg in segments)


# --- the view against the emulator ----------------------------------------------------------


async def test_bytes_both_ways_and_the_journal_keeps_the_session_not_the_keys(fresh_emulator):
    app = make_app(fresh_emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_from_detail(pilot, "dev-ephemeral-01")
        await see(pilot, screen, "dev-ephemeral-0 login:")
        assert screen.stage == "connected" and screen.os_type == "Linux"
        await type_keys(pilot, "azureusex")
        await pilot.press("backspace", "r")  # the guest erases and echoes: the screen shows the fix
        await see(pilot, screen, "login: azureuser")
        await pilot.press("enter")
        await see(pilot, screen, "Password:")
        await type_keys(pilot, "Sw0rdfish-secret")
        await pilot.press("enter")
        text = await see(pilot, screen, "azureuser@dev-ephemeral-0:~$")
        assert "Sw0rdfish" not in text  # the guest does not echo a password
        # Keys the app binds (q quits, 1 switches panes, ctrl+q quits) go to the guest while the console has the focus.
        await type_keys(pilot, "q1")
        await pilot.press("ctrl+q")
        await see(pilot, screen, "~$ q1")
        assert app.is_running and app.screen is screen
        await pilot.press("ctrl+c")
        await type_keys(pilot, "help")
        await pilot.press("enter")
        await see(pilot, screen, "emulator shell: cat /etc/fstab")
        (open_session,) = [s for s in sessions("dev-ephemeral-01") if s.closed_at is None]
        assert not open_session.read_only
        await pilot.press("ctrl+right_square_bracket")  # leaves, back to the VM detail
        await wait_for(pilot, lambda: app.screen is not screen, what="leaving the console")
        assert type(app.screen).__name__ == "VmDetailScreen"
    (session,) = [s for s in sessions("dev-ephemeral-01") if s.session_id == open_session.session_id]
    assert session.closed_at is not None and session.end_reason == "left"
    assert b"Sw0rdfish" not in journal_bytes() and b"azureusex" not in journal_bytes()


async def test_the_terminal_follows_the_widget_size(fresh_emulator):
    app = make_app(fresh_emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_login(pilot)
        model = screen.terminal.screen_model
        assert (model.columns, model.lines) == (100, 28)  # the title and status lines take two
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: (model.columns, model.lines) == (120, 38), what="the resize")
        assert "120x38" in str(screen.query_one("#console-title").render())
        await type_keys(pilot, "x" * 110)
        await see(pilot, screen, "login: " + "x" * 90)  # a line as wide as the new width
        await pilot.resize_terminal(60, 20)
        await wait_for(pilot, lambda: (model.columns, model.lines) == (60, 18), what="the resize")
        assert all(len(line) <= 60 for line in screen.terminal.text().splitlines())


async def test_a_dropped_socket_reconnects_and_keeps_the_screen(fresh_emulator):
    app = make_app(fresh_emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_from_detail(pilot, "dev-ephemeral-01")
        screen.reconnect_delays = (0.05, 0.1, 0.2)
        await see(pilot, screen, "login:")
        await type_keys(pilot, "ops")
        await pilot.press("enter")
        await see(pilot, screen, "Password:")
        emulator_control(fresh_emulator, "POST", "/_emulator/serialconsole/drop")
        await wait_for(pilot, lambda: screen.connects == 2 and screen.stage == "connected", what="the reconnect")
        text = screen.terminal.text()
        assert "login: ops" in text and "Password:" in text  # the screen from before the drop
        assert "screen was kept" in str(screen.query_one("#console-status").render())
        await type_keys(pilot, "pw")
        await pilot.press("enter")
        await see(pilot, screen, "ops@dev-ephemeral-0:~$")  # the guest kept its state: the password prompt is answered
        session_id = screen.session_id
        await pilot.press("ctrl+right_square_bracket")
    (session,) = [s for s in sessions("dev-ephemeral-01") if s.session_id == session_id]
    assert session.reconnects == 1


def _disable(emulator) -> None:
    from tests.tui_support import arm_post

    sub = "c7a95f30-91be-4d28-8e4f-2b6d3a7c9015"
    arm_post(emulator, f"/subscriptions/{sub}/providers/Microsoft.SerialConsole/consoleServices/default/disableConsole?api-version=2018-05-01")


def _forbid(emulator) -> None:
    emulator_control(emulator, "POST", "/_emulator/faults", {"match": "/serialPorts/0/connect", "method": "POST", "status": 403, "count": 1})


@pytest.mark.parametrize(
    ("name", "arrange", "check", "words"),
    [
        ("dev-spot-01", None, "check failed: VM running", "deallocated"),
        ("win11-tl-dev-01", None, "check failed: Windows Special Administration Console (SAC)", "Windows client edition"),
        ("api-dev-01", _disable, "check failed: serial console service of the subscription", "disabled for this subscription"),
        ("api-dev-01", _forbid, "check failed: access (Virtual Machine Contributor)", "403"),
        ("legacy-app-01", None, "check failed: boot diagnostics storage firewall", "allow its Europe addresses (52.146.139.220, 20.105.209.72 and 6 more)"),
    ],
    ids=["not-running", "no-sac", "disabled", "forbidden", "storage-firewall"],
)
async def test_a_refusal_is_one_line_naming_the_failing_check(fresh_emulator, name, arrange, check, words):
    app = make_app(fresh_emulator)
    async with app.run_test(size=(160, 24)) as pilot:
        await wait_loaded(pilot)
        if arrange is not None:
            arrange(fresh_emulator)
        screen = await open_from_detail(pilot, name)
        await wait_for(pilot, lambda: screen.stage == "refused", what="the refusal")
        status = str(screen.query_one("#console-status").render())
        assert check in status and words in status and "\n" not in status.strip()
        assert "refused" in str(screen.query_one("#console-title").render())
        await pilot.press("a")  # nothing is sent, and the screen says why
        assert "Not sent: the console is refused" in str(screen.query_one("#console-status").render())
    assert sessions(name) == [] or all(s.closed_at for s in sessions(name))


async def test_read_only_watches_and_sends_nothing(fresh_emulator):
    app = make_app(fresh_emulator, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_login(pilot)
        assert "READ-ONLY" in str(screen.query_one("#console-title").render())
        await type_keys(pilot, "root")
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert "login: root" not in screen.terminal.text() and "Password" not in screen.terminal.text()
        assert "Read-only: what you type is not sent" in str(screen.query_one("#console-status").render())
        names = [name for name, _help, _cb in screen.palette_commands()]
        assert not any("NMI" in n or "reset" in n or "SysRq" in n for n in names)
        screen.action_reset()
        await pilot.pause(0.2)
        assert not any(type(s).__name__ == "ConfirmDialog" for s in app.screen_stack)
        session_id = screen.session_id
        await pilot.press("ctrl+right_square_bracket")
    assert all(entry["command"] != "reset" for entry in admin_log(fresh_emulator))
    (session,) = [s for s in sessions("dev-ephemeral-01") if s.session_id == session_id]
    assert session.read_only


async def test_reset_is_confirmed_by_the_vms_name_and_journaled(fresh_emulator):
    from textual.widgets import Input

    from widgets.confirm_dialog import ConfirmDialog

    before = len(admin_log(fresh_emulator))
    app = make_app(fresh_emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_login(pilot)
        dialog = await admin_dialog(pilot, screen, "reset", ConfirmDialog)
        await type_keys(pilot, "dev-ephemeral")
        await pilot.press("enter")  # not the name: nothing happens
        await pilot.pause(0.1)
        assert app.screen is dialog and "does not match" in str(dialog.query_one("#confirm-hint").render())
        dialog.query_one("#confirm-name", Input).value = ""
        await type_keys(pilot, "dev-ephemeral-01")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        await wait_for(pilot, lambda: "reset sent" in str(screen.query_one("#console-status").render()), what="the reset")
        await see(pilot, screen, "Reached target Multi-User System")
        session_id = screen.session_id
    log = admin_log(fresh_emulator)
    assert [e["command"] for e in log[before:]] == ["reset"]
    (session,) = [s for s in sessions("dev-ephemeral-01") if s.session_id == session_id]
    assert [a["command"] for a in session.admin] == ["reset"] and session.end_reason == "aztriage closed"


def console_app(emulator, name: str, *, read_only: bool = False):
    """What `aztriage console --vm NAME` runs: the serial console screen alone."""
    from tests.support import demo_settings
    from tui.serial_app import SerialConsoleApp

    docs = emulator_control(emulator, "GET", "/_emulator/resources?type=Microsoft.Compute/virtualMachines")["resources"]
    vm_id = next(d["id"] for d in docs if d.get("name") == name)
    return SerialConsoleApp(demo_settings(emulator, read_only=read_only), vm_id, name)


async def test_nmi_is_confirmed_reaches_the_gateway_and_the_guest_shows_it(fresh_emulator):
    """The CLI's console (`aztriage console --vm`): NMI from the palette's action asks first, with
    Cancel as the default; sent, the Linux guest logs the unknown NMI and the journal keeps it."""
    from widgets.confirm_dialog import ConfirmDialog

    before = len(emulator_control(fresh_emulator, "GET", "/_emulator/serialconsole/admin"))
    app = console_app(fresh_emulator, "dev-ephemeral-01")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SerialConsoleScreen", what="the console screen")
        screen = app.screen
        await see(pilot, screen, "login:")
        names = [name for name, _help, _cb in screen.palette_commands()]
        assert "console: send NMI to dev-ephemeral-01" in names
        screen.action_nmi()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        assert "Send NMI to dev-ephemeral-01?" in str(app.screen.query_one("#confirm-title").render())
        await pilot.press("enter")  # Cancel has the focus: nothing is sent
        await wait_for(pilot, lambda: app.screen is screen, what="cancel")
        await pilot.pause(0.2)
        assert len(emulator_control(fresh_emulator, "GET", "/_emulator/serialconsole/admin")) == before
        screen.action_nmi()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("shift+tab", "enter")  # Send NMI, chosen on purpose
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        await wait_for(pilot, lambda: "NMI sent to dev-ephemeral-01" in str(screen.query_one("#console-status").render()), what="the NMI")
        await see(pilot, screen, "NMI received for unknown reason", "Dazed and confused")
        session_id = screen.session_id
        await pilot.press("ctrl+right_square_bracket")
    log = emulator_control(fresh_emulator, "GET", "/_emulator/serialconsole/admin")
    assert [(e["command"], e["parameters"]) for e in log[before:]] == [("nmi", {})]
    (session,) = [s for s in sessions("dev-ephemeral-01") if s.session_id == session_id]
    assert [a["command"] for a in session.admin] == ["nmi"] and session.end_reason == "left"


async def test_read_only_sends_no_admin_command_from_the_cli_console(fresh_emulator):
    before = len(emulator_control(fresh_emulator, "GET", "/_emulator/serialconsole/admin"))
    app = console_app(fresh_emulator, "dev-ephemeral-01", read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SerialConsoleScreen", what="the console screen")
        screen = app.screen
        await see(pilot, screen, "login:")
        assert not any(word in name for name, _h, _c in screen.palette_commands() for word in ("NMI", "reset", "SysRq"))
        for action in (screen.action_nmi, screen.action_sysrq, screen.action_reset):
            action()
            await pilot.pause(0.2)
            assert app.screen is screen  # no confirmation: nothing to confirm
        assert "Reached target" in screen.terminal.text() and "NMI received" not in screen.terminal.text()
    assert len(emulator_control(fresh_emulator, "GET", "/_emulator/serialconsole/admin")) == before


async def test_sysrq_takes_a_typed_key_and_cancel_sends_nothing(fresh_emulator):
    from tui.screens.serial_console import SysRqDialog

    before = len(admin_log(fresh_emulator))
    app = make_app(fresh_emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_login(pilot)
        await admin_dialog(pilot, screen, "sysrq", SysRqDialog)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="cancel")
        await admin_dialog(pilot, screen, "sysrq", SysRqDialog)
        await pilot.press("s", "enter")
        await wait_for(pilot, lambda: "SysRq s sent" in str(screen.query_one("#console-status").render()), what="SysRq")
    log = admin_log(fresh_emulator)
    assert [(e["command"], e["parameters"]) for e in log[before:]] == [("sysrq", {"SysRqCommand": "s"})]


# --- hostile bytes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_emulator():
    emu = start_emulator("hostile")
    yield emu
    emu.stop()


async def test_hostile_bytes_from_the_guest_are_cells_never_terminal_commands(hostile_emulator):
    """The hostile estate's guest prints every class of payload (CSI, OSC title/link/clipboard,
    DCS, C1, bidi, zero-width, markup) before its login prompt: the rendered cells hold none
    of them, the app's title is untouched, and nothing is answered back to the guest."""
    app = make_app(hostile_emulator)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await at_login(pilot)
        terminal = screen.terminal
        assert terminal.bytes_in > 1500
        drawn = "".join(segment.text for y in range(terminal.size.height) for segment in terminal.render_line(y))
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F or ord(ch) in FORBIDDEN_CODE_POINTS for ch in drawn)
        assert app.title == "aztriage" and terminal.screen_model.title == ""


def test_hostile_bytes_never_reach_the_operators_terminal(tmp_path):
    """`aztriage console` on a pty against the hostile estate: the stream it writes holds the
    app's own CSI sequences only, no OSC, DCS, C1, bidi or invisible character from the guest."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.hostile_payloads import terminal_violations

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TEXTUAL_DRIVER", "COLUMNS", "LINES")}
    env.update({"TERM": "xterm-256color", "AZTRIAGE_CONFIG": str(tmp_path / "none.toml"), "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "console", "--demo", "--demo-estate", "hostile", "--vm", "dev-ephemeral-01"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    out = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal out
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out += chunk
                if until is not None and until in out:
                    return

    try:
        read_for(60, until=b"login:")
        read_for(1.0)
        assert b"login:" in out, out[-2000:]
        os.write(master, b"\x1d")  # ctrl+]
        proc.wait(timeout=20)
        read_for(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0
    text = out.decode("utf-8", errors="replace")
    assert "pwned-title" not in text and "\x1b]52" not in text and "\x1b]8;" not in text
    # Textual's own OSC 22 (the mouse pointer's shape, a fixed string) is the app's, not the guest's.
    violations = terminal_violations(text.replace("\x1b]22;default\x07", ""))
    assert violations == [], violations


def test_journal_schema_keeps_no_keystroke_column(tmp_path):
    path = tmp_path / "j.sqlite3"
    with Journal(path) as journal:
        sid = journal.open_console_session("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v", "v", read_only=False)
        journal.console_admin(sid, "sysrq", "b")
        journal.close_console_session(sid, "left")
        (session,) = journal.console_sessions()
    assert session.admin[0]["command"] == "sysrq" and session.admin[0]["key"] == "b" and session.end_reason == "left"
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(console_sessions)")]
    assert columns == ["session_id", "vm_id", "vm_name", "read_only", "opened_at", "closed_at", "reconnects", "admin", "end_reason"]


@pytest.mark.parametrize(
    ("vm", "code", "words"),
    [
        ("no-such-vm", 2, "no VM named no-such-vm"),
        ("dev-spot-01", 1, "the serial console cannot open: VM dev-spot-01 is deallocated: the serial console needs it running."),
        (
            "legacy-app-01",
            1,
            "the serial console cannot open: Boot diagnostics storage account contosolegacydiag has a firewall that does not let the serial console in",
        ),
    ],
)
def test_the_cli_says_bad_input_and_refusals_in_one_line(tmp_path, vm, code, words):
    import os
    import subprocess
    import sys

    env = {**os.environ, "AZTRIAGE_CONFIG": str(tmp_path / "none.toml"), "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tui.cli", "console", "--demo", "--vm", vm], cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
    assert proc.returncode == code and proc.stdout == b""
    (line,) = proc.stderr.decode().splitlines()
    assert words in line and line.startswith("aztriage: ")


@pytest.fixture(scope="module")
def boot_diagnostics_off_emulator():
    """The demo estate with boot diagnostics off on a running VM (dev-ephemeral-01)."""
    from backend.emulator.estates import load_estate
    from backend.emulator.server import EmulatorThread
    from tests.support import FIXED_NOW

    estate = load_estate("demo", now=FIXED_NOW)
    (doc,) = [d for d in estate["resources"] if d.get("name") == "dev-ephemeral-01" and d.get("type", "").lower() == "microsoft.compute/virtualmachines"]
    doc["properties"]["diagnosticsProfile"] = {"bootDiagnostics": {"enabled": False}}
    emu = EmulatorThread(estate).start()
    yield emu
    emu.stop()


async def test_boot_diagnostics_off_is_the_check_that_failed(boot_diagnostics_off_emulator):
    app = make_app(boot_diagnostics_off_emulator)
    async with app.run_test(size=(160, 24)) as pilot:
        screen = await open_from_detail(pilot, "dev-ephemeral-01")
        await wait_for(pilot, lambda: screen.stage == "refused", what="the refusal")
        status = str(screen.query_one("#console-status").render())
        assert "Refused (check failed: boot diagnostics on): VM dev-ephemeral-01 has boot diagnostics off" in status


async def test_sac_on_windows_opens_the_guest_firewall(fresh_emulator):
    app = make_app(fresh_emulator)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_from_detail(pilot, "files-shared-01")
        await see(pilot, screen, "SAC>")
        assert screen.os_type == "Windows"
        names = [name for name, _help, _cb in screen.palette_commands()]
        assert any("NMI" in n for n in names) and not any("SysRq" in n for n in names)  # SysRq is Linux only
        for line, expect in (("cmd", "Channel: Cmd0001"), ("ch -si 1", "Username:"), ("ops", "Domain  :"), ("", "Password:"), ("pw", "system32>")):
            await type_keys(pilot, line)
            await pilot.press("enter")
            await see(pilot, screen, expect)
        await type_keys(pilot, 'netsh advfirewall firewall add rule name="RDP" dir=in action=allow protocol=TCP localport=3389')
        await pilot.press("enter")
        await see(pilot, screen, "Ok.")
        await pilot.press("ctrl+right_square_bracket")
    vms = emulator_control(fresh_emulator, "GET", "/_emulator/guest")["vms"]
    facts = next(v for k, v in vms.items() if k.lower().endswith("/files-shared-01"))
    assert facts["ports"]["3389"] == "rdp"


def test_the_scrollback_keeps_what_scrolled_off_and_is_searched():
    from tui.screens.serial_console import ScrollbackSearch

    terminal = SerialTerminal(columns=40, lines=5)
    terminal.feed(b"".join(f"boot line {n}\r\n".encode() for n in range(1, 31)))
    lines = terminal.scrollback_lines()
    assert lines[0] == "boot line 1" and "boot line 30" in lines and "boot line 1" not in terminal.text().splitlines()
    search = ScrollbackSearch(lines)
    assert [line for _n, line in search.matches("LINE 2")] == ["boot line 2", *(f"boot line {n}" for n in range(20, 30))]
    assert search.matches("") == []
