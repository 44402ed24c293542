"""How the serial console looks at 80x24: api-dev-01's emergency shell after the root
password and `cat /etc/fstab` (the guest's screen, the title line with the VM, its OS, the
state and the size, the status line with the keys). SVG in snapshots/
test_serial_console_snapshots/; update with --snapshot-update after checking the change."""

from __future__ import annotations

import pytest

from tests.tui_support import make_app, wait_for, wait_loaded

pytestmark = pytest.mark.xdist_group("serialconsole")


def test_emergency_shell_at_80x24(snap_compare, fresh_emulator):
    async def run_before(pilot) -> None:
        from tui.screens.serial_console import open_console

        await wait_loaded(pilot)
        app = pilot.app
        from tui.screens.serial_console import SerialConsoleScreen

        open_console(app.screen, app.inventory.vm_by_name("api-dev-01")[0])
        await wait_for(pilot, lambda: isinstance(app.screen, SerialConsoleScreen), what="the console")
        screen = app.screen
        await wait_for(pilot, lambda: "continue):" in screen.terminal.text(), what="the prompt")
        await pilot.press(*"rootpw", "enter")
        await wait_for(pilot, lambda: "root@api-dev-01:~#" in screen.terminal.text(), what="the shell")
        await pilot.press(*"cat", "space", *"/etc/fstab", "enter")
        await wait_for(pilot, lambda: screen.terminal.text().rstrip().endswith("root@api-dev-01:~#") and "cloudconfig" in screen.terminal.text(), what="fstab")
        await pilot.pause(0.1)

    assert snap_compare(make_app(fresh_emulator), terminal_size=(80, 24), run_before=run_before)
