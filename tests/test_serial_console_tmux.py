"""The fstab story fixed from the serial console alone, as an operator does it over SSH:
`aztriage --demo` under tmux at 80x24. The Connectivity pane says api-dev-01 did not
boot (emergency mode, fstab) and offers its serial console; in it the operator gives the
root password, remounts / read-write, adds nofail to the data disk's line with sed,
reboots, leaves with Ctrl+], and the VM answers SSH: the verdict is reachable."""

from __future__ import annotations

import time
from pathlib import Path

from tests.tmux_support import start_console

ROOT = Path(__file__).resolve().parent.parent


def test_the_fstab_story_is_fixed_from_the_serial_console_at_80x24(term, tmp_path):
    start_console(term, tmp_path)
    term.wait_for("api-dev-01", "row 1/30", timeout=60)

    term.keys("3")
    term.wait_for("PORT STATUS")
    term.keys("/")
    term.wait_for("filter: name, port")
    time.sleep(0.5)  # the filter box takes focus on the frame after it is shown
    term.type("api-dev")  # no digit: a key that reached the table would not switch panes
    term.wait_for("1 of 30 rows match")
    term.keys("Enter")
    time.sleep(0.5)
    term.keys("p")
    screen = term.wait_for("NO BOOT", "emergency mode (fstab)", "i opens its serial console", timeout=30)
    assert all(len(line) <= 80 for line in screen.splitlines())

    term.keys("i")
    screen = term.wait_for("serial console · api-dev-01 · Linux · connected · 80x22", "Control-D to continue):")
    assert "ctrl+] leave" in screen.splitlines()[-1]
    term.type("rootpw")
    term.keys("Enter")
    term.wait_for("root@api-dev-01:~#")
    term.type("sed -i 's|/datadrive ext4 defaults|/datadrive ext4 defaults,nofail|' /etc/fstab")
    term.keys("Enter")
    term.wait_for("Read-only file system")  # / is read-only in emergency mode
    term.type("mount -o remount,rw /")
    term.keys("Enter")
    term.type("sed -i 's|/datadrive ext4 defaults|/datadrive ext4 defaults,nofail|' /etc/fstab")
    term.keys("Enter")
    term.type("cat /etc/fstab")
    term.keys("Enter")
    term.wait_for("/datadrive ext4 defaults,nofail")
    term.type("systemctl reboot")
    term.keys("Enter")
    term.wait_for("Reached target Multi-User System", "api-dev-01 login:")

    term.keys("C-]")  # leave: back to the Connectivity pane
    term.wait_for("PORT STATUS", absent=("serial console ·",))
    term.keys("p")
    screen = term.wait_for("VERDICT OK: reachable: SSH answers", "1 reachable", timeout=30)
    assert "NO BOOT" not in screen
    term.keys("q")
    assert term.wait_exit() == 0
