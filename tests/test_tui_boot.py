"""The Boot pane and the boot diagnostics page of one VM, driven with Pilot
against the emulator: what an operator sees and what each key does."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from tests.support import emulator_control
from tests.tui_support import make_app, open_vm_detail, renderable_text, wait_for, wait_loaded
from tui.screens.boot import BootDetailScreen, BootScreen
from widgets import screenshot_view
from widgets.screenshot_view import HalfBlockView, ScreenshotView
from widgets.serial_log import SerialLogView

pytestmark = pytest.mark.xdist_group("tui-boot")

BSOD_BLUE = (0, 120, 215)


def screen_strips(app):
    return app.screen._compositor.render_strips()


def screen_text(app) -> str:
    return "\n".join("".join(seg.text for seg in strip) for strip in screen_strips(app))


async def open_detail(pilot, name: str) -> BootDetailScreen:
    app = pilot.app
    vm = app.inventory.vm_by_name(name)[0]
    screen = BootDetailScreen(vm.id)
    await app.push_screen(screen)
    await wait_for(pilot, lambda: screen.fetches >= 1, what=f"boot diagnostics of {name}")
    await pilot.pause()
    return screen


def blob_requests(emulator) -> int:
    return emulator_control(emulator, "GET", "/_emulator/bootdiag")["blob_requests"]


async def test_reading_every_log_shows_which_vms_did_not_boot(emulator):
    app = make_app(emulator, start_pane="boot")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        screen = app.screen
        assert isinstance(screen, BootScreen)
        await pilot.press("a")
        await wait_for(pilot, lambda: not screen.sweeping and screen.swept_at is not None, what="sweep")
        await pilot.pause(0.1)
        cells = {row.cells[1]: row.cells for row in screen.table.visible_rows()}
        assert cells["api-dev-01"][5] == "NO BOOT: emergency mode (fstab)" and cells["api-dev-01"][6] == "rescue"
        assert cells["pg-dev-01"][5] == "NO BOOT: file system check required"
        assert cells["iis-test-01"][5] == "NO BOOT: Windows stop code"
        assert cells["dev-spot-01"][4] == "OFF" and cells["dev-spot-01"][5] == "no log (off)"
        assert cells["dev-spot-01"][6] == "enable-boot-diagnostics"
        assert cells["web-prod-01"][5] == "booted"
        assert cells["legacy-app-01"][4] == "contosolegacydiag", "a customer storage account is named"
        assert cells["mon-shared-eus-01"][5] == "Azure Linux Agent failing"
        # The broken ones come first, marked '!'.
        first = [row.cells[1] for row in screen.table.visible_rows()[:3]]
        assert sorted(first) == ["api-dev-01", "iis-test-01", "pg-dev-01"]
        text = screen_text(app)
        assert "3 DID NOT BOOT" in text
        # The panel under the table explains the row under the cursor.
        screen.table.move_cursor_to_key(app.inventory.vm_by_name("pg-dev-01")[0].id.lower())
        await pilot.pause()
        assert "The root filesystem on /dev/sda1 requires a manual fsck" in screen_text(app)


async def test_serial_log_search_last_boot_and_refresh(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        screen = await open_detail(pilot, "api-dev-01")
        text = screen_text(app)
        assert "did not boot: emergency mode (fstab)" in text
        assert "line 30: [ TIME ] Timed out waiting for device" in text
        assert "o: rescue" in text
        view = screen.query_one(SerialLogView)
        assert view.lines[-1] == "(or press Control-D to continue):"
        assert view.evidence == {29}
        assert "! [ TIME ] Timed out waiting for device" in text, "the evidence line is on screen, marked"
        # Search with /, step with n.
        await pilot.press("slash", *"datadrive", "enter")
        assert view.matches == [30, 33] and view.current_line == 30
        assert "/datadrive: match 1 of 2" in screen_text(app)
        await pilot.press("n")
        assert view.current_line == 33
        assert "/datadrive: match 2 of 2" in screen_text(app)
        await pilot.press("N")
        assert view.current_line == 30
        # B: the start of the last boot.
        await pilot.press("B")
        await pilot.pause()
        assert view.scroll_offset.y == view.last_start
        # r reads both blobs again.
        before = blob_requests(emulator)
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.fetches >= 2, what="refresh")
        assert blob_requests(emulator) == before + 2
        assert view.matches == [30, 33], "the search stays across a refresh"
        # m: what to type on the rescue VM.
        await pilot.press("m")
        await pilot.pause(0.1)
        assert "What to type on the rescue VM (scenario rescue):" in screen_text(app)
        assert "/rescue/etc/fstab" in screen_text(app)
        # esc closes the search first, then the page.
        await pilot.press("escape")
        assert isinstance(app.screen, BootDetailScreen) and view.term == "" and view.matches == []
        await pilot.press("escape")
        assert not isinstance(app.screen, BootDetailScreen)


async def test_two_boots_in_the_log_only_the_last_is_highlighted(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        screen = await open_detail(pilot, "iis-test-01")
        view = screen.query_one(SerialLogView)
        assert screen.state.verdict.boot_count == 2
        assert 0 < view.last_start < len(view.lines)
        assert next(line for line in view.lines[view.last_start :] if line) == "Loading Windows Boot Manager..."
        assert "Stop code: INACCESSIBLE_BOOT_DEVICE" in view.lines[: view.last_start], "the first crash is history"
        await pilot.press("home")
        await pilot.pause()
        # The margin bar (or the evidence mark) is drawn on the lines of the last boot only.
        for y in range(view.size.height):
            index = view.scroll_offset.y + y
            if index >= len(view.lines):
                break
            drawn = "".join(seg.text for seg in view.render_line(y))
            assert drawn.startswith(("▌", "!")) == (index >= view.last_start), (index, view.lines[index])


async def test_screenshot_in_half_blocks(emulator):
    screenshot_view.use_mode(screenshot_view.HALFBLOCK)
    app = make_app(emulator)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        screen = await open_detail(pilot, "iis-test-01")
        await pilot.press("v")  # the next view after the log: the screenshot
        await pilot.pause(0.2)
        shot = screen.query_one(ScreenshotView)
        assert shot.query(HalfBlockView)
        cells = [seg for strip in screen_strips(app) for seg in strip if seg.text and set(seg.text) == {"▀"}]
        assert cells, "the picture is drawn with half blocks"
        colours = [seg.style.bgcolor.triplet for seg in cells if seg.style and seg.style.bgcolor]
        blue = sum(len(seg.text) for seg, c in zip(cells, colours) if tuple(c) == BSOD_BLUE)
        assert blue > sum(len(seg.text) for seg in cells) / 2, "a stop code: the blue screen"
        assert "iis-test-01 · 640x400 · managed storage" in screen_text(app)


async def test_screenshot_through_a_graphics_protocol(emulator, capfd):
    import textual_image.widget as image_widgets

    screenshot_view.use_mode("tgp", image_widgets.TGPImage)
    try:
        app = make_app(emulator)
        async with app.run_test(size=(100, 40)) as pilot:
            await wait_loaded(pilot)
            screen = await open_detail(pilot, "iis-test-01")
            capfd.readouterr()
            await pilot.press("v")
            await pilot.pause(0.3)
            assert screen.query_one(ScreenshotView).query(image_widgets.TGPImage)
            sent = capfd.readouterr().out
    finally:
        screenshot_view.use_mode(screenshot_view.HALFBLOCK)
    # The Kitty graphics protocol: the pixels go to the terminal as a PNG (f=100), in chunks.
    chunks = re.findall(r"\x1b_G([^;\x1b]*);([A-Za-z0-9+/=]+)\x1b\\", sent)
    assert chunks and all("f=100" in keys for keys, _ in chunks)
    png = base64.b64decode("".join(payload for _, payload in chunks))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.getpixel((image.width // 2, 2)) == BSOD_BLUE


async def test_boot_diagnostics_off_offers_to_enable_them_through_recovery(emulator):
    app = make_app(emulator, read_only=True)
    before = emulator_control(emulator, "GET", "/_emulator/stats")["writes"]
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        await open_detail(pilot, "dev-spot-01")
        text = screen_text(app)
        assert "Boot diagnostics are OFF for dev-spot-01" in text
        assert "e: enable them" in text
        await pilot.press("e")
        await wait_for(pilot, lambda: app.current_mode == "recovery", what="recovery pane")
        await pilot.pause(0.5)
        recovery = app.screen
        assert recovery.recommended is not None and recovery.recommended.scenario == "enable-boot-diagnostics"
        assert recovery.recommended.vm_id == app.inventory.vm_by_name("dev-spot-01")[0].id
    assert emulator_control(emulator, "GET", "/_emulator/stats")["writes"] == before


async def test_o_opens_the_rescue_recommendation_with_the_repair_commands(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        await open_detail(pilot, "pg-dev-01")
        await pilot.press("o")
        await wait_for(pilot, lambda: app.current_mode == "recovery", what="recovery pane")
        await pilot.pause(0.3)
        rec = app.screen.recommended
        # The VM's verdict (the same in every pane) with the repair commands from its serial log.
        assert rec.scenario == "rescue" and rec.reason == "the OS did not boot: file system check required"
        assert any(line.startswith("repair on the rescue VM: fsck -yM /dev/disk/azure/scsi1/lun0-part1") for line in rec.evidence)


async def test_the_vm_detail_opens_its_boot_diagnostics_with_b(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        await open_vm_detail(pilot, "api-dev-01")
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BootDetailScreen) and app.screen.fetches >= 1, what="boot page")
        assert "did not boot: emergency mode (fstab)" in screen_text(app)


async def test_save_the_screenshot_as_png(emulator, test_home):
    app = make_app(emulator)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        await open_detail(pilot, "api-dev-01")
        await pilot.press("x")
        await pilot.pause()
        saved = sorted(app.export_dir().glob("screenshot-api-dev-01-*.png"))
        assert saved, list(app.export_dir().iterdir())
        with Image.open(saved[-1]) as image:
            assert image.format == "PNG" and image.size == (640, 400)
        assert oct(saved[-1].stat().st_mode & 0o777) == "0o600"


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_how_screenshots_are_drawn_is_decided_before_the_console_starts():
    try:
        assert screenshot_view.terminal_hint({"TERM": "xterm-kitty"}) == "tgp"
        assert screenshot_view.terminal_hint({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}) == "sixel"
        assert screenshot_view.terminal_hint({"TERM": "xterm-256color"}) is None, "plain SSH: half blocks"
        # Nothing is asked of a terminal that gives no hint, or of output that is not a terminal.
        assert screenshot_view.prepare_graphics({"TERM": "xterm-256color"}, _Tty(True)) == "halfblock"
        assert screenshot_view.prepare_graphics({"TERM": "xterm-kitty"}, _Tty(False)) == "halfblock"
        assert screenshot_view.prepare_graphics({"TERM": "xterm-kitty", "AZTRIAGE_IMAGES": "halfblock"}, _Tty(True)) == "halfblock"
        # A hint the terminal does not confirm (textual-image's own query finds no protocol): half blocks.
        assert screenshot_view.prepare_graphics({"TERM": "xterm-kitty"}, _Tty(True)) == "halfblock"
        # Asked for by name: the protocol's widget.
        assert screenshot_view.prepare_graphics({"AZTRIAGE_IMAGES": "tgp"}, _Tty(True)) == "tgp"
        assert screenshot_view.current_mode() == "tgp"
    finally:
        screenshot_view.use_mode(screenshot_view.HALFBLOCK)


def test_half_blocks_keep_the_aspect_ratio():
    from widgets.halfblock import fit, halfblock_lines

    assert fit((640, 400), 80, 100) == (80, 25), "a 16:10 console in 80 columns: 25 rows of two pixels"
    assert fit((640, 400), 200, 20) == (64, 20), "limited by height"
    image = Image.new("RGB", (4, 4), (255, 0, 0))
    image.paste((0, 0, 255), (0, 2, 4, 4))
    (line,) = halfblock_lines(image, 4, 1)
    (segment,) = line
    assert segment.text == "▀▀▀▀"
    assert segment.style.color.triplet == (255, 0, 0) and segment.style.bgcolor.triplet == (0, 0, 255)


async def test_the_serial_log_is_analysed_off_the_event_loop(emulator, monkeypatch):
    """A hostile guest can make its log large: the console reads it in a worker thread,
    so keys and redraws go on while it is analysed."""
    import asyncio
    import threading

    from backend import bootdiag

    calls: list[tuple[int, bool]] = []
    analyze = bootdiag.analyze

    def recording(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        calls.append((threading.get_ident(), on_loop))
        return analyze(*args, **kwargs)

    monkeypatch.setattr(bootdiag, "analyze", recording)
    app = make_app(emulator)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot)
        await open_detail(pilot, "api-dev-01")
        assert "did not boot: emergency mode (fstab)" in screen_text(app)
    assert calls, "the log was analysed"
    assert all(not on_loop and ident != threading.main_thread().ident for ident, on_loop in calls)


@pytest.mark.parametrize("name", ["api-dev-01", "pg-dev-01"])
async def test_repair_commands_paste_back_whole_at_80x24(emulator, name):
    """m at 80x24: every repair command fits its line, is folded only with bash's line
    continuation (so the lines copied are the command), and its comment stands above it."""
    from tests.test_shell_fold import bash_body, command_of

    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        screen = await open_detail(pilot, name)
        await pilot.press("m")
        await pilot.pause(0.2)
        box = screen.query_one("#repair-text")
        width = box.size.width
        lines = renderable_text(box.content, width=width).splitlines()
        assert all(len(line.rstrip()) <= width for line in lines), (width, lines)
        start = next(i for i, line in enumerate(lines) if line.startswith("What to type"))
        shown = "\n".join(line.rstrip() for line in lines[start + 1 :])
        verdict = screen.state.verdict
        assert verdict is not None and verdict.repair
        for command in verdict.repair:
            assert command_of(command) and command_of(command).split()[0] in shown, command
        # bash reads the folded lines as the commands themselves.
        assert bash_body(shown) == bash_body("\n".join(command_of(c) for c in verdict.repair if command_of(c)))
